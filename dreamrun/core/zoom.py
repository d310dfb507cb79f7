"""Zoom dreams: dream a frame, zoom in a little, dream again; the frames make an endless video.

Pure like the engine: tensors and plain parameters in, frames reported to observers
(`on_frames_start`, `on_frame`, `on_frames_end`) beside the engine's own per-step hooks.
"""
import math
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from dreamrun.core.engine import dream
from dreamrun.core.frames import FrameSettings
from dreamrun.core.observers import Observer


def zoom_in(image: torch.Tensor, factor: float, rotation: float = 0.0,
            shift: tuple[float, float] = (0.0, 0.0)) -> torch.Tensor:
    """Crop `factor` of each side around the centre (turned by `rotation` degrees, counter-clockwise, and
    moved by shift (x, y) px: the picture moves the other way) and resample it back to the full size,
    bicubic. A point d px from the centre moves to d / (1 - factor)."""
    _, _, height, width = image.shape
    scale = 1.0 - factor  # the sampled region's side, relative to the image's
    angle = math.radians(rotation)
    cos, sin = math.cos(angle), math.sin(angle)
    # affine_grid works in [-1, 1] on each axis; the aspect terms make the rotation round in pixels
    theta = torch.tensor([[scale * cos, -scale * sin * height / width, 2 * shift[0] / width],
                          [scale * sin * width / height, scale * cos, 2 * shift[1] / height]],
                         dtype=image.dtype, device=image.device).unsqueeze(0)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    # reflection fills the corners a rotation uncovers with picture rather than black
    zoomed = F.grid_sample(image, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
    return zoomed.clamp(0.0, 1.0)


def quantize(image: torch.Tensor) -> torch.Tensor:
    """The frame as its 8-bit PNG holds it, so a resumed zoom continues from exactly these pixels."""
    return (image * 255.0).round() / 255.0


def zoom_dream(
    image: torch.Tensor,
    frame_settings: Callable[[int], FrameSettings],
    *,
    frames: int,
    generator: torch.Generator,
    start: int = 0,
    observers: Sequence[Observer] = (),
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Frames start … frames-1 of a zoom dream, each dreamed with its frame_settings(k); returns the last.

    image: (1, 3, H, W) in [0, 1], the input for start == 0, else frame start-1. Frame k > 0 is frame k-1
    zoomed in (its settings' factor, rotation and shift) and dreamed on again; frame 0 is the dreamed input.
    mask (1, 1, H, W): where every frame is dreamed (engine.dream); elsewhere the zoom only zooms.
    """
    for obs in observers:
        obs.on_frames_start(frames=frames, start=start)
    for frame in range(start, frames):
        settings = frame_settings(frame)
        for obs in observers:
            obs.on_frame_settings(frame=frame, values=settings.logged)
        if frame > 0:
            image = zoom_in(image, settings.factor, settings.rotation, settings.shift)
        image = dream(image, settings.objective, settings.ascent, generator=generator, observers=observers, mask=mask)
        image = quantize(image)
        for obs in observers:
            obs.on_frame(frame=frame, image=image, rng_state=generator.get_state())
    for obs in observers:
        obs.on_frames_end(image=image)
    return image
