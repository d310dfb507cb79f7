"""Videos out: MP4 files of frame files (dream.mp4 with the input's sound, zoom.mp4), with PyAV
(pip install 'dreamrun[video]'). Without PyAV there is no MP4 and nothing fails; that is said once per
user and machine (a marker in the user's cache dir remembers it), then only at DEBUG.
"""
import logging
import os
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

from PIL import Image

from dreamrun.inputs.video import av_error_reason
from dreamrun.outputs.files import atomic_path, save_text

log = logging.getLogger(__name__)

NO_MP4 = "no PyAV here, so no MP4 of the frames: pip install 'dreamrun[video]'"


def can_write_mp4() -> bool:
    try:
        import av  # noqa: F401  (only whether it imports)
    except ImportError:
        return False
    return True


def no_mp4_marker() -> Optional[Path]:
    """The file that remembers this user was told there is no MP4 writer: under $XDG_CACHE_HOME, or
    ~/.cache where that is unset or not absolute (as the XDG spec asks); None without a home dir."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):
        try:
            cache = Path.home() / ".cache"
        except RuntimeError:
            return None
    return Path(cache) / "dreamrun" / "no-mp4-noted"


def note_no_mp4() -> None:
    """Say there is no MP4 writer (PyAV), so no MP4: at INFO the first time for this user and machine, at DEBUG
    after, because the same advice on every zoom is noise. A marker that cannot be written (a
    read-only cache, no home dir) only means the note comes at INFO again next time."""
    marker = no_mp4_marker()
    if marker and os.path.isfile(marker):
        log.debug(NO_MP4)
        return
    log.info(NO_MP4)
    if marker:
        try:
            save_text(NO_MP4 + "\n", marker)
        except OSError as e:
            log.debug("cannot remember the MP4 note in %s: %s", marker, e)


def save_mp4(paths: Sequence[Path], path: Path, fps: Fraction | float, audio_from: Optional[Path] = None) -> None:
    """H.264 MP4 of the frame files (yuv420p so browsers play it; sides cut to even for it), with the
    first audio track of audio_from, as AAC, for as long as the frames last. Audio that cannot be
    decoded is left out with a warning: the dream is what matters."""
    import av

    if audio_from is not None:
        try:
            _write_mp4(paths, path, fps, audio_from)
            return
        except av.error.FFmpegError as e:
            log.warning("dream.mp4 without sound: cannot carry over the audio of %s (%s)", audio_from, av_error_reason(e))
    _write_mp4(paths, path, fps, None)


def _write_mp4(paths: Sequence[Path], path: Path, fps: Fraction | float, audio_from: Optional[Path]) -> None:
    import av

    rate = Fraction(fps).limit_denominator(100000)
    with Image.open(paths[0]) as first:
        width, height = (side - side % 2 for side in first.size)
    with atomic_path(path, suffix=".mp4") as tmp, av.open(str(tmp), "w", format="mp4") as container, \
            ExitStack() as sources:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}
        source = sources.enter_context(av.open(str(audio_from))) if audio_from else None
        sound = source.streams.audio[0] if source and source.streams.audio else None
        audio = container.add_stream("aac", rate=sound.rate) if sound else None  # streams first, then packets
        for frame_path in paths:
            with Image.open(frame_path) as image:
                image = image.convert("RGB").crop((0, 0, width, height))
            container.mux(stream.encode(av.VideoFrame.from_image(image)))
        container.mux(stream.encode())  # flush the encoder's delayed frames
        if sound:
            seconds = len(paths) / rate
            for frame in source.decode(sound):
                if frame.time is not None and frame.time >= seconds:
                    break
                frame.pts = None  # the encoder counts samples itself
                container.mux(audio.encode(frame))
            container.mux(audio.encode())
