"""The resume state of a job made of frames (a zoom, a video): after each frame, its number, the jitter
RNG's state and the settings that shape the frames, in zoom_state.json or video_state.json. Reading it
needs no torch, so a resume can be refused before anything is written."""
import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig

from dreamrun.config.keys import flatten_config
from dreamrun.errors import DreamError
from dreamrun.outputs.run_files import FRAMES_DIR, frame_file, state_file

RNG_STATE_BYTES = 5056  # torch.Generator().get_state() on the CPU: mt19937's words and its bookkeeping
# keys any resumed run may change without changing the frames: how they are logged, how fast they are made
_SPEED_AND_LOGGING = ("resume", "device", "compile", "channels_last", "tile", "log", "mode")


@dataclass(frozen=True)
class FrameKind:
    """A job kind made of frames: its state file and the keys a resumed run may change."""

    name: str  # "zoom", "video": the mode, and the config group of its own settings
    may_change: tuple[str, ...]  # besides speed and logging: how many frames, how they are shown

    @property
    def state_file(self) -> str:
        return state_file(self.name)

    @property
    def resumable(self) -> set[str]:
        others = {kind.name for kind in KINDS.values()} - {self.name}  # another kind's settings shape nothing here
        return {*_SPEED_AND_LOGGING, *others, *(f"{self.name}.{key}" for key in self.may_change)}


KINDS = {kind.name: kind for kind in (FrameKind("zoom", ("frames", "fps", "animation", "log_every")),
                                      FrameKind("video", ("max_frames", "log_every")))}
ZOOM, VIDEO = KINDS["zoom"], KINDS["video"]


def frame_kind(cfg: DictConfig) -> Optional[FrameKind]:
    """The frame kind of cfg's mode, or None for a dream."""
    mode = cfg.mode
    return KINDS.get(getattr(mode, "value", mode))


def fingerprint(cfg: DictConfig, kind: FrameKind) -> dict[str, Any]:
    """Everything in cfg that shapes the frames: a resumed run must match it. As the state file holds it
    (JSON: a keyframe's frame number is a text key there), so the two compare equal."""
    return json.loads(json.dumps(flatten_config(cfg, skip=kind.resumable)))


def nothing_to_resume(run_dir: Path, kind: FrameKind) -> DreamError:
    return DreamError(f"resume=true, but {run_dir} holds no saved {kind.name} frames (no {kind.state_file}): "
                      f"nothing to resume; drop resume=true to start a new {kind.name}")


def frame_path(run_dir: Path, frame: int) -> Path:
    return run_dir / FRAMES_DIR / frame_file(frame)


def read_state(run_dir: Path, config: dict[str, Any], kind: FrameKind) -> Optional[dict[str, Any]]:
    """The saved state, or None if no frame was saved; refused if it is damaged, if its frame is missing,
    or if its frames were made with other settings."""
    path = run_dir / kind.state_file
    try:
        if path.exists() and not path.is_file():  # a named pipe would make the read wait forever
            raise DreamError(f"cannot resume: {path} is not a regular file")
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DreamError(f"cannot resume: cannot read {path}: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, JSON nested past Python's stack
        raise DreamError(f"cannot resume: {path} is damaged: not JSON ({e})") from None
    problem = _damage(state)
    if problem:
        raise DreamError(f"cannot resume: {path} is damaged: {problem}")
    if not frame_path(run_dir, state["frame"]).is_file():
        raise DreamError(f"cannot resume: {path} names frame {state['frame']}, but "
                         f"{frame_path(run_dir, state['frame'])} is missing")
    changed = sorted(key for key in config.keys() | state["config"].keys()
                     if config.get(key) != state["config"].get(key))
    if changed:
        may_change = ", ".join(f"{kind.name}.{key}" for key in kind.may_change)
        raise DreamError(f"cannot resume {run_dir}: its frames were made with other settings of "
                         f"{', '.join(changed)}; resume with the same ones (only {may_change}, logging and "
                         "speed settings may change)")
    return state


def _damage(state: Any) -> Optional[str]:
    """What is wrong with a loaded state file, or None if it is what a frame writer writes."""
    if not isinstance(state, dict):
        return f"it holds a JSON {type(state).__name__}, not an object"
    missing = [key for key in ("frame", "rng_state", "config") if key not in state]
    if missing:
        return f"it lacks {', '.join(missing)}"
    frame = state["frame"]
    if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
        return f"frame is {json.dumps(frame)}, not a frame number"
    if not isinstance(state["config"], dict):
        return f"config is {json.dumps(state['config'])[:40]}, not an object of settings"
    try:
        rng_state = base64.b64decode(state["rng_state"], validate=True)
    except (TypeError, ValueError):  # not a string; not base64 (binascii.Error)
        rng_state = None
    if rng_state is None or len(rng_state) != RNG_STATE_BYTES:
        return "rng_state is not the jitter RNG's saved state"
    return None
