"""The observer protocol: the engine calls these hooks as it works; an observer overrides the ones it needs.

Observers that write (progress bars, octave images, TensorBoard) live in dreamrun.outputs.
"""
from typing import Mapping, Optional

import torch


class Observer:
    def on_dream_start(self, *, sizes: list[tuple[int, int]], steps: int) -> None:
        pass

    def on_step(self, *, octave: int, step: int, global_step: int,
                values: Mapping[str, torch.Tensor], image: torch.Tensor, shift: tuple[int, int]) -> None:
        """values: the step's detached scalars: loss, grad_norm, and what the objective reported.
        shift: the jitter roll (dy, dx) under which the objective saw the image this step."""

    def on_octave_end(self, *, octave: int, global_step: int, image: torch.Tensor) -> None:
        """global_step: how many steps have run so far, over all octaves."""

    def on_dream_end(self, *, image: torch.Tensor) -> None:
        pass

    # frame by frame (dreamrun.core.zoom, dreamrun.core.video): a dream per frame, each with the hooks above

    def on_frames_start(self, *, frames: Optional[int], start: int) -> None:
        """frames: the total (None: not known ahead); start: the first frame this run makes (> 0 when
        resumed)."""

    def on_frame_settings(self, *, frame: int, values: Mapping[str, float]) -> None:
        """Before a frame dreams: the values its keyframed settings take at it (zoom.rotation, a weight)."""

    def on_flow(self, *, frame: int, magnitude: float, occluded: float) -> None:
        """A video frame's optical flow from the previous frame, before its dream: the mean motion in px
        and the fraction of pixels the flow cannot follow (they start from the frame itself)."""

    def on_frame(self, *, frame: int, image: torch.Tensor, rng_state: torch.Tensor) -> None:
        """image: the finished frame. rng_state: the jitter generator's state after it."""

    def on_frames_end(self, *, image: torch.Tensor) -> None:
        pass

    def close(self) -> None:
        """The job is over, however it ended: write what is buffered, release files."""


class LastStep(Observer):
    """Where the dream is: the last finished step's image and position, for an interrupted or
    failed run to save and report."""

    def __init__(self):
        self.image: Optional[torch.Tensor] = None  # (1, 3, h, w), the last finished step's dream
        self.octave = -1
        self.step = -1
        self.sizes: list[tuple[int, int]] = []
        self.steps = 0

    def on_dream_start(self, *, sizes, steps):
        self.sizes, self.steps = sizes, steps

    def on_step(self, *, octave, step, global_step, values, image, shift):
        self.image, self.octave, self.step = image, octave, step
