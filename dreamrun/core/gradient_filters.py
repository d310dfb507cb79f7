"""Filters on the dream's gradient for cleaner images: pure tensor functions, each off by default.

- Gaussian cascade: the gradient blurred at three scales and averaged, so pixel-level noise
  does not pile up in the image.
- Laplacian-pyramid normalisation: each frequency band of the gradient scaled to unit RMS, so the
  low frequencies (large shapes) get as large a share of every step as the fine detail.
- Luminance only: every colour channel moves by the gradient with respect to luminance, so the
  dream changes brightness only and keeps the input's colours.

All take and return a gradient (1, 3, H, W).
"""
import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

GradientFilter = Callable[[torch.Tensor], torch.Tensor]

# the cascade's sigmas, relative to the configured one
CASCADE = (0.5, 1.0, 2.0)


def luminance_only(grad: torch.Tensor) -> torch.Tensor:
    """The ascent direction in luminance Y, the chroma (Cb, Cr) held fixed.

    With Cb and Cr fixed, R, G and B each change by exactly dY (the YCbCr inverse has a 1 for Y in
    every row), so d(objective)/dY is the sum of the three channels' gradients.
    """
    return grad.sum(dim=1, keepdim=True).expand_as(grad)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """x (B, C, H, W) blurred by a separable Gaussian, edges reflected."""
    # reflection needs the padding to stay below the side
    radius = min(math.ceil(3 * sigma), min(x.shape[-2:]) - 1)
    if radius < 1:
        return x
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    rows = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    columns = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), rows, groups=channels)
    return F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), columns, groups=channels)


def gaussian_cascade(grad: torch.Tensor, sigma: float) -> torch.Tensor:
    """The mean of the gradient blurred at sigma / 2, sigma and 2 sigma px."""
    return sum(gaussian_blur(grad, sigma * factor) for factor in CASCADE) / len(CASCADE)


def _unit_rms(x: torch.Tensor) -> torch.Tensor:
    # scaled to a peak of 1 first: the squares of a randomly initialised network's tiny gradients
    # would underflow to 0
    x = x / x.abs().amax().clamp_min(torch.finfo(x.dtype).tiny)
    return x / x.pow(2).mean().sqrt().clamp_min(torch.finfo(x.dtype).tiny)


def laplacian_normalise(grad: torch.Tensor, levels: int) -> torch.Tensor:
    """The gradient rebuilt from its Laplacian pyramid (levels bands) with every band at unit RMS."""
    bands = []
    x = grad
    for _ in range(levels - 1):
        if min(x.shape[-2:]) < 2:
            break
        low = F.avg_pool2d(x, 2, ceil_mode=True)
        bands.append(x - F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False))
        x = low
    rebuilt = _unit_rms(x)
    for band in reversed(bands):
        rebuilt = F.interpolate(rebuilt, size=band.shape[-2:], mode="bilinear", align_corners=False) + _unit_rms(band)
    return rebuilt


def gradient_filter(*, smoothing: float, laplacian_levels: int, luminance: bool) -> Optional[GradientFilter]:
    """The chosen filters as one function, in the order luminance, smoothing, Laplacian; None if none."""
    filters: list[GradientFilter] = []
    if luminance:
        filters.append(luminance_only)
    if smoothing > 0:
        filters.append(lambda grad: gaussian_cascade(grad, smoothing))
    if laplacian_levels > 0:
        filters.append(lambda grad: laplacian_normalise(grad, laplacian_levels))
    if not filters:
        return None

    def apply(grad: torch.Tensor) -> torch.Tensor:
        for f in filters:
            grad = f(grad)
        return grad

    return apply
