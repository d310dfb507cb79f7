"""The command line: a Hydra app around dreamrun.jobs.dream.

    python -m dreamrun target=mixed_6 octaves=4
    python -m dreamrun -m target=mixed_5b,mixed_6 octaves=2,4
"""
import importlib.util
import logging
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from dreamrun.config.compose import config_dir, register
from dreamrun.config.schema import DreamConfig, Mode
from dreamrun.errors import EXIT_SWEEP_FAILED, EXIT_USER_ERROR, DreamError
from dreamrun.jobs import interrupts
from dreamrun.jobs.record import COMPLETED, FAILED, INTERRUPTED, OUTPUT_FILES, JobRecord, clear_results
from dreamrun.sweeps import launch as sweeps

log = logging.getLogger("dreamrun")

# launcher presets in conf/hydra/launcher/ and the plugin each needs
LAUNCHER_PLUGINS = {"parallel": "hydra_plugins.hydra_joblib_launcher",
                    "local": "hydra_plugins.hydra_submitit_launcher",
                    "slurm": "hydra_plugins.hydra_submitit_launcher"}

register()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def app(cfg: DreamConfig) -> None:
    """One job. Its outcome always lands in result.json; in a sweep a failed job returns normally,
    so the launcher goes on with the others and the sweep's summary reports it."""
    with interrupts.handled():  # in a worker process too (joblib, submitit)
        _run_job(cfg)


def _run_job(cfg: DreamConfig) -> None:
    # torch and the jobs load here, not at the top: --help and config errors answer without them
    import torch

    from dreamrun.jobs.dream import run_job
    from dreamrun.jobs.zoom import run_zoom_job

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    record = JobRecord(overrides=list(hydra_cfg.overrides.task))
    if in_sweep:
        cfg.device = sweeps.device_for_job(cfg.device, hydra_cfg.job.num, torch.cuda.device_count())
    if cfg.overwrite:
        clear_results(run_dir)
    try:
        if cfg.mode == Mode.zoom:
            result = run_zoom_job(cfg, run_dir)
            output = result.animation
        else:
            result = run_job(cfg, run_dir)
            output = run_dir / OUTPUT_FILES["dream"]
    except DreamError as e:
        record.finish(run_dir, FAILED, error=str(e))
        log.error("dreamrun: error: %s", e)
        if not in_sweep:
            sys.exit(EXIT_USER_ERROR)
        return
    except KeyboardInterrupt as e:
        record.finish(run_dir, INTERRUPTED, error="SIGTERM" if isinstance(e, interrupts.Terminated) else "Ctrl-C")
        log.error("dreamrun: interrupted")
        sys.exit(interrupts.exit_status(e))
    except Exception as e:
        record.finish(run_dir, FAILED, error=f"{type(e).__name__}: {e}")
        if not in_sweep:
            raise  # a bug: keep its traceback
        log.exception("dreamrun: job failed")
        return
    record.finish(run_dir, COMPLETED, metrics=result.metrics)
    print(output, flush=True)


def _check_launcher(argv: list[str]) -> None:
    """A launcher that cannot start here: one line saying why, not the plugin's traceback."""
    for arg in argv:
        name = arg.partition("hydra/launcher=")[2]
        plugin = LAUNCHER_PLUGINS.get(name)
        if plugin and not _importable(plugin):
            _refuse(f"hydra/launcher={name} needs its Hydra plugin: pip install 'dreamrun[launchers]'")
        if name == "slurm" and not shutil.which("srun"):
            _refuse("hydra/launcher=slurm needs SLURM, and srun is not on PATH here: run the sweep "
                    "from the cluster's login node, or try it locally with hydra/launcher=local")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its parent package is missing too: no Hydra plugin at all
        return False


def _refuse(message: str) -> None:
    print(f"dreamrun: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


def main() -> None:
    _check_launcher(sys.argv[1:])
    with interrupts.handled():
        exit_status = _launch()
    sys.exit(exit_status)


def _launch() -> int:
    """Run the app (a job or a sweep); summarise a sweep however it ended. Returns the exit status."""
    exit_status = 0
    try:
        app()
    except KeyboardInterrupt as e:  # reaches here from a launcher waiting on its workers, not from a job
        print("dreamrun: interrupted", file=sys.stderr)
        exit_status = interrupts.exit_status(e)
    except SystemExit as e:
        exit_status = e.code
    sweep_dir = sweeps.started_sweep_dir()
    if sweep_dir and Path(sweep_dir).is_dir():  # however the sweep ended: summarise what finished
        from dreamrun.sweeps.summary import report, write_summary

        summary = write_summary(sweep_dir)
        print(report(summary), file=sys.stderr)
        print(Path(sweep_dir) / "summary.png", flush=True)
        if not exit_status and not summary.all_completed:
            exit_status = EXIT_SWEEP_FAILED
    return exit_status


if __name__ == "__main__":
    main()
