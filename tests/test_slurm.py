"""Sweeps through hydra/launcher=slurm on a real SLURM cluster: what clusters do to jobs.

Run where `sinfo` answers (a one-node cluster: `.ci/start-slurm`, as root), skipped elsewhere;
DREAMRUN_REQUIRE_SLURM=1 (CI sets it) makes a missing cluster a failure instead. Each sweep is named
uniquely and cancelled at the end, so a test that fails leaves no job holding the cluster's CPUs.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import logged_progress_images, recorded_job_ends, recorder_env

pytestmark = pytest.mark.slurm


def _cluster_answers() -> bool:
    if not shutil.which("sinfo"):
        return False
    listed = subprocess.run(["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, timeout=60)
    return listed.returncode == 0 and any(state in listed.stdout for state in ("idle", "mix", "alloc"))


@pytest.fixture(scope="module", autouse=True)
def cluster():
    if not _cluster_answers():
        if os.environ.get("DREAMRUN_REQUIRE_SLURM") == "1":
            pytest.fail("DREAMRUN_REQUIRE_SLURM=1 but no SLURM cluster answers here: run .ci/start-slurm as root")
        pytest.skip("no SLURM cluster answers here (sinfo); .ci/start-slurm starts one, as root")


# the preset on a CPU-only one-node cluster: no GPU (the one documented override), one CPU per job so two
# jobs run at once on 2 cores, and memory that fits the node
CPU_PARTITION = ["hydra/launcher=slurm", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_task=0",
                 "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1"]
TINY = ["model=efficientnet_lite0", "input.size=64", "octaves=1", "device=cpu"]


@pytest.fixture
def sweep(tmp_path):
    """A function that starts `python -m dreamrun -m` through the preset, named so it can be cancelled."""
    name = f"dreamrun-test-{uuid.uuid4().hex[:8]}"
    started = []

    def start(*overrides: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "dreamrun", "-m", *CPU_PARTITION, f"hydra.launcher.name={name}", *TINY,
                                 *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        return proc

    yield start
    subprocess.run(["scancel", f"--name={name}"], capture_output=True, timeout=60)
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(path.parent for path in sweep_dir.glob("*/.hydra"))


def _result(job_dir: Path) -> dict:
    return json.loads((job_dir / "result.json").read_text())


def _slurm_id(sweep_dir: Path, job_num: int) -> str:
    """The SLURM id of job job_num of the sweep's array: submitit's folder per task, ARRAY_TASK."""
    folders = [path.name for path in (sweep_dir / ".submitit").glob(f"*_{job_num}") if path.is_dir()]
    assert len(folders) == 1, folders
    return folders[0]


def test_a_sweep_runs_on_the_cluster_quietly_with_a_result_per_job(sweep, tmp_path):
    proc = sweep("steps=1", "seed=0,1")
    out, err = proc.communicate(timeout=300)
    sweep_dir = tmp_path / "sweep"
    assert proc.returncode == 0, err
    assert out.splitlines() == [str(sweep_dir / "summary.png")]
    jobs = _job_dirs(sweep_dir)
    assert [job.name for job in jobs] == ["0_seed=0", "1_seed=1"]
    for job in jobs:
        assert _result(job)["status"] == "completed"
        with Image.open(job / "dream.png") as dream, Image.open(job / "input.png") as source:
            assert dream.size == source.size and max(dream.size) == 64  # input.size=64
    summary = (sweep_dir / "summary.md").read_text()
    assert summary.count("| completed |") == 2, summary
    # polling is quiet where accounting is off: neither submitit's warnings nor sacct's own complaint
    assert "sacct" not in err and "Bypassing" not in err and "accounting" not in err, err
    # a line per job, the sweep's report; nothing else
    assert len(err.strip().splitlines()) <= 6, err
    # the jobs asked for no GPU, and SLURM will not requeue them (they would start their dreams over)
    script = next((sweep_dir / ".submitit").glob("*/*_submission.sh")).read_text()
    assert "#SBATCH --gpus-per-task=0" in script and "#SBATCH --no-requeue" in script


def test_a_failing_job_fails_alone(sweep, tmp_path, monkeypatch):
    env, callback = recorder_env(tmp_path)  # a user's callback, run in each SLURM job
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    proc = sweep("steps=1", "target.block_12=[0],[2000]", callback)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err  # a sweep in which some job failed
    assert recorded_job_ends(tmp_path) == [("0", "COMPLETED", "completed"), ("1", "FAILED", "failed")]
    good, bad = _job_dirs(tmp_path / "sweep")
    assert _result(good)["status"] == "completed" and (good / "dream.png").is_file()
    failed = _result(bad)
    assert failed["status"] == "failed" and "channel 2000 is out of range" in failed["error"]
    assert "Traceback" not in err


def _wait_until_dreaming(job_dir: Path, proc: subprocess.Popen, steps: int = 2, timeout: float = 180) -> None:
    """Until the job has flushed `steps` progress images to TensorBoard: it has dreamed that many steps."""
    deadline = time.monotonic() + timeout
    while logged_progress_images(job_dir) < steps:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the job never started dreaming"
        time.sleep(0.5)


def _assert_interrupted_with_its_last_image(job_dir: Path, reason: str) -> None:
    result = _result(job_dir)
    assert (result["status"], result["error"]) == ("interrupted", reason)
    assert result["paths"]["interrupted"] == "interrupted.png"
    with Image.open(job_dir / "interrupted.png") as last, Image.open(job_dir / "input.png") as source:
        assert last.size == source.size
        assert np.abs(np.asarray(last, dtype=float) - np.asarray(source, dtype=float)).mean() > 0.5  # dreamed


def test_scancel_interrupts_one_job_which_keeps_its_last_image(sweep, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = sweep("steps=100000,40", "log.image_every=1", "log.image_max_side=16")
    long_job = sweep_dir / "0_steps=100000"
    _wait_until_dreaming(long_job, proc)
    subprocess.run(["scancel", _slurm_id(sweep_dir, 0)], check=True, timeout=60)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err  # not every job completed
    _assert_interrupted_with_its_last_image(long_job, "SIGTERM")
    assert _result(sweep_dir / "1_steps=40")["status"] == "completed"
    # the job's line, SLURM's word on it, and the summary
    assert "interrupted 0_steps=100000: SIGTERM" in err and "CANCELLED" in err, err
    (sweep_dir / "summary.md").unlink()
    summarized = subprocess.run([Path(sys.executable).parent / "dreamrun-summarize", sweep_dir], capture_output=True,
                                text=True, timeout=120)
    assert summarized.returncode == 0, summarized.stderr
    assert "interrupted 0_steps=100000: SIGTERM" in summarized.stderr + summarized.stdout
    rows = [line for line in (sweep_dir / "summary.md").read_text().splitlines() if "steps=100000" in line]
    assert len(rows) == 1 and "| interrupted |" in rows[0], rows


def test_the_time_limit_warning_interrupts_the_job_before_slurm_kills_it(sweep, tmp_path):
    """A 2-minute limit, and SLURM asked (by submitit) for SIGUSR2 30 s before it: the job stops on the
    warning with its last image, instead of being killed at the limit with nothing to show. SLURM may
    send the signal up to 60 s early (sbatch's manual), so 2 minutes: with a 1-minute limit it came 2 s
    into a job once, before its first step, leaving no image to keep."""
    proc = sweep("steps=100000", "seed=0", "hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=30")
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 1, err
    (job,) = _job_dirs(tmp_path / "sweep")
    _assert_interrupted_with_its_last_image(job, "SIGUSR2: the cluster job's time limit is near")
