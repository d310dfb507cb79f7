"""Observers watch the engine work: progress bars, saved octave images, (later) TensorBoard.

The engine calls these hooks; an observer overrides the ones it needs.
"""
import sys
from pathlib import Path
from typing import Optional

import torch
from tqdm import tqdm

from dreamrun.images import save_png, to_pil


class Observer:
    def on_dream_start(self, *, sizes: list[tuple[int, int]], steps: int) -> None:
        pass

    def on_step(self, *, octave: int, step: int, global_step: int,
                loss: torch.Tensor, grad_norm: torch.Tensor, image: torch.Tensor) -> None:
        pass

    def on_octave_end(self, *, octave: int, image: torch.Tensor) -> None:
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
                        file=sys.stderr, dynamic_ncols=True, leave=False)

    def on_step(self, *, octave, step, global_step, loss, grad_norm, image):
        if self.bar.disable:
            return  # avoid loss.item(): it waits for the GPU
        self.bar.set_description(f"octave {octave + 1}/{self.octaves}", refresh=False)
        self.bar.set_postfix(loss=f"{loss.item():.4g}", refresh=False)
        self.bar.update(1)

    def on_octave_end(self, *, octave, image):
        if octave + 1 == self.octaves:
            self.bar.close()


class OctaveImages(Observer):
    """Saves the dream at the end of every octave as octave_<i>.png in a run directory."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.saved: list[Path] = []

    def on_octave_end(self, *, octave, image):
        path = self.directory / f"octave_{octave}.png"
        save_png(to_pil(image), path)
        self.saved.append(path)
