"""Frames to animations: GIF or WebP with Pillow, MP4 with ffmpeg where there is one.

ffmpeg is Debian's (`apt install ffmpeg`) or the one in the imageio-ffmpeg wheel
(`pip install 'dreamrun[video]'`); without either, there is no MP4 and nothing fails. That is said
once per user and machine (a marker in the user's cache dir remembers it), then only at DEBUG.
"""
import io
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

from PIL import Image

from dreamrun.outputs.files import atomic_path, save_bytes, save_text

log = logging.getLogger(__name__)

NO_FFMPEG = "no ffmpeg here, so no zoom.mp4: apt install ffmpeg, or pip install 'dreamrun[video]'"


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


def find_ffmpeg() -> Optional[str]:
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg.get_ffmpeg_exe()


def no_ffmpeg_marker() -> Optional[Path]:
    """The file that remembers this user was told there is no ffmpeg: under $XDG_CACHE_HOME, or
    ~/.cache where that is unset or not absolute (as the XDG spec asks); None without a home dir."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):
        try:
            cache = Path.home() / ".cache"
        except RuntimeError:
            return None
    return Path(cache) / "dreamrun" / "no-ffmpeg-noted"


def note_no_ffmpeg() -> None:
    """Say there is no ffmpeg, so no MP4: at INFO the first time for this user and machine, at DEBUG
    after, because the same advice on every zoom is noise. A marker that cannot be written (a
    read-only cache, no home dir) only means the note comes at INFO again next time."""
    marker = no_ffmpeg_marker()
    if marker and os.path.isfile(marker):
        log.debug(NO_FFMPEG)
        return
    log.info(NO_FFMPEG)
    if marker:
        try:
            save_text(NO_FFMPEG + "\n", marker)
        except OSError as e:
            log.debug("cannot remember the ffmpeg note in %s: %s", marker, e)


def save_mp4(frames_dir: Path, path: Path, fps: float, ffmpeg: str, frames: int) -> None:
    """H.264 MP4 of the first `frames` of frames_dir/%06d.png (yuv420p so every player shows it;
    sides made even for it)."""
    with atomic_path(path, suffix=".mp4") as tmp:
        subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-framerate", str(fps),
                        "-i", str(frames_dir / "%06d.png"), "-frames:v", str(frames), "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", str(tmp)],
                       check=True, capture_output=True)
