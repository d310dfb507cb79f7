"""hydra/launcher=batched: a sweep whose jobs dream together, in this process.

Every job of the sweep is set up first, as Hydra's basic launcher sets one up (its config composed,
its run dir and .hydra/ record); then the jobs that can share a network and a batch (batching.group_key)
dream together, and the others one after another, as with `basic`. Each job's run dir ends as any
launcher leaves it: dream.png, octave images, metrics.json, result.json, its log and TensorBoard run.
"""
import contextvars
import copy
import logging
import threading
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, run_job
from omegaconf import open_dict, read_write

from dreamrun.errors import refuse
from dreamrun.sweeps.batching import Job, Member, Models, dream_together, group_key, model_key
from dreamrun.sweeps.launch import failed_return, job_configs

log = logging.getLogger(__name__)


class JobLogs(logging.Handler):
    """Each job's log lines into its own run dir's log file, by the thread that logs them."""

    def __init__(self, formatter: logging.Formatter):
        super().__init__()
        self.setFormatter(formatter)
        self._files: dict[str, logging.FileHandler] = {}
        self._lock_files = threading.Lock()

    def route(self, thread_name: str, path: Path) -> None:
        """From now on, what thread_name logs goes to path (a job's log; the thread's previous job's is closed)."""
        with self._lock_files:
            if thread_name in self._files:
                self._files.pop(thread_name).close()
            path.parent.mkdir(parents=True, exist_ok=True)  # Hydra makes the run dir as the job starts
            self._files[thread_name] = logging.FileHandler(path)
            self._files[thread_name].setFormatter(self.formatter)

    def emit(self, record: logging.LogRecord) -> None:
        handler = self._files.get(record.threadName)
        if handler is not None:
            handler.emit(record)

    def close(self) -> None:
        for handler in self._files.values():
            handler.close()
        super().close()


class HydraRuns:
    """Runs each job through Hydra's run_job with the sweep's task function, as Hydra's basic launcher does:
    the app runs, callbacks see the job start and end, and its JobReturn says how it ended."""

    def __init__(self, launcher: Any):
        self.launcher = launcher
        self.returns: dict[int, JobReturn] = {}
        self._turns: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # a group's Rendezvous -> its InTurn
        self._lock = threading.Lock()

    def __call__(self, job: Job, kind: Optional[Member]) -> None:
        if kind is None:  # alone, in the launching thread: an interrupt's SystemExit ends the sweep as with basic
            self._run(job, None)
            return
        with self._lock:
            turn = self._turns.setdefault(kind.rendezvous, InTurn(kind.count))
        turn.wait_for(kind.index)
        try:
            self._run(job, turn.member(kind))
        except BaseException as e:  # an interrupt's SystemExit, a callback's error: in a thread they would vanish
            job.error = e
        finally:
            turn.started(kind.index)

    def _run(self, job: Job, kind: Optional[Callable]) -> None:
        token = _joined.set(kind)
        try:
            ret = run_job(hydra_context=self.launcher.hydra_context, task_function=self.launcher.task_function,
                          config=job.launch, job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
                          configure_logging=False)
        finally:
            _joined.reset(token)
        self.returns[id(job)] = ret


class InTurn:
    """Hydra keeps the running job's HydraConfig in one process-wide slot, not one per thread: run_job
    sets it for its job, the app reads it as it starts, and when the job ends run_job puts back what the
    slot held as it began (in a group, the previous job's config: the launcher puts the sweep's back after
    the group). Jobs dreaming together run at once, one thread each; so each enters run_job only when the
    one before has read its config, and none goes further until all have: no job's end can change the
    slot while another is reading it. (tests/test_batching.py and tests/test_callbacks.py: each job's run
    dir, overrides and callbacks, as with basic.)"""

    def __init__(self, count: int):
        self._started = [threading.Event() for _ in range(count)]

    def wait_for(self, index: int) -> None:
        if index > 0:
            self._started[index - 1].wait()

    def started(self, index: int) -> None:
        self._started[index].set()

    def member(self, member: Member) -> Callable:
        """member as a job kind that says when its job has read its config, and waits for the others'."""
        def kind(*args: Any, **kwargs: Any) -> Any:
            self.started(member.index)
            for started in self._started:
                started.wait()
            return member(*args, **kwargs)
        return kind


