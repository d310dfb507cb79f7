"""result.json: what became of one job, written into its run dir whatever the outcome.

    {"status": "running" | "completed" | "failed" | "interrupted", "overrides": [...], "error": null | "...",
     "metrics": {...}, "paths": {"dream": "dream.png", ...}, "started": "...", "finished": "...",
     "host": "...", "pid": 1234}

`paths` names everything in the run dir: role -> path relative to the run dir (so a moved sweep dir
stays readable), in file-name order. A dream run from the CLI:

    {"lock": ".dreamrun.lock", "hydra": ".hydra/", "dream": "dream.png", "log": "dreamrun.log",
     "tensorboard": "events.out.tfevents.1732700000.host.1234.0", "input": "input.png",
     "metrics": "metrics.json", "octave_0": "octave_0.png", "octave_1": "octave_1.png",
     "result": "result.json"}

- a file with a fixed name has its role (OUTPUT_FILES, result, zoom_state, video_state); octave_<i>.png is
  octave_<i>; a TensorBoard event file is tensorboard (a resumed zoom adds tensorboard_1, ...)
- a dir ends in "/" and stands for everything below it: a zoom's frames/ (possibly thousands of
  frames) and Hydra's .hydra/
- anything else in the run dir is listed under its own name, so nothing a job leaves goes unnamed
- "running" from the moment the job claims its dir (jobs.claim) until it ends: a record that still says so
  once nobody holds the dir's lock belongs to a job that died (killed, or its machine lost)
- result.json lists itself: `paths` is taken just before it is written. Once a job has ended, every
  file in its run dir is a value of `paths` or under a value ending in "/", and every value exists.

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

from dreamrun.jobs.frame_state import KINDS
from dreamrun.outputs.files import save_json
from dreamrun.outputs.run_files import (FRAMES_DIR, HYDRA_DIR, LOCK_FILE, OCTAVE_IMAGE, OUTPUT_FILES, RESULT_FILE,
                                        RESULT_GLOBS, TENSORBOARD_PREFIX)

RUNNING, COMPLETED, FAILED, INTERRUPTED = "running", "completed", "failed", "interrupted"
# every name in a run dir with a fixed role: the outputs, then what records and resumes them
ROLES = {name: role for role, name in {**OUTPUT_FILES, "result": RESULT_FILE, "frames": FRAMES_DIR, "hydra": HYDRA_DIR,
                                       "lock": LOCK_FILE,
                                       **{f"{k.name}_state": k.state_file for k in KINDS.values()}}.items()}


def has_results(run_dir: Path) -> bool:
    return (run_dir / RESULT_FILE).is_file() or (run_dir / OUTPUT_FILES["dream"]).is_file()


def clear_results(run_dir: Path) -> None:
    """Remove an earlier run's results from run_dir, so none of them mixes with the new run's."""
    for pattern in RESULT_GLOBS:
        for path in run_dir.glob(pattern):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _role(name: str) -> str:
    if name in ROLES:
        return ROLES[name]
    octave = OCTAVE_IMAGE.fullmatch(name)
    if octave:
        return octave.group(1)
    return "tensorboard" if name.startswith(TENSORBOARD_PREFIX) else name


def run_dir_paths(run_dir: Path) -> dict[str, str]:
    """Everything in run_dir, and result.json about to be: role -> relative path, a dir's ending in "/"."""
    entries = {entry.name: entry.is_dir() for entry in run_dir.iterdir()} if run_dir.is_dir() else {}
    entries[RESULT_FILE] = False
    paths: dict[str, str] = {}
    for name in sorted(entries):
        role = base = _role(name)
        again = 0
        while role in paths:  # several of a kind (TensorBoard event files): tensorboard, tensorboard_1, ...
            again += 1
            role = f"{base}_{again}"
        paths[role] = name + "/" if entries[name] else name
    return paths


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class JobRecord:
    overrides: list[str]
    status: str = RUNNING  # until the run ends: jobs.claim writes it so at the start
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
        self.paths = run_dir_paths(run_dir)
        save_json(asdict(self), run_dir / RESULT_FILE)


def read_record(run_dir: Path) -> Optional[JobRecord]:
    """The job's record, or None when it never finished one (killed, or still running)."""
    try:
        return JobRecord(**json.loads((run_dir / RESULT_FILE).read_text()))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None
