"""Zoom dreams: the zoom geometry, frames and animations, the target schedule, resume after a kill."""
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import REPO, TINY, ZOOM, run_cli, start_cli
from dreamrun.core.engine import Ascent
from dreamrun.core.frames import FrameSettings
from dreamrun.core.zoom import zoom_dream, zoom_in
from dreamrun.errors import DreamError
from dreamrun.inputs.video import read_frames
from dreamrun.jobs.skeleton import run_job
from dreamrun.jobs.zoom import ZoomJob
from dreamrun.outputs.progress import FrameProgressBar
from dreamrun.outputs.video_files import can_write_mp4

# noise from the seed, 1 step per frame on the offline network: a frame takes a few ms at 64 px
def _blob(size: int, dy: float, dx: float) -> torch.Tensor:
    """A Gaussian spot dy, dx px from the centre of a size x size image, (1, 3, H, W)."""
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    centre = size / 2
    spot = torch.exp(-((y - centre - dy) ** 2 + (x - centre - dx) ** 2) / (2 * 2.0**2))
    return spot.expand(1, 3, size, size).clone()


def _centroid(image: torch.Tensor) -> tuple[float, float]:
    """(dy, dx) of the image's brightness-weighted centre from the image centre."""
    weights = image[0, 0].clamp_min(0) ** 2
    size = image.shape[-1]
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    total = weights.sum()
    return ((weights * y).sum() / total - size / 2).item(), ((weights * x).sum() / total - size / 2).item()


def test_zoom_moves_a_pattern_outward_by_one_over_one_minus_factor():
    dy, dx = _centroid(zoom_in(_blob(128, -12, 20), factor=0.1))
    assert dx == pytest.approx(20 / 0.9, abs=0.15) and dy == pytest.approx(-12 / 0.9, abs=0.15)
    dy, dx = _centroid(zoom_in(_blob(128, 0, 20), factor=0.0))
    assert (dy, dx) == (pytest.approx(0, abs=0.05), pytest.approx(20, abs=0.05))  # no zoom: no move


def test_rotation_turns_the_picture_counter_clockwise_around_the_centre():
    dy, dx = _centroid(zoom_in(_blob(128, 0, 20), factor=0.0, rotation=90))
    assert (dy, dx) == (pytest.approx(-20, abs=0.2), pytest.approx(0, abs=0.2))  # right of centre -> above
    dy, dx = _centroid(zoom_in(_blob(128, 0, 20), factor=0.0, rotation=30))
    assert math.hypot(dy, dx) == pytest.approx(20, abs=0.2)
    assert math.degrees(math.atan2(-dy, dx)) == pytest.approx(30, abs=1)


def test_zoom_keeps_the_size_and_the_value_range():
    image = torch.rand(1, 3, 48, 80, generator=torch.Generator().manual_seed(0))
    zoomed = zoom_in(image, factor=0.05, rotation=10)
    assert zoomed.shape == image.shape and zoomed.min() >= 0 and zoomed.max() <= 1


def test_frame_progress_bar_counts_frames(capsys):
    settings = FrameSettings(lambda x: x.pow(2).mean(), Ascent(octaves=1, steps=1, max_shift=0), factor=0.02)
    zoom_dream(torch.full((1, 3, 32, 32), 0.5), lambda frame: settings, frames=3, generator=torch.Generator(),
               observers=[FrameProgressBar(enabled=True)])
    err = capsys.readouterr().err
    assert "zoom" in err and "3/3" in err and "frame" in err


