"""A user's Hydra callback (hydra.callbacks: how Hydra users attach MLflow, notifications and the like)
sees every job's real end, with every launcher: on_job_end after the job's result.json exists, its
JobReturn's status the job's outcome."""
import pytest

from conftest import recorded_job_ends, recorder_env, run_cli


BASE = ["model=efficientnet_lite0", "input.size=96", "octaves=1", "steps=1", "device=cpu", "precision=fp32",
        "log=none"]


@pytest.mark.parametrize("launcher", ["basic", "batched", pytest.param("parallel", marks=pytest.mark.slow),
                                      pytest.param("local", marks=pytest.mark.slow)])
def test_on_job_end_comes_after_each_job_with_its_real_outcome(tmp_path, launcher):
    env, callback = recorder_env(tmp_path)
    proc = run_cli("-m", f"hydra/launcher={launcher}", *BASE, "target.block_12=[3],[5000],[7]", callback,
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", env=env)
    assert proc.returncode == 1, proc.stderr  # one job failed: the sweep says so
    assert "Traceback" not in proc.stderr
    assert recorded_job_ends(tmp_path) == [("0", "COMPLETED", "completed"), ("1", "FAILED", "failed"),
                                           ("2", "COMPLETED", "completed")]
    assert (tmp_path / "sweep" / "summary.png").is_file()
