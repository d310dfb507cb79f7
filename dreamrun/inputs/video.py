"""Videos in: frames decoded from any video FFmpeg reads, with PyAV (FFmpeg's libraries in a wheel:
pip install 'dreamrun[video]').

Every way a file can fail to be a video (not one, no video stream, no frames, a codec FFmpeg cannot
decode) is a DreamError naming the file.
"""
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional

import torch
from PIL import Image

from dreamrun.errors import DreamError
from dreamrun.inputs.files import input_file
from dreamrun.inputs.images import fit_long_side, to_tensor

NO_PYAV = "mode=video needs PyAV and OpenCV: pip install 'dreamrun[video]'"
FALLBACK_FPS = Fraction(25)  # a stream that states no frame rate (rare: raw streams)


def require_video_libraries() -> None:
    """A DreamError with the install line unless PyAV and OpenCV import."""
    try:
        import av  # noqa: F401
        import cv2  # noqa: F401
    except ImportError:
        raise DreamError(NO_PYAV) from None


@dataclass
class VideoInfo:
    fps: Fraction  # frames per second of the video stream
    frames: Optional[int]  # the stream's frame count, where the container states it (or its duration does)
    width: int
    height: int
    codec: str


def _open(path: Path):
    import av

    try:
        container = av.open(str(path))
    except av.error.EOFError:  # a container with streams but not one packet
        raise DreamError(f"{path} holds no video frames to dream on") from None
    except av.error.FFmpegError as e:
        raise DreamError(f"{path} is not a video FFmpeg can read ({av_error_reason(e)})") from None
    if not container.streams.video:
        streams = ", ".join(stream.type for stream in container.streams) or "none"
        container.close()
        raise DreamError(f"{path} holds no video stream (streams: {streams})")
    if container.format.name.endswith("_pipe") or container.format.name == "image2":  # FFmpeg's still images
        container.close()
        raise DreamError(f"{path} is a still image, not a video: dream it without mode=video "
                         "(input.path alone), or zoom into it with mode=zoom")
    if container.streams.video[0].codec_context is None:  # FFmpeg knows no decoder for its codec
        container.close()
        raise DreamError(f"{path}'s video is in a codec FFmpeg cannot decode: convert it, e.g. "
                         "ffmpeg -i in -c:v libx264 out.mp4")
    return container


def av_error_reason(error: Exception) -> str:
    """What went wrong in PyAV, in a few words."""
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def probe(path: str | Path) -> VideoInfo:
    """What the video stream of path says of itself, before decoding a frame."""
    path = input_file(path, "video file")
    container = _open(path)
    with container:
        stream = container.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or FALLBACK_FPS
        frames = stream.frames or None
        if frames is None and stream.duration and stream.time_base:
            frames = max(1, round(float(stream.duration * stream.time_base * fps)))
        return VideoInfo(Fraction(fps), frames, stream.codec_context.width, stream.codec_context.height,
                         stream.codec_context.name)


def read_frames(path: str | Path, *, size: Optional[int], every: int = 1, max_frames: Optional[int] = None,
                upscale: bool = False) -> Iterator[torch.Tensor]:
    """The video's frames as (1, 3, H, W) in [0, 1] on the CPU, their long side at most `size` (None: as
    they are; upscale: enlarged to it too): every `every`-th frame, at most max_frames of them."""
    import av

    path = input_file(path, "video file")
    container = _open(path)
    taken = 0
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # decode on several threads: frames come out the same
        try:
            for index, frame in enumerate(container.decode(stream)):
                if max_frames is not None and taken >= max_frames:
                    return
                if index % every:
                    continue
                taken += 1
                yield to_tensor(fit_long_side(upright(frame), size, upscale))
        except av.error.FFmpegError as e:
            raise DreamError(f"cannot decode {path} ({stream.codec_context.name}) after {taken} frames: "
                             f"{av_error_reason(e)}") from None
    if taken == 0:
        raise DreamError(f"{path} holds no video frames to dream on")


# counter-clockwise quarter turns, as Pillow names them
_TURNS = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}


def upright(frame) -> Image.Image:
    """A decoded frame as players show it: turned as the container's display matrix says (a phone's
    portrait video is stored sideways), the way ffmpeg's autorotate turns it."""
    image = frame.to_image()
    turn = round(getattr(frame, "rotation", 0) or 0) % 360
    return image.transpose(_TURNS[turn]) if turn in _TURNS else image


def frames_expected(info: VideoInfo, every: int, max_frames: Optional[int]) -> Optional[int]:
    """How many frames read_frames will give, as far as the container tells (None: unknown)."""
    if info.frames is None:
        return max_frames
    taken = math.ceil(info.frames / every)
    return taken if max_frames is None else min(taken, max_frames)
