"""hydra/launcher=batched: a sweep whose jobs dream together, in this process.

Every job of the sweep is set up first, as Hydra's basic launcher sets one up (its config composed,
its run dir and .hydra/ record); then the jobs that can share a network and a batch (batching.group_key)
dream together, and the others one after another, as with `basic`. Each job's run dir ends as any
launcher leaves it: dream.png, octave images, metrics.json, result.json, its log and TensorBoard run.
"""
import logging
import sys
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from omegaconf import open_dict

from dreamrun.sweeps.batching import Job, Models, dream_together, group_key, model_key, run_one

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


class ComposedOnce:
    """A config loader's load_sweep_config that remembers what it composed, for the launcher to take:
    Hydra's sweeper composes every job to check it (validate_batch_is_legal) and throws the config
    away, then a launcher composes it again (0.09 s a job on a 2-core CPU)."""

    def __init__(self, compose: Any):
        self.compose = compose
        self.made: dict[tuple[int, tuple[str, ...]], list[Any]] = defaultdict(list)

    def __call__(self, master_config: Any, sweep_overrides: list[str]) -> Any:
        config = self.compose(master_config, sweep_overrides)
        self.made[(id(master_config), tuple(sweep_overrides))].append(config)
        return config

    def take(self, master_config: Any, sweep_overrides: list[str]) -> Any:
        """The job's config the check composed (each one once), or a new one."""
        made = self.made.get((id(master_config), tuple(sweep_overrides)))
        return made.pop(0) if made else self.compose(master_config, sweep_overrides)


def compose_each_job_once(config_loader: Any) -> None:
    """From now on config_loader remembers the configs it composes, for compose_job to take."""
    if not isinstance(config_loader.load_sweep_config, ComposedOnce):
        config_loader.load_sweep_config = ComposedOnce(config_loader.load_sweep_config)


def compose_job(config_loader: Any, config: Any, overrides: list[str]) -> Any:
    compose = config_loader.load_sweep_config
    return compose.take(config, overrides) if isinstance(compose, ComposedOnce) else compose(config, overrides)


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
    """What BatchedLauncher.launch does: set every job up, then dream them, together where they can."""
    setup_globals()
    config, context = launcher.config, launcher.hydra_context
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    jobs: list[Job] = []
    returns: list[JobReturn] = []
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        sweep_config = compose_job(context.config_loader, config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = num

        def set_up(cfg: Any) -> None:
            jobs.append(Job(cfg, Path(HydraConfig.get().runtime.output_dir), list(overrides)))

        # Hydra writes the job's run dir and .hydra/ record; the job dreams below
        returns.append(run_job(hydra_context=context, task_function=set_up, config=sweep_config,
                               job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
                               configure_logging=False))
    # the job logging config (the console, and a file per job), as the last job set up resolves it
    configure_log(sweep_config.hydra.job_logging, config.hydra.verbose)
    _dream(jobs, config, launcher.exact)
    return returns


def _dream(jobs: list[Job], config: Any, exact: bool) -> None:
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
    try:
        for group in groups:
            for member, job in enumerate(group):
                logs.route(f"dreamrun-job-{member}", job.run_dir / f"{config.hydra.job.name}.log")
            try:
                dream_together(group, exact, models)
            finally:
                _report(group)
        for job in alone:
            logs.route(threading.current_thread().name, job.run_dir / f"{config.hydra.job.name}.log")
            try:
                run_one(job, _kind(job))
            finally:
                _report([job])
            if isinstance(job.error, KeyboardInterrupt):
                raise job.error
    finally:
        logging.getLogger().removeHandler(logs)
        logs.close()


def _kind(job: Job) -> type:
    from dreamrun.jobs.kinds import job_kind

    return job_kind(job.cfg.mode)


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


def _report(jobs: list[Job]) -> None:
    """The path of each finished job's dream on stderr, as basic prints it (a failed job's error was logged)."""
    for job in jobs:
        if job.result is not None:
            print(job.result.output.absolute(), file=sys.stderr, flush=True)
