"""The Gaussian pyramid of octaves: sizes, smallest first, and antialiased resizing between them."""
import math
from typing import Optional

import torch
import torch.nn.functional as F

from dreamrun.errors import DreamError


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """(H, W) of each octave, smallest first; the last is the full size."""
    return [
        (round(height / scale**k), round(width / scale**k)) for k in reversed(range(octaves))
    ]


def max_octaves(height: int, width: int, scale: float, min_size: int) -> int:
    """The largest octave count whose smallest octave keeps both sides >= min_size (0 if none)."""
    if min(height, width) < min_size:
        return 0
    # small epsilon so an exact fit is not lost to floating point
    return 1 + math.floor(math.log(min(height, width) / min_size) / math.log(scale) + 1e-9)


def check_octaves(height: int, width: int, octaves: int, scale: float, min_size: int, *,
                  what: str = "the image is", key: str = "octaves", max_side: Optional[int] = None,
                  upscale: bool = True) -> None:
    """Refuse an image too small for the network, or too many octaves for it (named by key). max_side,
    upscale: input.size and input.upscale, for the advice to an image kept smaller than input.size."""
    kept_small = not upscale and max_side is not None and max(height, width) < max_side
    enlarge = f"input.upscale=true (it dreams enlarged to input.size={max_side})" if kept_small else \
        "a larger input.size"
    fits = max_octaves(height, width, scale, min_size)
    if fits == 0:
        raise DreamError(f"{what} {width}x{height} px but the network needs at least {min_size} px a side: "
                         f"use {enlarge}")
    smallest = min(octave_sizes(height, width, octaves, scale)[0])
    if smallest < min_size:
        raise DreamError(
            f"{key}={octaves} is too many for a {width}x{height} image at octave_scale={scale}: "
            f"the smallest octave would be {smallest} px, below the network's {min_size} px. "
            f"The largest count that fits is {key}={fits}" + (f", or use {enlarge}" if kept_small else "")
        )


def resize(image: torch.Tensor, size: tuple[int, int], wrap: bool = False) -> torch.Tensor:
    """Bilinear resize of (B, C, H, W); antialiased when shrinking so octaves don't alias. wrap: the image
    is a tile of a periodic one (a seamless dream), so its edges blend with the opposite edges."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    if wrap:
        rows = periodic_weights(image.shape[-2], size[0], image.device)  # (h, H)
        columns = periodic_weights(image.shape[-1], size[1], image.device)  # (w, W)
        return torch.einsum("hH,bcHW,wW->bchw", rows, image.float(), columns).to(image.dtype)
    shrinking = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def periodic_weights(length: int, new_length: int, device: torch.device) -> torch.Tensor:
    """(new_length, length): linear interpolation of a periodic signal, its triangle filter widened when
    shrinking (antialiasing, as bilinear resizing does), every distance measured around the circle."""
    scale = length / new_length
    width = max(scale, 1.0)
    centres = (torch.arange(new_length, device=device) + 0.5) * scale - 0.5  # where each new sample lies
    distance = torch.arange(length, device=device)[None, :] - centres[:, None]
    distance = torch.remainder(distance + length / 2, length) - length / 2
    weights = (1 - distance.abs() / width).clamp_min(0)
    return weights / weights.sum(dim=1, keepdim=True)
