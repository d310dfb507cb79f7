"""Progress bars on stderr: steps of a dream, frames of a zoom or a video; silent when stderr is not a
terminal."""
import sys
from typing import Optional

from tqdm import tqdm

from dreamrun.core.observers import Observer


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

    def close(self):
        if self.bar is not None:
            self.bar.close()  # an interrupted dream's bar ends its line before the message


class FrameProgressBar(Observer):
    """frame i/N with an ETA on stderr; silent when stderr is not a terminal."""

    def __init__(self, enabled: Optional[bool] = None, description: str = "zoom"):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.description = description
        self.bar: Optional[tqdm] = None

    def on_frames_start(self, *, frames, start):
        self.bar = tqdm(total=frames, initial=start, unit="frame", disable=not self.enabled,
                        file=sys.stderr, dynamic_ncols=True, desc=self.description)

    def on_frame(self, *, frame, image, rng_state):
        self.bar.update(1)

    def on_frames_end(self, *, image):
        self.bar.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
