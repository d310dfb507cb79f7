"""Progress on stderr: steps of a dream, frames of a zoom or a video. A bar where a terminal watches;
elsewhere (tee, SLURM, nohup, a notebook) a plain line per octave or per few frames, flushed at once."""
import importlib.util
import sys
import time
from typing import Optional

from tqdm import tqdm

from dreamrun.core.observers import Observer

FRAME_LINES = 10  # plain lines over a zoom or video of known length (unknown: one every FRAME_LINES frames)


def _lines(enabled: Optional[bool]) -> bool:
    """True where progress goes out as plain lines: asked for by default (None), with no terminal."""
    return enabled is None and not sys.stderr.isatty()


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class ProgressBar(Observer):
    """octave i/N, step, loss and it/s on stderr. enabled: True a bar, False nothing, None a bar on a
    terminal and a line at every octave's end elsewhere."""

    def __init__(self, enabled: Optional[bool] = None, notebook: bool = False):
        self.lines = _lines(enabled)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.notebook = notebook  # a Jupyter widget where ipywidgets is installed, else text
        self.bar: Optional[tqdm] = None
        self.sizes: list[tuple[int, int]] = []
        self.steps = 0
        self.clock = time.perf_counter()
        self.last_loss = None

    def on_dream_start(self, *, sizes, steps):
        self.sizes, self.steps = sizes, steps
        self.clock = time.perf_counter()
        bar = tqdm
        if self.notebook and importlib.util.find_spec("ipywidgets"):  # without it, tqdm.auto warns, then prints text
            from tqdm.notebook import tqdm as bar
        self.bar = bar(total=len(sizes) * steps, unit="step", disable=not self.enabled, file=sys.stderr,
                       dynamic_ncols=True)

    def on_step(self, *, octave, step, global_step, values, image, shift):
        if self.lines:
            self.last_loss = values["loss"]  # read at the octave's end: .item() here would wait for the GPU
        if self.bar.disable:
            return
        self.bar.set_description(f"octave {octave + 1}/{len(self.sizes)}", refresh=False)
        self.bar.set_postfix(loss=f"{values['loss'].item():.4g}", refresh=False)
        self.bar.update(1)

    def on_octave_end(self, *, octave, global_step, image):
        if not self.lines:
            return
        now = time.perf_counter()
        height, width = self.sizes[octave]
        loss = "" if self.last_loss is None else f", loss {self.last_loss.item():.4g}"
        _say(f"octave {octave + 1}/{len(self.sizes)} ({width}x{height} px): {self.steps} steps in "
             f"{_duration(now - self.clock)}{loss}")
        self.clock = now

    def on_dream_end(self, *, image):
        self.bar.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()  # an interrupted dream's bar ends its line before the message


class FrameProgressBar(Observer):
    """frame i/N with an ETA on stderr. enabled: True a bar, False nothing, None a bar on a terminal and
    elsewhere a line every tenth of the frames (every FRAME_LINES frames where their number is unknown)."""

    def __init__(self, enabled: Optional[bool] = None, description: str = "zoom"):
        self.lines = _lines(enabled)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.description = description
        self.bar: Optional[tqdm] = None
        self.frames: Optional[int] = None
        self.start = 0
        self.clock = time.perf_counter()

    def on_frames_start(self, *, frames, start):
        self.frames, self.start = frames, start
        self.clock = time.perf_counter()
        self.bar = tqdm(total=frames, initial=start, unit="frame", disable=not self.enabled,
                        file=sys.stderr, dynamic_ncols=True, desc=self.description)

    def on_frame(self, *, frame, image, rng_state):
        self.bar.update(1)
        if self.lines:
            self._line(frame + 1)

    def _line(self, done: int) -> None:
        every = max(1, self.frames // FRAME_LINES) if self.frames else FRAME_LINES
        if done % every and done != self.frames:
            return
        per_frame = (time.perf_counter() - self.clock) / max(1, done - self.start)
        total = f"/{self.frames}" if self.frames else ""
        left = f", about {_duration(per_frame * (self.frames - done))} left" if self.frames else ""
        _say(f"{self.description}: frame {done}{total}, {per_frame:.2f} s a frame{left}")

    def on_frames_end(self, *, image):
        self.bar.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
