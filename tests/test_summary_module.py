"""`python -m dreamrun.sweeps.summary`, the module form of dreamrun-summarize."""
import subprocess
import sys

from conftest import REPO, fake_sweep_job


def test_python_m_sweep_summary_runs_without_runpys_warning(tmp_path):
    fake_sweep_job(tmp_path, 0, ["seed=1"], "completed")
    fake_sweep_job(tmp_path, 1, ["seed=2"], "completed")
    # runpy warns "found in sys.modules after import of package ... but prior to execution" when importing
    # dreamrun.sweeps already imported the module; -W error turns that into a failure
    result = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-m", "dreamrun.sweeps.summary",
                             str(tmp_path), "--no-tensorboard"], cwd=REPO, capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    assert result.stdout.strip() == str(tmp_path / "summary.png")
