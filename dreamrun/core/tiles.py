"""Tiles: the gradient of a big image computed tile by tile, and how big a tile may be, from the memory free now.

Tiles give the untiled gradient only for some objectives and networks (see gradient); resolve_tile_size
says what happens for the others.
"""
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import torch

from dreamrun.errors import DreamError

# image (1, 3, H, W) in [0, 1] -> scalar objective to maximise, or a dict holding it under
# "loss" beside other named values that observers get to see (e.g. each target's activation),
# and under GRADIENT its gradient at image where it was computed elsewhere (a batch of several jobs)
GRADIENT = "gradient"
ObjectiveFn = Callable[[torch.Tensor], Union[torch.Tensor, Mapping[str, torch.Tensor]]]

MEMORY_SHARE = 0.25  # of the free memory, for one tile's forward and backward
CPU_MAX_TILE = 1024  # bigger tiles are no faster on a CPU, only hungrier
PROBE_SIDE = 128
# tiles of at least 2 * ALIGN px start on multiples of ALIGN, the coarsest stride of ImageNet networks'
# feature maps, so that a tile samples every map on the whole image's grid
ALIGN = 32
NEVER_TILE = (None, 0, "none")  # tile.size settings that turn tiling off


def _as_values(out: Union[torch.Tensor, Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return dict(out) if isinstance(out, Mapping) else {"loss": out}


def tile_bounds(length: int, tile_size: int) -> list[tuple[int, int]]:
    """Split [0, length) into the fewest parts no longer than tile_size, as equal as can be with each
    starting on a multiple of ALIGN (of 1 for tiles under 2 * ALIGN px); the last part is the longest."""
    grid = ALIGN if tile_size >= 2 * ALIGN else 1
    units = math.ceil(length / grid)  # the last one may be partial
    parts = math.ceil(units / (tile_size // grid))
    starts = [i * units // parts * grid for i in range(parts)]
    return list(zip(starts, starts[1:] + [length]))


def gradient(image: torch.Tensor, objective: ObjectiveFn,
             tile_size: Optional[int] = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The objective's gradient at image (1, 3, H, W) and its values, detached.

    With tile_size, tile by tile so memory is bounded by a tile: each tile's objective counts by its
    share of the image's pixels. Where the objective is a mean over feature maps of a network with
    padded convolutions (see Objective.tiling_obstacle, ModelConfig.tileable), and the image's sides
    are multiples of the layer's stride, that is the untiled gradient at every pixel further from the
    tile borders than the layer's receptive field is wide; with other sides it is near it there.
    """
    height, width = image.shape[-2:]
    if not tile_size or (height <= tile_size and width <= tile_size):
        image = image.detach().requires_grad_(True)
        values = _as_values(objective(image))
        grad = values.pop(GRADIENT, None)
        if grad is None:
            (grad,) = torch.autograd.grad(values["loss"], image)
        return grad, {name: value.detach() for name, value in values.items()}
    grad = torch.empty_like(image)
    totals: dict[str, torch.Tensor] = {}
    for y0, y1 in tile_bounds(height, tile_size):
        for x0, x1 in tile_bounds(width, tile_size):
            tile = image[..., y0:y1, x0:x1].detach().requires_grad_(True)
            share = (y1 - y0) * (x1 - x0) / (height * width)
            values = _as_values(objective(tile))
            (grad[..., y0:y1, x0:x1],) = torch.autograd.grad(values["loss"] * share, tile)
            for name, value in values.items():
                totals[name] = totals.get(name, 0) + share * value.detach()
    return grad, totals


def free_memory(device: torch.device) -> Optional[int]:
    """Bytes free on device now, counting what PyTorch's caching allocator holds unused (the card's own
    count does not: an earlier job's or step's blocks would look taken); None where it cannot be told."""
    if device.type == "cuda":
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return torch.cuda.mem_get_info(device)[0] + cached
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def saved_tensor_bytes(work: Callable[[], Any]) -> int:
    """Bytes of the tensors autograd saves for the backward pass while work() runs."""
    saved = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        work()
    return saved


def bytes_per_pixel(objective: Callable[[torch.Tensor], Any], device: torch.device) -> float:
    """What autograd keeps per input pixel for a gradient of objective: the bulk of its memory,
    measured on a small probe."""
    probe = torch.zeros(1, 3, PROBE_SIDE, PROBE_SIDE, device=device, requires_grad=True)
    return saved_tensor_bytes(lambda: objective(probe)) / PROBE_SIDE**2


def min_tile_size(min_side: int) -> int:
    """The smallest tile side whose parts (see tile_bounds) the network accepts: two of its minimum
    input on the ALIGN grid."""
    return 2 * math.ceil(min_side / ALIGN) * ALIGN


def auto_tile_size(objective: Callable[[torch.Tensor], Any], device: torch.device, min_side: int) -> Optional[int]:
    """The tile side that fits MEMORY_SHARE of the free memory (None: no limit known)."""
    free = free_memory(device)
    return tile_side(free, bytes_per_pixel(objective, device) if free is not None else None, device, min_side)


def tile_side(free: Optional[int], per_pixel: Optional[float], device: torch.device, min_side: int) -> Optional[int]:
    """auto_tile_size from its measurements: free bytes (None: unknown) and what a pixel keeps."""
    if free is None:
        return CPU_MAX_TILE if device.type == "cpu" else None
    side = int(math.sqrt(MEMORY_SHARE * free / per_pixel)) // ALIGN * ALIGN
    if device.type == "cpu":
        side = min(side, CPU_MAX_TILE)
    return max(side, min_tile_size(min_side))


def resolve_tile_size(setting: Any, objective: Callable[[torch.Tensor], Any], device: torch.device, min_side: int,
                      obstacle: Optional[str] = None,
                      long_side: Optional[int] = None) -> tuple[Optional[int], Optional[str]]:
    """tile.size: "auto", null/0 (never tile), or a side in px the network's parts fit (min_tile_size);
    and a note for the user, or None.

    obstacle says why tiles would not give the untiled gradient (None: they would). Then auto does not
    tile, noted where it would have tiled an image of long_side px (None: of unknown size), and an
    explicit side tiles all the same, noted: it is the one way to dream an image too big for memory.
    """
    if setting in NEVER_TILE:
        return None, None
    if setting == "auto":
        if long_side is not None and long_side <= min_tile_size(min_side):
            return None, None  # no tile is smaller than this image: nothing to measure
        side = auto_tile_size(objective, device, min_side)
        if not obstacle:
            return side, None
        would_tile = side is not None and (long_side is None or long_side > side)
        note = (f"tile.size=auto: not tiling, because {obstacle}. An image too big for memory fails; "
                f"tile.size=N tiles it anyway, approximately") if would_tile else None
        return None, note
    least = min_tile_size(min_side)
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < least:
        raise DreamError(f"tile.size must be auto, null, or a size in px of at least {least} "
                         f"(two of the network's {min_side} px minimum on the {ALIGN} px tile grid), "
                         f"got {setting!r}")
    note = f"tile.size={setting}: tiled gradients are approximate here, because {obstacle}" if obstacle else None
    return setting, note
