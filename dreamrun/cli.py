"""The command line: a Hydra app around the job skeleton (dreamrun.jobs.skeleton).

    dreamrun photo.jpg target=mixed_6 octaves=4
    python -m dreamrun target=mixed_6 octaves=4
    python -m dreamrun -m target=mixed_5b,mixed_6 octaves=2,4
"""
import atexit
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from dreamrun.config.compose import config_dir, register
from dreamrun.config.file_argument import file_argument
from dreamrun.config.hydra_errors import CONFIG_ERRORS, one_line, raised_by_hydra
from dreamrun.config.schema import DreamConfig
from dreamrun.errors import (EXIT_INTERRUPTED, EXIT_SWEEP_FAILED, EXIT_TERMINATED, EXIT_USER_ERROR, DreamError,
                             JobFailed)
from dreamrun.jobs import interrupts
from dreamrun.jobs.claim import settle_claims
from dreamrun.jobs.record import FAILED, INTERRUPTED
from dreamrun.outputs.files import disk_error
from dreamrun.outputs.stdout import stdout_to_stderr
from dreamrun.sweeps import launch as sweeps

log = logging.getLogger("dreamrun")

register()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def app(cfg: DreamConfig) -> None:
    """One job. Its outcome always lands in result.json; in a sweep a failed job raises JobFailed, which
    Hydra records in the job's JobReturn (callbacks see FAILED) while its launcher goes on with the others."""
    _run_job(cfg)


def _run_job(cfg: DreamConfig) -> None:
    # torch and the jobs load here, not at the top: --help and config errors answer without them
    with interrupts.deferred():
        import torch

        from dreamrun.jobs.kinds import job_kind
        from dreamrun.jobs.skeleton import run_job
        from dreamrun.sweeps.batched import joined_kind

    quiet_logging_errors()
    hydra_cfg = HydraConfig.get()
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    joined = joined_kind()  # dreaming in a group: on the group's network, on its device
    if in_sweep and joined is None:
        cfg.device = sweeps.device_for_job(cfg.device, hydra_cfg.job.num, torch.cuda.device_count())
    try:
        kind = joined or job_kind(cfg.mode)
        with stdout_to_stderr():
            result = run_job(kind(cfg, Path(hydra_cfg.runtime.output_dir)), overrides=hydra_cfg.overrides.task)
    except DreamError as e:
        log.error("dreamrun: error: %s", e)
        if not in_sweep:
            sys.exit(EXIT_USER_ERROR)
        raise JobFailed(str(e)) from None
    except KeyboardInterrupt as e:
        log.error("dreamrun: interrupted")
        sys.exit(interrupts.exit_status(e))
    except Exception as e:
        if not in_sweep:
            raise  # a bug: keep its traceback
        log.exception("dreamrun: job failed")
        raise JobFailed(f"{type(e).__name__}: {e}") from None
    # stdout holds the one path a command made: a run's dream (a zoom's animation), or a sweep's summary
    print(result.output.absolute(), file=sys.stderr if in_sweep else sys.stdout, flush=True)


# Hydra's flags that take the next word as their value (--info takes one only if it names a topic)
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                     "--config-dir", "-cd", "--experimental-rerun"}
_INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def flags_first(argv: list[str]) -> list[str]:
    """argv with Hydra's flags before the overrides: Hydra's parser takes overrides in one run, so
    `python -m dreamrun target=mixed_6 -m octaves=2,4` would be refused as unrecognized arguments."""
    flags, overrides = split_flags(argv)
    return flags + overrides


def split_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra's flags (with their values) and the overrides, each in the order given."""
    flags, overrides = [], []
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            overrides.append(word)
            continue
        flags.append(word)
        takes_value = word in _FLAGS_WITH_VALUE or word in ("--info", "-i")
        if takes_value:
            value = next(words, None)
            if value is not None and (word not in ("--info", "-i") or value in _INFO_TOPICS):
                flags.append(value)
            elif value is not None:
                overrides.append(value)
    return flags, overrides