def test_zoom_run_writes_frames_animation_and_video(compose_cfg, tmp_path):
    result = run_job(ZoomJob(compose_cfg(*ZOOM, "zoom.log_every=2"), tmp_path, progress=False))
    frames = sorted((tmp_path / "frames").glob("*.png"))
    assert [p.name for p in frames] == ["000000.png", "000001.png", "000002.png", "000003.png"]
    for frame in frames:
        with Image.open(frame) as image:
            assert image.size == (64, 64)
    with Image.open(result.output) as gif:
        assert result.output.name == "zoom.gif" and gif.n_frames == 4 and gif.size == (64, 64)
        gif.seek(3)
        last = np.asarray(gif.convert("RGB")).astype(float)
    with Image.open(tmp_path / "dream.png") as dream:
        assert np.abs(last - np.asarray(dream.convert("RGB"))).mean() < 12  # the GIF's palette costs a little
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["mode"] == "zoom" and metrics["frames"] == metrics["frames_made"] == 4
    board = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert [e.step for e in board.Images("zoom/frame")] == [0, 2]
    animation = board.Images("zoom/animation")[0].encoded_image_string
    assert animation.startswith(b"GIF8")  # animated in TensorBoard's image tab
    assert [e.step for e in board.Scalars("act/block_12")] == [0, 1, 2, 3]
    if can_write_mp4():
        assert metrics["video"] == "zoom.mp4"
        assert len(list(read_frames(tmp_path / "zoom.mp4", size=None))) == 4


def test_webp_animation(compose_cfg, tmp_path):
    result = run_job(ZoomJob(compose_cfg(*ZOOM, "zoom.animation=webp", "log=none"), tmp_path, progress=False))
    with Image.open(result.output) as webp:
        assert result.output.name == "zoom.webp" and webp.n_frames == 4


def test_a_target_schedule_takes_its_targets_in_turn(compose_cfg, tmp_path):
    run_job(ZoomJob(compose_cfg(*ZOOM, "zoom.targets=[{block_3: [0]}, {block_5: [1]}]", "zoom.frames_per_target=1"), tmp_path, progress=False))
    board = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0}).Reload()
    assert [e.step for e in board.Scalars("act/block_3[0]")] == [0, 2]
    assert [e.step for e in board.Scalars("act/block_5[1]")] == [1, 3]


def test_zoom_settings_are_checked(compose_cfg, tmp_path):
    for override, message in [("zoom.factor=0.7", "zoom.factor"), ("zoom.frames=0", "zoom.frames"),
                              ("zoom.targets=[{block_99: all}]", r"zoom.targets\[0\]: unknown layer")]:
        with pytest.raises(DreamError, match=message):  # each in a dir of its own: a refused run leaves its record
            run_job(ZoomJob(compose_cfg(*ZOOM, override), tmp_path / override, progress=False))


ROTATION = {0: 0, 5: 4}  # keyframed: a resumed zoom must go on along the same curves


def _zoom_cli(run_dir, *extra):
    # 25 steps a frame at 96 px: slow enough (~0.3 s a frame) to be killed between frames
    return [sys.executable, "-m", "dreamrun", *ZOOM, "input.size=96", "zoom.frames=6", "zoom.steps_per_frame=25",
            f"zoom.rotation={ROTATION}", "zoom.shift={1: [0, 0], 4: [3, -2]}", "step_size={0: 0.01, 5: 0.02}",
            "target.block_12={channels: all, weight: {0: 1, 5: 0.25}}", f"hydra.run.dir={run_dir}", *extra]


