"""zoom_state.json: after each frame, its number, the jitter RNG's state and the settings that shape
the frames. Reading it needs no torch, so a resume can be refused before anything is written."""
import json
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig

from dreamrun.config.keys import flatten_config
from dreamrun.errors import DreamError

FRAMES_DIR = "frames"
STATE_FILE = "zoom_state.json"
# keys a resumed run may change without changing the frames: how many, how they are shown, how fast
RESUMABLE = {"resume", "device", "compile", "channels_last", "tile", "log", "mode",
             "zoom.frames", "zoom.fps", "zoom.animation", "zoom.log_every"}


def fingerprint(cfg: DictConfig) -> dict[str, Any]:
    """Everything in cfg that shapes the frames: a resumed run must match it."""
    return flatten_config(cfg, skip=RESUMABLE)


def read_state(run_dir: Path, config: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The saved state, or None if no frame was saved; refused if its frames were made with other settings."""
    try:
        state = json.loads((run_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        raise DreamError(f"cannot resume: {run_dir / STATE_FILE} is damaged") from None
    changed = sorted(key for key in config.keys() | state["config"].keys()
                     if config.get(key) != state["config"].get(key))
    if changed:
        raise DreamError(f"cannot resume {run_dir}: its frames were made with other settings of "
                         f"{', '.join(changed)}; resume with the same ones (only zoom.frames, zoom.fps, "
                         "zoom.animation, logging and speed settings may change)")
    return state
