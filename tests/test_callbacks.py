"""A user's Hydra callback (hydra.callbacks: how Hydra users attach MLflow, notifications and the like)
sees every job's real end, with every launcher: on_job_end after the job's result.json exists, its
JobReturn's status the job's outcome."""
import json
import os

import pytest

from conftest import run_cli

RECORDER = '''
import json, os
from pathlib import Path
from hydra.experimental.callback import Callback

class Recorder(Callback):
    def _write(self, **row):
        with open(os.environ["RECORDER_FILE"], "a") as f:
            f.write(json.dumps(row) + "\\n")

    def on_job_start(self, config, **kwargs):
        self._write(event="start", run_dir=config.hydra.runtime.output_dir)

    def on_job_end(self, config, job_return, **kwargs):
        run_dir = Path(job_return.hydra_cfg.hydra.runtime.output_dir)
        result = run_dir / "result.json"
        self._write(event="end", run_dir=str(run_dir), status=job_return.status.name,
                    recorded=json.loads(result.read_text())["status"] if result.is_file() else None)
'''

BASE = ["model=efficientnet_lite0", "input.size=96", "octaves=1", "steps=1", "device=cpu", "precision=fp32",
        "log=none"]


@pytest.mark.parametrize("launcher", ["basic", "batched"])
def test_on_job_end_comes_after_each_job_with_its_real_outcome(tmp_path, launcher):
    (tmp_path / "recorder.py").write_text(RECORDER)
    events = tmp_path / "events.jsonl"
    proc = run_cli("-m", f"hydra/launcher={launcher}", *BASE, "target.block_12=[3],[5000],[7]",
                   "+hydra.callbacks.recorder._target_=recorder.Recorder", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                   env={"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                        "RECORDER_FILE": str(events)})
    assert proc.returncode == 1, proc.stderr  # one job failed: the sweep says so
    assert "Traceback" not in proc.stderr
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    ends = {row["run_dir"]: row for row in rows if row["event"] == "end"}
    starts = [row["run_dir"] for row in rows if row["event"] == "start"]
    assert sorted(starts) == sorted(ends) and len(ends) == 3  # every job ran, each started and ended once
    outcomes = sorted((os.path.basename(d), row["status"], row["recorded"]) for d, row in ends.items())
    assert [(name.split("_")[0], status, recorded) for name, status, recorded in outcomes] == [
        ("0", "COMPLETED", "completed"), ("1", "FAILED", "failed"), ("2", "COMPLETED", "completed")]
    assert (tmp_path / "sweep" / "summary.png").is_file()
