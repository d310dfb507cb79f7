"""The run-dir guard: a Hydra callback that runs before Hydra writes anything into the run dir.

A run claims its dir here (jobs.claim), so a second run into it is refused before Hydra's record. A default
dir (outputs/DATE/TIME_MODEL_TARGET) is made fresh: never one another run already has. A dir the user named
is refused while another run holds it, and if it holds an earlier run's results (a finished run's, or a
dead one's), unless overwrite=true. resume=true is refused wherever there is nothing to resume: anywhere
but a named zoom or video run dir whose saved frames were made with the same settings. A sweep holds its
sweep dir for as long as it runs, and each of its jobs claims its own dir as it starts."""
import copy
from pathlib import Path
from typing import Any, Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from dreamrun.config.run_names import claim_fresh_dir
from dreamrun.errors import DreamError, refuse
from dreamrun.jobs.claim import claim, hold_sweep_dir
from dreamrun.jobs.frame_state import fingerprint, frame_kind, nothing_to_resume, read_state
from dreamrun.jobs.record import has_results


def _task_config(config: DictConfig) -> DictConfig:
    task = copy.deepcopy(config)
    with open_dict(task):
        del task["hydra"]
    return task


def check_resume(config: DictConfig, named_dir: bool) -> None:
    """Raise DreamError unless resume=true has an interrupted zoom or video with the same settings to
    continue."""
    kind = frame_kind(config)
    if kind is None:
        raise DreamError("resume=true continues an interrupted zoom or video (mode=zoom, mode=video); a dream "
                         "has nothing to resume: drop resume=true")
    if config.overwrite:
        raise DreamError(f"resume=true continues a {kind.name}'s frames and overwrite=true removes them: pass one")
    if not named_dir:
        raise DreamError(f"resume=true needs the run dir of the {kind.name} to continue: add "
                         f"hydra.run.dir=<the dir the interrupted {kind.name} printed>")
    run_dir = Path(str(config.hydra.run.dir))
    # refuses other settings, before any file changes
    if read_state(run_dir, fingerprint(_task_config(config), kind), kind) is None:
        raise nothing_to_resume(run_dir, kind)


def _make_named_dir(path: str) -> str:
    Path(path).mkdir(parents=True, exist_ok=True)
    return path


def _make_dir(key: str, path: str, make: Callable[[str], str] = _make_named_dir) -> str:
    """make(path): the dir itself, or a fresh one beside it. Refused in one line when the file system will
    not have it, before Hydra tries (a file on the way, a read-only or virtual file system, a full disk)."""
    try:
        return make(path)
    except OSError as e:
        refuse(f"cannot make {key}={path}: {e.strerror or e}: choose another {key}")


def _named_by_user(config: DictConfig, key: str) -> bool:
    return any(str(o).lstrip("+~").split("=", 1)[0] == key for o in config.hydra.overrides.hydra)


class RunDirGuard(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.resume and not _named_by_user(config, "hydra.run.dir"):
            try:
                check_resume(config, named_dir=False)
            except DreamError as e:
                refuse(str(e))
        if not _named_by_user(config, "hydra.run.dir"):
            with read_write(config.hydra.run):
                config.hydra.run.dir = _make_dir("hydra.run.dir", str(config.hydra.run.dir), claim_fresh_dir)
        else:
            if config.resume:
                try:
                    check_resume(config, named_dir=True)
                except DreamError as e:
                    refuse(str(e))
            _make_dir("hydra.run.dir", str(config.hydra.run.dir))
        try:  # before Hydra writes its record there: a run the dir is not for touches nothing in it
            claim(Path(str(config.hydra.run.dir)), overwrite=config.overwrite, resume=config.resume,
                  overrides=list(config.hydra.overrides.task), key="hydra.run.dir", hand_over=True)
        except DreamError as e:
            refuse(str(e))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.resume:
            refuse("resume=true continues one interrupted zoom or video, in its run dir; a sweep has nothing to "
                   "resume: drop resume=true, or resume a job of the sweep alone with its hydra.run.dir")
        if not _named_by_user(config, "hydra.sweep.dir"):
            claimed = _make_dir("hydra.sweep.dir", str(config.hydra.sweep.dir), claim_fresh_dir)
            overrides = config.hydra.overrides.hydra
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.sweep.dir = claimed
                # each job's config is composed again from these overrides: it must name the same dir
                overrides.append(f"hydra.sweep.dir={claimed}")
            try:
                hold_sweep_dir(Path(claimed))
            except DreamError as e:
                refuse(str(e))
            return
        sweep_dir = Path(_make_dir("hydra.sweep.dir", str(config.hydra.sweep.dir)))
        try:
            hold_sweep_dir(sweep_dir)
        except DreamError as e:
            refuse(str(e))
        if not config.overwrite and any(has_results(job) for job in sweep_dir.glob("*/")):
            refuse(f"{sweep_dir} already holds the results of a sweep: choose another hydra.sweep.dir, "
                   "or pass overwrite=true to replace them")
