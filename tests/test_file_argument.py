"""`dreamrun PATH [overrides]`: any file name a photo or a video can have, through the real console script."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import HealthCheck, given, settings, strategies as st
from omegaconf import OmegaConf
from PIL import Image

from conftest import TINY
from dreamrun.config.compose import compose_config
from dreamrun.config.file_argument import file_argument, hydra_quoted
from dreamrun.errors import DreamError

CONSOLE_SCRIPT = Path(sys.executable).parent / "dreamrun"  # what `pip install` put on the PATH
# what file names hold that Hydra's grammar, the shell or OmegaConf give a meaning to
TRICKY = " ()[]{},'\"=~$\\:;!?*&#%@^|<>`é漢-_."
file_names = st.text(alphabet=st.sampled_from(TRICKY + "abcXYZ019"), min_size=1, max_size=24).map(
    lambda stem: stem.replace("/", "") + ".png").filter(lambda name: name not in (".png", "..png"))


def console_script(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(CONSOLE_SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=env)


@settings(max_examples=300, deadline=None)
@given(name=file_names)
def test_a_quoted_value_reads_back_as_exactly_the_name(name):
    # as Hydra applies an override: its grammar reads the value, OmegaConf stores it and reads it back
    value = OverridesParser.create().parse_override(f"input.path={hydra_quoted(name)}").value()
    assert OmegaConf.create({"path": value}).path == name


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=file_names)
def test_a_first_argument_naming_a_file_dreams_that_file(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    (tmp_path / "photo.png").replace(tmp_path / name)
    cfg = compose_config(*file_argument([name, "octaves=2"]))
    assert (cfg.input.kind.value, cfg.input.path, cfg.octaves) == ("image", name, 2)


def test_the_console_script_dreams_a_photo_whose_name_hydra_would_refuse(tmp_path):
    name = "it's my \"photo\" (1), [a]=b ~ ${x} café.png"
    Image.new("RGB", (90, 60), (90, 140, 200)).save(tmp_path / name)
    proc = console_script(name, *TINY, "octaves=1", "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "run" / "dream.png")
    with Image.open(tmp_path / "run" / "dream.png") as dream:
        assert dream.size == (90, 60)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "completed"
    with Image.open(tmp_path / "run" / "input.png") as dreamed_from:
        assert dreamed_from.getpixel((45, 30)) == (90, 140, 200)


@pytest.mark.parametrize("name", ["photo (1).jpg", "a,b.jpg", "~/x.jpg"])
def test_the_console_script_reads_the_names_the_issue_found_refused(tmp_path, name):
    home = tmp_path / "home"
    home.mkdir()
    path = Path(name.replace("~", str(home)))
    Image.new("RGB", (8, 8)).save(tmp_path / path)
    proc = console_script(name, "--cfg", "job", cwd=tmp_path, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert f"path: {path}" in proc.stdout


def test_a_video_file_is_dreamed_as_a_video(tmp_path):
    pytest.importorskip("av")
    from helpers.clips import panning_clip

    panning_clip(tmp_path / "my clip.mp4", frames=2, width=32, height=24)
    cfg = compose_config(*file_argument([str(tmp_path / "my clip.mp4")]))
    assert (cfg.mode.value, cfg.input.kind.value, cfg.input.path) == ("video", "video", str(tmp_path / "my clip.mp4"))


def test_what_the_command_line_says_about_input_and_mode_stands(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "p.png")
    words = file_argument([str(tmp_path / "p.png"), "input=video", "mode=zoom"])
    assert words == [f"input.path='{tmp_path / 'p.png'}'", "input=video", "mode=zoom"]


def test_a_missing_file_is_said_as_one_and_overrides_are_left_alone(tmp_path):
    with pytest.raises(DreamError, match="no such file: nofile.jpg"):
        file_argument(["nofile.jpg"])
    with pytest.raises(DreamError, match="no such file: nofile.jpg"):
        file_argument(["octaves=2", "nofile.jpg"])
    with pytest.raises(DreamError, match=f"{tmp_path} is a directory: dreamrun dreams one file"):
        file_argument([str(tmp_path)])
    assert file_argument(["octaves=2", "~target"]) == ["octaves=2", "~target"]
    assert file_argument(["~target"]) == ["~target"]


def test_the_file_may_come_after_the_overrides(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "p (1).png")
    words = file_argument(["octaves=2", str(tmp_path / "p (1).png")])
    assert words == ["input=image", f"input.path='{tmp_path / 'p (1).png'}'", "octaves=2"]


def test_hydras_refusal_shows_the_quoting_that_works(tmp_path):
    proc = console_script("input.path=photo (1).jpg", cwd=tmp_path)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert line.endswith("quote the value for Hydra, \"input.path='photo (1).jpg'\"; "
                         "or name the file first: dreamrun 'photo (1).jpg'"), line
