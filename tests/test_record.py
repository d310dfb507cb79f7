"""result.json's `paths` names every file a job leaves; the no-MP4 note is said once per user."""
import json
import logging
from pathlib import Path

import pytest

from conftest import TINY, ZOOM, run_cli
from dreamrun.jobs import zoom
from dreamrun.jobs.dream import DreamJob
from dreamrun.jobs.record import run_dir_paths
from dreamrun.jobs.skeleton import run_job
from dreamrun.jobs.zoom import ZoomJob
from dreamrun.outputs.video_files import NO_MP4, can_write_mp4, no_mp4_marker


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch) -> Path:
    """A zoom without PyAV leaves a marker in the user's cache: never the real ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


def _assert_paths_name_everything(run_dir: Path) -> dict[str, str]:
    """Every file under run_dir is a value of `paths` or under a dir value ("…/"), and every value exists."""
    paths = json.loads((run_dir / "result.json").read_text())["paths"]
    dirs = [p for p in paths.values() if p.endswith("/")]
    files = [p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()]
    unnamed = [f for f in files if f not in paths.values() and not any(f.startswith(d) for d in dirs)]
    assert not unnamed, f"files result.json does not name: {unnamed}"
    for path in paths.values():
        assert (run_dir / path).is_dir() if path.endswith("/") else (run_dir / path).is_file(), path
    return paths


def test_a_dream_names_its_octaves_tensorboard_file_and_itself(compose_cfg, tmp_path):
    run_dir = tmp_path / "run"
    run_job(DreamJob(compose_cfg(*TINY), run_dir, progress=False))
    paths = _assert_paths_name_everything(run_dir)
    assert paths["dream"] == "dream.png" and paths["input"] == "input.png" and paths["metrics"] == "metrics.json"
    assert paths["octave_0"] == "octave_0.png" and paths["octave_1"] == "octave_1.png"
    assert paths["tensorboard"].startswith("events.out.tfevents.") and paths["result"] == "result.json"


def test_a_zoom_names_its_frames_dir_not_each_frame(compose_cfg, tmp_path):
    run_dir = tmp_path / "run"
    run_job(ZoomJob(compose_cfg(*ZOOM), run_dir, progress=False))
    paths = _assert_paths_name_everything(run_dir)
    assert paths["frames"] == "frames/" and len(list((run_dir / "frames").glob("*.png"))) == 4
    assert not [p for p in paths.values() if p.startswith("frames/") and p != "frames/"]
    assert paths["zoom_state"] == "zoom_state.json" and paths["animation"] == "zoom.gif"
    assert paths["dream"] == "dream.png" and paths["tensorboard"].startswith("events.out.tfevents.")
    assert ("video" in paths) == bool(can_write_mp4())


def test_a_cli_run_names_hydras_files_and_the_log(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    paths = _assert_paths_name_everything(run_dir)
    assert paths["hydra"] == ".hydra/" and (run_dir / ".hydra" / "config.yaml").is_file()
    assert paths["log"] == "dreamrun.log"


def test_several_of_a_kind_and_unknown_files_each_get_a_name(tmp_path):
    for name in ["dream.png", "events.out.tfevents.2.host", "events.out.tfevents.1.host", "notes.txt",
                 "extra/deep/file.bin", "frames/000000.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    assert run_dir_paths(tmp_path) == {
        "dream": "dream.png", "tensorboard": "events.out.tfevents.1.host", "tensorboard_1": "events.out.tfevents.2.host",
        "extra": "extra/", "frames": "frames/", "notes.txt": "notes.txt", "result": "result.json"}


def _notes(caplog) -> list[int]:
    """The levels the no-MP4 note was logged at, then forget them."""
    levels = [r.levelno for r in caplog.records if r.getMessage() == NO_MP4]
    caplog.clear()
    return levels


def test_the_no_mp4_note_is_said_once_then_only_at_debug(compose_cfg, tmp_path, monkeypatch, caplog,
                                                              cache_home):
    monkeypatch.setattr(zoom, "can_write_mp4", lambda: False)
    caplog.set_level(logging.DEBUG, logger="dreamrun")
    run_job(ZoomJob(compose_cfg(*ZOOM, "log=none"), tmp_path / "first", progress=False))
    assert _notes(caplog) == [logging.INFO]
    assert no_mp4_marker() == cache_home / "dreamrun" / "no-mp4-noted" and no_mp4_marker().is_file()
    run_job(ZoomJob(compose_cfg(*ZOOM, "log=none"), tmp_path / "second", progress=False))
    assert _notes(caplog) == [logging.DEBUG]
    assert not (tmp_path / "second" / "zoom.mp4").exists()
    assert "video" not in json.loads((tmp_path / "second" / "result.json").read_text())["paths"]


def test_a_cache_that_cannot_be_written_still_lets_the_zoom_finish(compose_cfg, tmp_path, monkeypatch, caplog,
                                                                   cache_home):
    monkeypatch.setattr(zoom, "can_write_mp4", lambda: False)
    cache_home.write_text("a file where the cache dir should be")  # unwritable even for root
    caplog.set_level(logging.DEBUG, logger="dreamrun")
    for run in ("first", "second"):
        run_job(ZoomJob(compose_cfg(*ZOOM, "log=none"), tmp_path / run, progress=False))
        assert json.loads((tmp_path / run / "result.json").read_text())["status"] == "completed"
        assert _notes(caplog) == [logging.INFO]  # nowhere to remember it: said again


def test_the_note_marker_is_under_home_cache_without_an_absolute_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for value in ("", "relative/cache"):
        monkeypatch.setenv("XDG_CACHE_HOME", value)
        assert no_mp4_marker() == tmp_path / ".cache" / "dreamrun" / "no-mp4-noted"
