"""Hydra glue for sweeps: where the sweep writes, how its jobs are named, which GPU each job takes.

Hydra skips `on_multirun_end` when a job failed, so the callback only notes the sweep dir;
the CLI summarises the sweep after Hydra returns, however the sweep ended.
"""
import importlib
import shutil
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus, configure_log, setup_globals
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from dreamrun.errors import JobFailed, refuse
from dreamrun.sweeps.job_lines import JobLines

EXCLUDE_KEYS = "hydra.job.config.override_dirname.exclude_keys"

_sweep_dir: Optional[str] = None
_job_lines: Optional[JobLines] = None


OUR_LAUNCHERS = "hydra_plugins.dreamrun_launchers."


def register_launcher(target: str) -> None:
    """Make one of dreamrun's launchers known to Hydra. Hydra finds plugins by listing the modules of
    hydra_plugins, which an editable install (pip install -e) does not show; it imports them all the same."""
    from hydra.core.plugins import Plugins

    module, name = target.rsplit(".", 1)
    Plugins.instance().register(getattr(importlib.import_module(module), name))


class LauncherCheck(Callback):
    """A launcher that cannot start here says why in one line, before the sweep makes its dir.
    (A launcher whose plugin is missing never gets here: composing its preset fails, and the CLI
    says what to install.)"""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        launcher = str(config.hydra.launcher.get("_target_", ""))
        if launcher.startswith(OUR_LAUNCHERS):
            register_launcher(launcher)
        if launcher.endswith("SlurmLauncher") and not _importable("submitit"):
            refuse("hydra/launcher=slurm needs submitit: pip install 'dreamrun[launchers]'")
        if launcher.endswith("SlurmLauncher") and not shutil.which("srun"):
            refuse("hydra/launcher=slurm needs SLURM, and srun is not on PATH here: run the sweep from the "
                   "cluster's login node, or try it locally with hydra/launcher=local")


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


class SweepSetup(Callback):
    """Runs in the process that launches the sweep, before any job starts."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _sweep_dir, _job_lines
        _sweep_dir = str(config.hydra.sweep.dir)
        _name_jobs_by_swept_keys(config)
        launcher = str(config.hydra.launcher.get("_target_", ""))
        if launcher.endswith(("LocalLauncher", "SlurmLauncher")):  # submitit's jobs: they print to files
            _job_lines = JobLines(Path(_sweep_dir))
            _job_lines.start()


def constant_keys(task_overrides: Sequence[str]) -> list[str]:
    """The keys of a sweep's command line that every job shares (target=a,b is swept; steps=2 is not)."""
    parsed = OverridesParser.create().parse_overrides(list(task_overrides))
    return [o.key_or_group for o in parsed if not o.is_sweep_override()]


def _name_jobs_by_swept_keys(config: DictConfig) -> None:
    """Job dirs named by what differs between jobs: 1_octaves=4,target=mixed_6, not every override.

    Each job's config is composed again from the sweep's Hydra overrides plus the job's own, so an
    exclude_keys override added here reaches every job, in any launcher.
    """
    hydra_overrides = config.hydra.overrides.hydra
    keys = constant_keys(config.hydra.overrides.task)
    if not keys or any(str(o).startswith(EXCLUDE_KEYS) for o in hydra_overrides):
        return  # nothing to drop, or the user chose the excluded keys
    quoted = ",".join("'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'" for key in keys)
    with read_write(hydra_overrides), open_dict(hydra_overrides):
        hydra_overrides.append(f"{EXCLUDE_KEYS}=[{quoted}]")


def stop_job_lines() -> None:
    """The sweep has ended: report the jobs that finished since the last look."""
    global _job_lines
    if _job_lines is not None:
        _job_lines.stop()
        _job_lines = None


def started_sweep_dir() -> Optional[str]:
    """The dir of the sweep this process launched, or None when it ran a single job."""
    return _sweep_dir


def job_configs(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[DictConfig]:
    """What dreamrun's launchers do first, as Hydra's own do: Hydra's logging set up, the sweep dir made,
    and each job's config composed from the sweep's with its overrides, numbered."""
    setup_globals()
    config, context = launcher.config, launcher.hydra_context
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    Path(str(config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
    configs = []
    for num, overrides in enumerate(job_overrides, start=initial_job_idx):
        sweep_config = context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = sweep_config.hydra.job.num = num
        configs.append(sweep_config)
    return configs


def failed_return(sweep_config: DictConfig, why: Any) -> JobReturn:
    """A FAILED JobReturn for a job whose run never gave one (a SLURM job that died, a callback that raised):
    Hydra's sweeper raises its JobFailed once its batch has run, as for a job that failed in the app."""
    ret = JobReturn(overrides=list(sweep_config.hydra.overrides.task), status=JobStatus.FAILED)
    ret.return_value = why if isinstance(why, JobFailed) else JobFailed(
        f"job {sweep_config.hydra.job.num} ended without a result: {why}")
    return ret


def device_for_job(device: str, job_num: int, gpu_count: int) -> str:
    """device=auto in a sweep on a machine with several GPUs: job n takes GPU n mod count.

    Local parallel jobs (joblib, submitit_local) then spread over the GPUs instead of all landing
    on GPU 0; on SLURM each job sees only its own GPU, so count is 1 and nothing changes.
    """
    if device != "auto" or gpu_count < 2:
        return device
    return f"cuda:{job_num % gpu_count}"
