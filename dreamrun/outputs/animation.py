"""Frames to animations: looping GIF or WebP with Pillow (MP4: dreamrun.outputs.video_files)."""
import io
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from PIL import Image

from dreamrun.outputs.files import save_bytes

def _frames(paths: Sequence[Path], max_side: Optional[int]) -> Iterator[Image.Image]:
    for path in paths:
        with Image.open(path) as frame:
            frame = frame.convert("RGB")
        if max_side and max(frame.size) > max_side:
            frame.thumbnail((max_side, max_side), Image.LANCZOS)
        yield frame


def encode_animation(paths: Sequence[Path], fps: float, format: str = "GIF",
                     max_side: Optional[int] = None) -> bytes:
    """An endlessly looping animation of the frame files, in Pillow's `format` (GIF or WEBP)."""
    return encode_images(_frames(paths, max_side), fps, format)


def encode_images(images: Iterable[Image.Image], fps: float, format: str = "GIF") -> bytes:
    """An endlessly looping animation of RGB images, in Pillow's `format` (GIF or WEBP)."""
    frames = iter(images)
    first = next(frames)
    buffer = io.BytesIO()
    first.save(buffer, format=format, save_all=True, append_images=frames, loop=0,
               duration=round(1000 / fps), **({"quality": 90} if format == "WEBP" else {}))
    return buffer.getvalue()


def save_animation(paths: Sequence[Path], path: Path, fps: float) -> None:
    """zoom.gif / zoom.webp, by the path's suffix."""
    save_bytes(encode_animation(paths, fps, format=path.suffix.lstrip(".").upper()), path)