def main() -> None:
    flags, overrides = split_flags(sys.argv[1:])
    try:
        overrides = file_argument(overrides)  # dreamrun PATH [overrides]
    except DreamError as e:
        print(f"dreamrun: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    sys.argv[1:] = flags + overrides
    quiet_logging_errors()
    exit_status = EXIT_SWEEP_FAILED  # a bug's traceback; Python exits 1 after it anyway
    try:
        with interrupts.handled():
            exit_status = _launch()
    finally:
        # a run stopped or failed after it claimed its dir, before its job recorded an outcome (between the
        # two, Hydra sets up the job and torch loads); then let go of every dir, the sweep's last
        stopped = exit_status in (EXIT_INTERRUPTED, EXIT_TERMINATED)
        settle_claims(INTERRUPTED if stopped else FAILED,
                      "interrupted before the job started" if stopped else "ended before the job started")
    _exit(exit_status)


def quiet_logging_errors() -> None:
    """A log line the disk cannot take is dropped, not printed with a traceback over the one-line error
    that the same full disk gives the job (in the CLI's process and in each job's: joblib's, submitit's)."""
    logging.raiseExceptions = False


def _exit(status: int) -> None:
    """Exit without Python's teardown of torch's and torchvision's modules, which is slow
    (benchmarks/README.md, Start-up) and does nothing for us: every file is written and closed by
    now. The exit handlers (joblib's workers, logging's flush) still run first."""
    if "torch" not in sys.modules or not isinstance(status, int):
        sys.exit(status)  # --help, a config error: a light process exits quickly anyway
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@contextmanager
def _config_errors_raised() -> Iterator[None]:
    """Hydra prints a config error over several lines and exits, unless HYDRA_FULL_ERROR is set: then
    it raises, and the CLI says it in one line."""
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["HYDRA_FULL_ERROR"]
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


def _launch() -> int:
    """Run the app (a job or a sweep); summarise a sweep however it ended. Returns the exit status."""
    exit_status = 0
    try:
        with _config_errors_raised():
            app()
    except CONFIG_ERRORS as e:
        print(f"dreamrun: error: {one_line(e, sys.argv[1:])}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ValueError as e:
        if not raised_by_hydra(e):
            raise
        print(f"dreamrun: error: {one_line(e, sys.argv[1:])}", file=sys.stderr)
        return EXIT_USER_ERROR
    except JobFailed:  # Hydra's sweeper raises a failed job's once the jobs have run: the summary says which
        exit_status = EXIT_SWEEP_FAILED
    except KeyboardInterrupt as e:  # reaches here from a launcher waiting on its workers, not from a job
        print("dreamrun: interrupted", file=sys.stderr)
        exit_status = interrupts.exit_status(e)
    except SystemExit as e:
        exit_status = e.code
    sweeps.stop_job_lines()
    sweep_dir = sweeps.started_sweep_dir()
    if sweep_dir and Path(sweep_dir).is_dir():  # however the sweep ended: summarise what finished
        from dreamrun.sweeps.summary import SUMMARY_FILES, report, write_summary

        try:
            summary = write_summary(sweep_dir)
        except (DreamError, OSError) as e:  # a full disk, say: the jobs' own files still say what became of them
            why = e if isinstance(e, DreamError) else disk_error(e, Path(sweep_dir)) or e
            print(f"dreamrun: error: the sweep summary could not be written: {why}", file=sys.stderr)
            return exit_status or EXIT_SWEEP_FAILED
        print(report(summary), file=sys.stderr)
        print((Path(sweep_dir) / SUMMARY_FILES["image"]).absolute(), flush=True)
        if not exit_status and not summary.all_completed:
            exit_status = EXIT_SWEEP_FAILED
    return exit_status


if __name__ == "__main__":
    main()
