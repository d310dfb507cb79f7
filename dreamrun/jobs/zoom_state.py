"""zoom_state.json: after each frame, its number, the jitter RNG's state and the settings that shape
the frames. Reading it needs no torch, so a resume can be refused before anything is written."""
import base64
import json
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig

from dreamrun.config.keys import flatten_config
from dreamrun.errors import DreamError

FRAMES_DIR = "frames"
STATE_FILE = "zoom_state.json"
RNG_STATE_BYTES = 5056  # torch.Generator().get_state() on the CPU: mt19937's words and its bookkeeping
# keys a resumed run may change without changing the frames: how many, how they are shown, how fast
RESUMABLE = {"resume", "device", "compile", "channels_last", "tile", "log", "mode",
             "zoom.frames", "zoom.fps", "zoom.animation", "zoom.log_every"}


def fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """Everything in cfg that shapes the frames: a resumed run must match it."""
    return flatten_config(cfg, skip=RESUMABLE)


def frame_path(run_dir: Path, frame: int) -> Path:
    return run_dir / FRAMES_DIR / f"{frame:06d}.png"


def read_state(run_dir: Path, config: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The saved state, or None if no frame was saved; refused if it is damaged, if its frame is missing,
    or if its frames were made with other settings."""
    path = run_dir / STATE_FILE
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
        raise DreamError(f"cannot resume {run_dir}: its frames were made with other settings of "
                         f"{', '.join(changed)}; resume with the same ones (only zoom.frames, zoom.fps, "
                         "zoom.animation, logging and speed settings may change)")
    return state


def _damage(state: Any) -> Optional[str]:
    """What is wrong with a loaded zoom_state.json, or None if it is what FrameWriter writes."""
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
