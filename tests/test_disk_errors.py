"""A disk that will not take a file: one line naming the file and why, exit 2, nothing half-written.

A real full disk where this machine lets the tests mount a small tmpfs (root, as CI runs), and anywhere a
child whose file-size limit (RLIMIT_FSIZE) a file crosses: the kernel refuses that write as a disk would."""
import json
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, ZOOM
from helpers.clips import panning_clip

NOISE = ["model=efficientnet_lite0", "input=noise", "input.size=512", "octaves=2", "steps=1", "device=cpu"]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB file system of its own: a noise image of 512 px (0.8 MB as PNG) nearly fills it."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); "
                    "test_a_write_over_the_file_size_limit_is_one_line covers a refused write")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def dreamrun(*args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    def file_size_limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the child
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "dreamrun", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, preexec_fn=file_size_limit if limit else None)


def assert_one_line(proc: subprocess.CompletedProcess, reason: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Logging error" not in proc.stderr, proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("dreamrun: error:")]
    assert line.startswith(f"dreamrun: error: {reason}: "), line
    return line


def assert_nothing_half_written(directory: Path) -> None:
    assert not [p.name for p in directory.rglob("*") if ".part-" in p.name]


def test_a_full_disk_is_one_line_naming_the_file_and_the_space(small_disk):
    run_dir = small_disk / "run"
    proc = dreamrun(*NOISE, f"hydra.run.dir={run_dir}")
    line = assert_one_line(proc, "no space left on device")
    assert " needed for " in line and f"free in {run_dir}" in line, line
    assert_nothing_half_written(run_dir)
    result = json.loads((run_dir / "result.json").read_text())  # small: it fits where the image did not
    assert result["status"] == "failed" and result["error"].startswith("no space left on device")


def test_a_write_over_the_file_size_limit_is_one_line(tmp_path):
    run_dir = tmp_path / "run"
    proc = dreamrun(*NOISE, f"hydra.run.dir={run_dir}", limit=300_000)
    line = assert_one_line(proc, "file too large")
    assert "needed for input.png" in line and "(ulimit -f)" in line, line
    assert_nothing_half_written(run_dir)
    assert json.loads((run_dir / "result.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_a_zoom_on_a_full_disk_stops_in_one_line(small_disk):
    run_dir = small_disk / "zoom"
    proc = dreamrun(*ZOOM, "input.size=256", "zoom.frames=12", f"hydra.run.dir={run_dir}")
    assert_one_line(proc, "no space left on device")
    assert_nothing_half_written(run_dir)


@pytest.mark.slow
def test_a_video_on_a_full_disk_stops_in_one_line(small_disk, tmp_path):
    clip = tmp_path / "clip.mp4"
    panning_clip(clip, frames=12, width=256, height=192)
    run_dir = small_disk / "video"
    proc = dreamrun("mode=video", "input=video", "model=efficientnet_lite0", f"input.path={clip}", "octaves=1", "steps=1",
                    "video.steps_per_frame=1", "device=cpu", f"hydra.run.dir={run_dir}")
    assert_one_line(proc, "no space left on device")
    assert_nothing_half_written(run_dir)


@pytest.mark.slow
def test_in_a_sweep_the_other_jobs_go_on_after_a_full_disk(small_disk):
    sweep_dir = small_disk / "sweep"
    proc = dreamrun("-m", *NOISE, "input.size=512,64", f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    statuses = {d.name.split("_")[0]: json.loads((d / "result.json").read_text())["status"] for d in sweep_dir.glob("*/")}
    assert statuses == {"0": "failed", "1": "completed"}
    assert_nothing_half_written(sweep_dir)
