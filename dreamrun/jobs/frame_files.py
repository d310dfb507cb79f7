"""A job made of frames on disk: each frame written, then the state naming it; and the point a resumed
run continues from. The state file itself: dreamrun.jobs.frame_state."""
import base64
from pathlib import Path
from typing import Any, Optional

import torch
from PIL import Image

from dreamrun.core.observers import Observer
from dreamrun.errors import DreamError
from dreamrun.jobs.frame_state import FrameKind, frame_path, read_state
from dreamrun.outputs.files import save_json, save_png
from dreamrun.outputs.images import to_pil, to_tensor


class FrameWriter(Observer):
    """frames/<k>.png, then the state file naming it: both atomic, the state only after its frame."""

    def __init__(self, run_dir: Path, config: dict[str, Any], kind: FrameKind):
        self.run_dir = run_dir
        self.config = config
        self.kind = kind
        self.last_frame: Optional[int] = None

    def on_frame(self, *, frame, image, rng_state):
        self.last_frame = frame
        save_png(to_pil(image), frame_path(self.run_dir, frame))
        save_json({"frame": frame, "rng_state": base64.b64encode(rng_state.numpy().tobytes()).decode(),
                   "config": self.config}, self.run_dir / self.kind.state_file)


def resume_point(run_dir: Path, config: dict[str, Any], kind: FrameKind,
                 generator: torch.Generator) -> Optional[tuple[int, torch.Tensor]]:
    """(last saved frame, its image (1, 3, H, W)) with generator set to its state after that frame, or
    None if nothing was saved."""
    state = read_state(run_dir, config, kind)
    if state is None:
        return None
    frame = state["frame"]
    try:
        with Image.open(frame_path(run_dir, frame)) as saved:
            image = to_tensor(saved)
    except OSError:
        raise DreamError(f"cannot resume: frame {frame_path(run_dir, frame)} is missing or unreadable") from None
    rng_state = torch.frombuffer(bytearray(base64.b64decode(state["rng_state"])), dtype=torch.uint8)
    try:
        generator.set_state(rng_state)
    except RuntimeError:  # only torch can tell a saved state from bytes of the right length
        raise DreamError(f"cannot resume: {run_dir / kind.state_file} is damaged: rng_state is not "
                         "the jitter RNG's saved state") from None
    return frame, image
