"""Transformation robustness: the image the network sees is moved a little at random every step.

    transforms=lucid    pad 12 px of grey, jitter 8, scale 0.9-1.1, rotate ±10°, jitter 4 (Lucid's standard set)
    transforms=none     the image as it is
    'transforms=[{pad: 16}, {jitter: 4}, {rotate: 5}]'    your own list, applied in its order

A visualisation that only works for one exact placement of its pixels is an adversarial pattern, not a
picture of what the channel responds to (Olah et al., "Feature Visualization", Distill 2017). Each
transform is differentiable, so the gradient reaches the image through it. The engine puts them inside
the objective (seen_through), so dreams, zooms, videos and batched jobs all use them alike, and draws their
moves from its own generator (the jitter's, on the CPU): the same seed, the same moves on any device, and a
resumed zoom or video continues them from its saved state. Every transform's output size depends only on
its input size, so the jobs of a batch keep one size.
"""
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from dreamrun.core.tiles import GRADIENT, ObjectiveFn
from dreamrun.errors import DreamError

GREY = 0.5


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


@dataclass(frozen=True)
class Pad:
    """px of mid grey on every side: the moves below have somewhere to take the image's edge."""

    px: int = 12

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return F.pad(image, [self.px] * 4, mode="constant", value=GREY)


@dataclass(frozen=True)
class Jitter:
    """A roll by up to px in each direction."""

    px: int = 8

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        dy, dx = torch.randint(-self.px, self.px + 1, (2,), generator=generator).tolist()
        return torch.roll(image, shifts=(dy, dx), dims=(-2, -1))


def _warp(image: torch.Tensor, scale: float, degrees: float) -> torch.Tensor:
    """image scaled about its centre and turned counter-clockwise, at its own size (outside: black)."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale  # output coordinates -> input coordinates
    theta = torch.tensor([[[cos, -sin, 0.0], [sin, cos, 0.0]]], dtype=image.dtype, device=image.device)
    grid = F.affine_grid(theta.expand(image.shape[0], 2, 3), list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@dataclass(frozen=True)
class Scale:
    """A zoom by a factor drawn from [low, high] about the centre, the size kept."""

    low: float = 0.9
    high: float = 1.1

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return _warp(image, _uniform(self.low, self.high, generator), 0.0)


@dataclass(frozen=True)
class Rotate:
    """A turn by an angle drawn from [-degrees, degrees] about the centre, the size kept."""

    degrees: float = 10.0

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return _warp(image, 1.0, _uniform(-self.degrees, self.degrees, generator))


TRANSFORMS = {"pad": Pad, "jitter": Jitter, "scale": Scale, "rotate": Rotate}
SETS: dict[str, list[Any]] = {
    "none": [],
    "lucid": [{"pad": 12}, {"jitter": 8}, {"scale": [0.9, 1.1]}, {"rotate": 10}, {"jitter": 4}],
}
EXAMPLE = "'transforms=[{pad: 12}, {jitter: 8}, {scale: [0.9, 1.1]}, {rotate: 10}]'"


def seen_through(transforms: Sequence[Any], objective: ObjectiveFn, generator: torch.Generator) -> ObjectiveFn:
    """objective of the image as the network sees it through transforms, in order, their moves drawn from
    generator. A gradient the objective hands back itself (GRADIENT: a batch's, at what it saw) is carried
    back through the moves to the image."""
    def moved(image: torch.Tensor):
        seen = image
        for transform in transforms:
            seen = transform(seen, generator)
        out = objective(seen)
        if isinstance(out, Mapping) and GRADIENT in out:
            (grad,) = torch.autograd.grad(seen, image, out[GRADIENT])
            out = {**out, GRADIENT: grad}
        return out

    return moved


def parse_transforms(spec: Any) -> list[Any]:
    """transforms= as transform objects: a set's name (lucid, none) or a list of names and {name: argument}
    (pad: px, jitter: px, scale: [low, high], rotate: degrees); a wrong one is a DreamError of one line."""
    if spec is None:
        return []
    if isinstance(spec, str):
        if spec not in SETS:
            raise DreamError(f"transforms={spec}: unknown; use {', '.join(SETS)} or a list of "
                             f"{', '.join(TRANSFORMS)}, e.g. {EXAMPLE}")
        spec = SETS[spec]
    if isinstance(spec, Mapping) or not isinstance(spec, Sequence):
        raise DreamError(f"transforms must be {' or '.join(SETS)} or a list, e.g. {EXAMPLE}; got {spec!r}")
    return [_transform(item) for item in spec]


def _transform(item: Any) -> Any:
    if isinstance(item, str):
        name, argument = item, None
    elif isinstance(item, Mapping) and len(item) == 1:
        ((name, argument),) = item.items()
    else:
        raise DreamError(f"transforms: each item is a name or {{name: argument}}, e.g. {EXAMPLE}; got {item!r}")
    if name not in TRANSFORMS:
        raise DreamError(f"transforms: unknown transform '{name}'; use {', '.join(TRANSFORMS)}")
    if argument is None:
        return TRANSFORMS[name]()
    return _with_argument(name, argument)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _with_argument(name: str, argument: Any) -> Any:
    if name in ("pad", "jitter"):
        if not isinstance(argument, int) or isinstance(argument, bool) or argument < 0:
            raise DreamError(f"transforms: {name} takes px, a whole number of 0 or more; got {argument!r}")
        return TRANSFORMS[name](argument)
    if name == "rotate":
        if not _number(argument) or not 0 <= argument <= 180:
            raise DreamError(f"transforms: rotate takes degrees between 0 and 180; got {argument!r}")
        return Rotate(float(argument))
    pair = list(argument) if isinstance(argument, Sequence) and not isinstance(argument, str) else None
    if not pair or len(pair) != 2 or not all(_number(v) and v > 0 for v in pair) or pair[0] > pair[1]:
        raise DreamError(f"transforms: scale takes [low, high], two factors with 0 < low <= high; got {argument!r}")
    return Scale(float(pair[0]), float(pair[1]))
