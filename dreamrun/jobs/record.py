"""result.json: what became of one job, written into its run dir whatever the outcome.

    {"status": "completed" | "failed" | "interrupted", "overrides": [...], "error": null | "...",
     "metrics": {...}, "paths": {"dream": "dream.png", ...}, "started": "...", "finished": "...",
     "host": "...", "pid": 1234}

Sweep summaries are built from these files alone, because under the joblib and submitit launchers
jobs run in other processes (or on other machines) and nothing they hold in memory comes back.
"""
import json
import os
import shutil
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from dreamrun.outputs.files import save_json

RESULT_FILE = "result.json"
COMPLETED, FAILED, INTERRUPTED = "completed", "failed", "interrupted"
# the files a job may leave, relative to its run dir so a moved sweep dir stays readable
OUTPUT_FILES = {"dream": "dream.png", "input": "input.png", "metrics": "metrics.json", "log": "dreamrun.log",
                "interrupted": "interrupted.png", "last_good": "last_good.png",
                "animation": "zoom.gif", "animation_webp": "zoom.webp", "video": "zoom.mp4"}


# everything a job writes besides Hydra's .hydra/ and the log: what overwrite=true removes first
RESULT_GLOBS = ["result.json", "metrics.json", "*.png", "events.out.tfevents.*", "zoom.*", "zoom_state.json", "frames"]


def has_results(run_dir: Path) -> bool:
    return (run_dir / RESULT_FILE).is_file() or (run_dir / OUTPUT_FILES["dream"]).is_file()


def clear_results(run_dir: Path) -> None:
    """Remove an earlier run's results from run_dir, so none of them mixes with the new run's."""
    for pattern in RESULT_GLOBS:
        for path in run_dir.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class JobRecord:
    overrides: list[str]
    status: str = "running"
    error: Optional[str] = None
    metrics: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    started: str = field(default_factory=_now)
    finished: Optional[str] = None
    host: str = field(default_factory=socket.gethostname)  # on a cluster: which node ran it
    pid: int = field(default_factory=os.getpid)

    def finish(self, run_dir: Path, status: str, *, error: Optional[str] = None,
               metrics: Optional[dict[str, Any]] = None) -> None:
        """Record the outcome and write result.json (atomically: a reader never sees half of it)."""
        self.status, self.error, self.metrics = status, error, metrics or {}
        self.finished = _now()
        self.paths = {name: file for name, file in OUTPUT_FILES.items() if (run_dir / file).is_file()}
        save_json(asdict(self), run_dir / RESULT_FILE)


def read_record(run_dir: Path) -> Optional[JobRecord]:
    """The job's record, or None when it never finished one (killed, or still running)."""
    try:
        return JobRecord(**json.loads((run_dir / RESULT_FILE).read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None
