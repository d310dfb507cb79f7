"""Observers watch the engine work: progress bars, saved octave images, TensorBoard.

The engine calls these hooks; an observer overrides the ones it needs.
"""
import sys
from pathlib import Path
from typing import Mapping, Optional

import torch
from tqdm import tqdm

from dreamrun.images import save_png, to_pil


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

    # zoom dreams (dreamrun.zoom): one dream per frame, each with the hooks above

    def on_zoom_start(self, *, frames: int, start: int) -> None:
        """frames: the total; start: the first frame this run makes (> 0 when resumed)."""

    def on_frame(self, *, frame: int, image: torch.Tensor, rng_state: torch.Tensor) -> None:
        """image: the finished frame. rng_state: the jitter generator's state after it."""

    def on_zoom_end(self, *, image: torch.Tensor) -> None:
        pass


class ProgressBar(Observer):
    """octave i/N, step, loss and it/s on stderr; silent when stderr is not a terminal."""

    def __init__(self, enabled: Optional[bool] = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar: Optional[tqdm] = None
        self.octaves = 0

    def on_dream_start(self, *, sizes, steps):
        self.octaves = len(sizes)
        self.bar = tqdm(total=len(sizes) * steps, unit="step", disable=not self.enabled,
                        file=sys.stderr, dynamic_ncols=True)

    def on_step(self, *, octave, step, global_step, values, image, shift):
        if self.bar.disable:
            return  # avoid loss.item(): it waits for the GPU
        self.bar.set_description(f"octave {octave + 1}/{self.octaves}", refresh=False)
        self.bar.set_postfix(loss=f"{values['loss'].item():.4g}", refresh=False)
        self.bar.update(1)

    def on_dream_end(self, *, image):
        self.bar.close()


class FrameProgressBar(Observer):
    """frame i/N with an ETA on stderr; silent when stderr is not a terminal."""

    def __init__(self, enabled: Optional[bool] = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar: Optional[tqdm] = None

    def on_zoom_start(self, *, frames, start):
        self.bar = tqdm(total=frames, initial=start, unit="frame", disable=not self.enabled,
                        file=sys.stderr, dynamic_ncols=True, desc="zoom")

    def on_frame(self, *, frame, image, rng_state):
        self.bar.update(1)

    def on_zoom_end(self, *, image):
        self.bar.close()


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


class OctaveImages(Observer):
    """Saves the dream at the end of every octave as octave_<i>.png in a run directory."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.saved: list[Path] = []

    def on_octave_end(self, *, octave, global_step, image):
        path = self.directory / f"octave_{octave}.png"
        save_png(to_pil(image), path)
        self.saved.append(path)
