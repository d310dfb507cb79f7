"""Frames to animations: GIF or WebP with Pillow, MP4 with ffmpeg where there is one.

ffmpeg is Debian's (`apt install ffmpeg`) or the one in the imageio-ffmpeg wheel
(`pip install 'dreamrun[video]'`); without either, there is no MP4 and nothing fails.
"""
import io
import shutil
import subprocess
from pathlib import Path
from typing import Iterator, Optional, Sequence

from PIL import Image

from dreamrun.outputs.files import atomic_path, save_bytes


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
    frames = _frames(paths, max_side)
    first = next(frames)
    buffer = io.BytesIO()
    first.save(buffer, format=format, save_all=True, append_images=frames, loop=0,
               duration=round(1000 / fps), **({"quality": 90} if format == "WEBP" else {}))
    return buffer.getvalue()


def save_animation(paths: Sequence[Path], path: Path, fps: float) -> None:
    """zoom.gif / zoom.webp, by the path's suffix."""
    save_bytes(encode_animation(paths, fps, format=path.suffix.lstrip(".").upper()), path)


def find_ffmpeg() -> Optional[str]:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg.get_ffmpeg_exe()


def save_mp4(frames_dir: Path, path: Path, fps: float, ffmpeg: str, frames: int) -> None:
    """H.264 MP4 of the first `frames` of frames_dir/%06d.png (yuv420p so every player shows it;
    sides made even for it)."""
    with atomic_path(path, suffix=".mp4") as tmp:
        subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-framerate", str(fps),
                        "-i", str(frames_dir / "%06d.png"), "-frames:v", str(frames), "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", str(tmp)],
                       check=True, capture_output=True)
