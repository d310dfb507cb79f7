"""octave_<i>.png: the dream at the end of every octave, in the run dir."""
from pathlib import Path

from dreamrun.core.observers import Observer
from dreamrun.outputs.files import save_png
from dreamrun.outputs.images import to_pil


class OctaveImages(Observer):
    """Saves the dream at the end of every octave as octave_<i>.png in a run directory."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.saved: list[Path] = []

    def on_octave_end(self, *, octave, global_step, image):
        path = self.directory / f"octave_{octave}.png"
        save_png(to_pil(image), path)
        self.saved.append(path)