def _saved_frame(run_dir) -> int:
    """The last frame the zoom's state file names (-1: none yet). A frame's PNG is written before the state."""
    try:
        return json.loads((run_dir / "zoom_state.json").read_text())["frame"]
    except (FileNotFoundError, json.JSONDecodeError):
        return -1


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_stopped_zoom_resumes_to_the_same_frames_as_an_uninterrupted_one(tmp_path, sig):
    whole = subprocess.run(_zoom_cli(tmp_path / "whole"), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr

    killed_dir = tmp_path / "killed"
    proc = start_cli(*_zoom_cli(killed_dir)[3:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # generous: a loaded machine can be 5x slower
    while _saved_frame(killed_dir) < 1 and time.monotonic() < deadline:  # frame 1 and the state naming it
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=30)
    if sig == signal.SIGTERM:  # stopped cleanly: said so, and left nothing half-written
        assert proc.returncode == 143
        assert json.loads((killed_dir / "result.json").read_text())["status"] == "interrupted"
        assert not list(killed_dir.rglob(".*.tmp"))
    state = json.loads((killed_dir / "zoom_state.json").read_text())
    assert 1 <= state["frame"] < 5, "the kill should land midway"
    assert state["values"]["rotation"] == pytest.approx(np.interp(state["frame"], list(ROTATION), list(ROTATION.values())))

    resumed = subprocess.run(_zoom_cli(killed_dir, "resume=true"), cwd=REPO, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {killed_dir} after frame {state['frame']}" in resumed.stderr
    assert json.loads((killed_dir / "metrics.json").read_text())["resumed_at"] == state["frame"] + 1
    for k in range(6):
        name = f"{k:06d}.png"
        with Image.open(tmp_path / "whole" / "frames" / name) as a, Image.open(killed_dir / "frames" / name) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b)), f"frame {k} differs"
    with Image.open(killed_dir / "zoom.gif") as gif:
        assert gif.n_frames == 6


@pytest.mark.slow
def test_resume_with_other_settings_is_refused(tmp_path):
    first = run_cli(*ZOOM, "zoom.frames=2", f"hydra.run.dir={tmp_path}")
    assert first.returncode == 0, first.stderr
    more = run_cli(*ZOOM, "zoom.frames=3", "resume=true", f"hydra.run.dir={tmp_path}")
    assert more.returncode == 0, more.stderr  # more frames: allowed, it continues
    assert len(list((tmp_path / "frames").glob("*.png"))) == 3
    finished = snapshot(tmp_path)
    other = run_cli(*ZOOM, "zoom.frames=4", "zoom.factor=0.05", "resume=true", f"hydra.run.dir={tmp_path}")
    assert other.returncode == 2
    assert "cannot resume" in other.stderr and "zoom.factor" in other.stderr
    # refused before anything was written: result.json, .hydra/ and every frame as they were
    assert snapshot(tmp_path) == finished


def snapshot(run_dir):
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def test_resume_is_for_zooms_and_never_rewrites_a_finished_dream(tmp_path):
    first = run_cli(*TINY, f"hydra.run.dir={tmp_path}")
    assert first.returncode == 0, first.stderr
    finished = snapshot(tmp_path)
    again = run_cli(*TINY, "resume=true", f"hydra.run.dir={tmp_path}")
    assert again.returncode == 2 and "a dream has nothing to resume" in again.stderr
    assert snapshot(tmp_path) == finished


@pytest.mark.parametrize("args, message", [
    ([*TINY, "resume=true"], "a dream has nothing to resume"),
    ([*ZOOM, "resume=true"], "resume=true needs the run dir of the zoom to continue"),
    ([*ZOOM, "resume=true", "hydra.run.dir=never_run"], "holds no saved zoom frames"),
    ([*ZOOM, "resume=true", "overwrite=true", "hydra.run.dir=never_run"], "pass one"),
    (["-m", *ZOOM, "resume=true", "seed=0,1"], "a sweep has nothing to resume"),
])
def test_resume_is_refused_where_there_is_nothing_to_resume(tmp_path, args, message):
    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [proc.stderr.strip()]  # one line
    assert message in proc.stderr
    assert not any(tmp_path.iterdir())  # refused before any dir was made


def test_a_zoom_resumed_in_process_without_saved_frames_is_refused(compose_cfg, tmp_path):
    with pytest.raises(DreamError, match="holds no saved zoom frames"):
        run_job(ZoomJob(compose_cfg(*ZOOM, "resume=true"), tmp_path, progress=False))


def test_a_saved_rng_state_that_torch_cannot_take_is_refused_in_one_line(compose_cfg, tmp_path):
    import base64

    run_job(ZoomJob(compose_cfg(*ZOOM, "zoom.frames=2"), tmp_path, progress=False))
    state_file = tmp_path / "zoom_state.json"
    state = json.loads(state_file.read_text())
    state["rng_state"] = base64.b64encode(bytes(len(base64.b64decode(state["rng_state"])))).decode()  # zeros
    state_file.write_text(json.dumps(state))
    with pytest.raises(DreamError, match="zoom_state.json is damaged: rng_state is not the jitter RNG's saved state"):
        run_job(ZoomJob(compose_cfg(*ZOOM, "zoom.frames=3", "resume=true"), tmp_path, progress=False))
