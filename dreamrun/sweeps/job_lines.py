"""A line on the terminal for each finished job, for launchers whose jobs cannot print there.

submitit's jobs run in processes whose stdout and stderr go to files under .submitit/, so a sweep
through hydra/launcher=local (or slurm) would be silent until its summary. A thread in the process
that launched the sweep watches the job dirs for result.json and says what became of each job.
"""
import sys
import threading
from pathlib import Path
from typing import TextIO

from dreamrun.jobs.claim import DIED, run_status
from dreamrun.jobs.record import COMPLETED, RUNNING, read_record

POLL_SECONDS = 1.0


def job_line(job_dir: Path) -> str | None:
    """What became of the job in job_dir, or None while it has not ended."""
    record = read_record(job_dir)
    if record is None:
        return None
    if record.status == RUNNING:
        return f"{DIED} {job_dir.name}: its process ended without a word (killed?)" \
            if run_status(job_dir) == DIED else None
    if record.status == COMPLETED:
        made = record.paths.get("animation") or record.paths.get("animation_webp") or record.paths.get("dream")
        return str((job_dir / made).absolute()) if made else f"{record.status} {job_dir.name}"
    return f"{record.status} {job_dir.name}: {record.error}"


class JobLines(threading.Thread):
    """Prints job_line for each job dir of sweep_dir once it has one, until stop()."""

    def __init__(self, sweep_dir: Path, stream: TextIO = sys.stderr):
        super().__init__(name="dreamrun-job-lines", daemon=True)  # never keeps the process alive
        self.sweep_dir = Path(sweep_dir)
        self.stream = stream
        self.reported: set[Path] = set()
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(POLL_SECONDS):
            self.report_new()

    def report_new(self) -> None:
        for result in sorted(self.sweep_dir.glob("*/result.json")):
            job_dir = result.parent
            line = None if job_dir in self.reported else job_line(job_dir)
            if line is not None:
                self.reported.add(job_dir)
                print(line, file=self.stream, flush=True)

    def stop(self) -> None:
        """Report what finished since the last look, then end."""
        self._stopped.set()
        if self.is_alive():
            self.join()
        self.report_new()
