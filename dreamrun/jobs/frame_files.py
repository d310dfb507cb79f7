"""A job made of frames on disk (a zoom, a video): each frame written, then the state naming it; the
point a resumed run continues from; and what such jobs share on the skeleton. The state file itself:
dreamrun.jobs.frame_state."""
import base64
import logging
from pathlib import Path
from typing import Any, Optional

import torch
from PIL import Image

from dreamrun.core.observers import Observer
from dreamrun.errors import DreamError
from dreamrun.inputs.images import to_tensor
from dreamrun.jobs.frame_state import FrameKind, fingerprint, frame_path, nothing_to_resume, read_state
from dreamrun.jobs.skeleton import JobKind
from dreamrun.outputs.files import save_json, save_png
from dreamrun.outputs.images import to_pil
from dreamrun.outputs.progress import FrameProgressBar
from dreamrun.outputs.tensorboard import FramesTensorBoardLogger

log = logging.getLogger(__name__)


class FrameWriter(Observer):
    """frames/<k>.png, then the state file naming it: both atomic, the state only after its frame."""

    def __init__(self, run_dir: Path, config: dict[str, Any], kind: FrameKind, text: Optional[dict[str, str]] = None):
        self.run_dir = run_dir
        self.text = text or {}  # PNG text chunks: the recipe
        self.values: dict[str, float] = {}  # the last frame's keyframed settings, kept in the state with it
        self.config = config
        self.kind = kind
        self.last_frame: Optional[int] = None

    def on_frame_settings(self, *, frame, values):
        self.values = dict(values)

    def on_frame(self, *, frame, image, rng_state):
        self.last_frame = frame
        save_png(to_pil(image), frame_path(self.run_dir, frame), self.text)
        save_json({"frame": frame, "rng_state": base64.b64encode(rng_state.numpy().tobytes()).decode(),
                   "config": self.config, "values": self.values}, self.run_dir / self.kind.state_file)


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


class FramesJob(JobKind):
    """A job kind made of frames: a progress bar over frames, the frame writer, and a TensorBoard run
    with per-frame scalars; interrupted, it says how to resume."""

    frame_kind: FrameKind
    start = 0  # the first frame this run makes: > 0 when resumed
    board: Optional[FramesTensorBoardLogger] = None
    frame_writer: Optional[FrameWriter] = None

    @property
    def fingerprint(self) -> dict[str, Any]:
        """Everything in the config that shapes the frames: a resumed run must match it."""
        return fingerprint(self.cfg, self.frame_kind)

    def resume(self) -> Optional[torch.Tensor]:
        """Seed the jitter generator and, with resume=true, set it and `start` to continue after the last
        saved frame. Returns that frame's image (1, 3, H, W), or None when the run starts at frame 0."""
        self.generator = torch.Generator().manual_seed(self.cfg.seed)  # jitter shifts: CPU, so any device agrees
        if not self.cfg.resume:
            return None
        saved = resume_point(self.run_dir, self.fingerprint, self.frame_kind, self.generator)
        if saved is None:
            raise nothing_to_resume(self.run_dir, self.frame_kind)
        last, image = saved
        self.start = last + 1
        log.info("resuming %s after frame %d", self.run_dir, last)
        return image

    def observers(self, image, dreamer, writer):
        kind = self.frame_kind.name
        self.frame_writer = FrameWriter(self.run_dir, self.fingerprint, self.frame_kind, self.recipe)
        observers: list[Observer] = [FrameProgressBar(self.progress, kind), self.frame_writer]
        if writer is not None:
            self.board = FramesTensorBoardLogger(writer, kind, log_every=self.cfg[kind].log_every,
                                                 image_max_side=self.cfg.log.image_max_side)
            observers.append(self.board)
        return observers

    def interrupted(self, image, last):
        if self.frame_writer is not None and self.frame_writer.last_frame is not None:
            log.info("interrupted: frames up to %d are saved; continue with the same command plus "
                     "resume=true hydra.run.dir=%s", self.frame_writer.last_frame, self.run_dir)