_joined: contextvars.ContextVar[Optional[Callable]] = contextvars.ContextVar("dreamrun_joined", default=None)


def joined_kind() -> Optional[Callable]:
    """The job kind this thread's job dreams as, where the batched launcher runs it in a group; else None."""
    return _joined.get()


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """What BatchedLauncher.launch does: compose every job, then dream them, together where they can."""
    config = launcher.config
    if config.hydra.job.chdir:
        refuse("hydra/launcher=batched runs its jobs in threads of one process, and hydra.job.chdir=true "
               "would move them all at once: leave it false (dreamrun writes into each job's dir without it)")
    jobs: list[Job] = []
    for sweep_config, overrides in zip(job_configs(launcher, job_overrides, initial_job_idx), job_overrides):
        cfg = copy.deepcopy(sweep_config)  # the job's own config, as run_job hands it to the app
        with read_write(cfg), open_dict(cfg):
            del cfg["hydra"]
        run_dir = Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)
        with read_write(sweep_config.hydra.runtime), open_dict(sweep_config.hydra.runtime):
            sweep_config.hydra.runtime.output_dir = str(run_dir.absolute())  # as run_job sets it
        jobs.append(Job(cfg, run_dir, list(overrides), launch=sweep_config))
    # the job logging config (the console, and a file per job), as the last job resolves it
    jobs[-1].run_dir.mkdir(parents=True, exist_ok=True)
    configure_log(sweep_config.hydra.job_logging, config.hydra.verbose)
    runs = HydraRuns(launcher)
    _dream(jobs, config, launcher.exact, runs)
    return [runs.returns.get(id(job)) or failed_return(job.launch, job.error) for job in jobs]


def _dream(jobs: list[Job], config: Any, exact: bool, runs: HydraRuns) -> None:
    by_key: dict[Optional[str], list[Job]] = defaultdict(list)
    for job in jobs:
        by_key[group_key(job.cfg)].append(job)
    groups = [group for key, group in by_key.items() if key is not None and len(group) > 1]
    groups.sort(key=lambda group: model_key(group[0].cfg))  # a model's groups one after another
    together = {id(job) for group in groups for job in group}
    alone = [job for job in jobs if id(job) not in together]
    log.info("dreaming %d jobs: %s", len(jobs), ", ".join(
        [f"{len(group)} together" for group in groups] + ([f"{len(alone)} alone"] if alone else [])))
    logs = _job_logs(config)
    models = Models(groups)  # each model built once, for every group that dreams with it
    sweeps_own = HydraConfig.instance().cfg
    try:
        for group in groups:
            for member, job in enumerate(group):
                logs.route(f"dreamrun-job-{member}", job.run_dir / f"{config.hydra.job.name}.log")
            dream_together(group, exact, models, runs)
            # run_job puts back what it found as its job started, another job's config in a group: the sweep's
            HydraConfig.instance().cfg = sweeps_own
        for job in alone:
            logs.route(threading.current_thread().name, job.run_dir / f"{config.hydra.job.name}.log")
            runs(job, None)
    finally:
        logging.getLogger().removeHandler(logs)
        logs.close()


def _job_logs(config: Any) -> JobLogs:
    """The root logger as the job logging config set it, with a log file per job for its one file."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    for handler in files:  # the last job's file, from the config: each job gets its own below
        root.removeHandler(handler)
        handler.close()
    logs = JobLogs(files[0].formatter if files else logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
    root.addHandler(logs)
    return logs
