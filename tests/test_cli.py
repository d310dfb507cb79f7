"""The command line as a user meets it: real subprocesses, run dirs in a temp folder."""
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torchvision

from conftest import TINY, run_cli


def test_cli_dream_writes_a_run_dir_and_prints_the_dream_path_last(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir / "dream.png")
    assert (run_dir / "dream.png").is_file() and (run_dir / "input.png").is_file()
    assert {p.name for p in run_dir.glob("octave_*.png")} == {"octave_0.png", "octave_1.png"}
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "completed" and result["overrides"] == TINY
    assert result["metrics"] == json.loads((run_dir / "metrics.json").read_text())
    assert (run_dir / ".hydra" / "config.yaml").is_file() and (run_dir / "dreamrun.log").is_file()
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_cli_inception_path_runs_offline_with_random_weights(tmp_path):
    proc = run_cli("target=mixed_6", "octaves=2", "steps=1", "model.weights=null", "input.size=160",
                   "device=cpu", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert "random weights" in proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "inception_v3" and metrics["weights"] is None
    assert set(metrics["targets"]) == {"Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"}


def _bad_weights(tmp_path: Path) -> str:
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return f"model.weights={path}"


def _text_as_jpg(tmp_path: Path) -> str:
    path = tmp_path / "notes.jpg"
    path.write_text("not a picture")
    return f"input.path={path}"


# (overrides, what the one error line says); every case: exit 2, no traceback, nothing on stdout
USER_ERRORS = {
    "missing image": (lambda t: ["input=image", f"input.path={t}/missing.jpg"], "image not found"),
    "unreadable image": (lambda t: ["input=image", _text_as_jpg(t)], "cannot read image"),
    "unknown layer": (lambda t: ["+target.Mixed_6e=all"], r"unknown layer 'Mixed_6e'.*valid layers: block_0, block_1"),
    "channel out of range": (lambda t: ["target.block_12=[3,5000]"], r"channel 5000 is out of range: block_12 has \d+ channels"),
    "octaves < 1": (lambda t: ["octaves=0"], "octaves must be at least 1"),
    "steps < 0": (lambda t: ["steps=-1"], "steps must be 0 or more"),
    "step size <= 0": (lambda t: ["step_size=0"], "step_size must be a positive number"),
    "too many octaves": (lambda t: ["octaves=9"], r"octaves=9 is too many.*largest count that fits is octaves=3"),
    "wrong architecture": (lambda t: [_bad_weights(t)], r"does not fit this architecture.*missing: _conv_stem"),
    "empty target": (lambda t: ["~target.block_12"], "target dictionary is empty"),
}


@pytest.mark.parametrize("case", USER_ERRORS)
def test_bad_input_gives_one_clear_line_and_exit_2(tmp_path, case):
    overrides, message = USER_ERRORS[case]
    proc = run_cli(*TINY, *overrides(tmp_path), f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["status"] == "failed" and re.search(message, result["error"])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dreamrun: error: ")
    assert re.search(message, lines[0]), lines[0]


def test_weights_that_cannot_be_downloaded_say_where_to_put_them(tmp_path):
    env_proxy = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                 "TORCH_HOME": str(tmp_path / "torch")}
    proc = run_cli("input.size=128", "octaves=1", "steps=1", "device=cpu",
                   f"hydra.run.dir={tmp_path / 'run'}", env=env_proxy)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "could not download" in proc.stderr
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "inception_v3_google-0cc3c7bd.pth") in proc.stderr
    assert "model.weights=" in proc.stderr


@pytest.mark.parametrize("override, message", [("octave=3", "Key 'octave' not in"),
                                               ("octaves=many", "could not be converted to Integer")])
def test_config_typos_are_refused_by_hydra_without_a_traceback(tmp_path, override, message):
    proc = run_cli(override, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ctrl_c_exits_130_and_marks_the_run_interrupted(tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "dreamrun", *TINY, "steps=100000", f"hydra.run.dir={run_dir}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run_dir / "input.png").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # well inside the first octave's steps
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and out == ""
    assert json.loads((run_dir / "result.json").read_text())["status"] == "interrupted"
    assert not (run_dir / "dream.png").exists()
