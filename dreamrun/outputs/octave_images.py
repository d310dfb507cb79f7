"""octave_<i>.png: the dream at the end of every octave, in the run dir, written beside the dream."""
from pathlib import Path
from typing import Optional

import torch

from dreamrun.core.observers import Observer
from dreamrun.outputs.background import BackgroundWriter
from dreamrun.outputs.files import save_png
from dreamrun.outputs.images import to_pil
from dreamrun.outputs.run_files import octave_image


def _save(image: torch.Tensor, path: Path, text: dict[str, str]) -> None:
    save_png(to_pil(image), path, text)


class OctaveImages(Observer):
    """Saves the dream at the end of every octave as octave_<i>.png in a run directory, encoded on a
    thread of its own while the next octave dreams; close() waits for them all."""

    def __init__(self, directory: Path, text: Optional[dict[str, str]] = None):
        self.directory = Path(directory)
        self.text = text or {}  # PNG text chunks: the recipe
        self.writer = BackgroundWriter("dreamrun-octave-images")

    def on_octave_end(self, *, octave, global_step, image):
        path = self.directory / octave_image(octave)
        # to the host here, where the engine waits for the device anyway; it makes a new image at every
        # step, so nothing changes this one under the writer
        self.writer.submit(_save, image.detach().cpu(), path, self.text)

    def close(self):
        self.writer.close()
