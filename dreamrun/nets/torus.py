"""Seamless dreams: the network sees the image on a torus, its right edge continuing into its left and its
bottom into its top.

Inside `on_a_torus()`, every padded convolution and pool, and every zero padding (F.pad), pads by wrapping
around instead: the op gets its input padded circularly and no padding of its own. It works on the calls
themselves (a torch function mode), so it reaches functional pools and traced graphs alike, and
autograd carries the gradient back across the seam.
"""
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

Padding = tuple[int, int, int, int]  # left, right, top, bottom


def wrap_pad(x: torch.Tensor, padding: Padding) -> torch.Tensor:
    """x (..., H, W) padded by wrapping around, any amount (F.pad's circular mode wraps at most once)."""
    left, right, top, bottom = padding
    height, width = x.shape[-2:]
    rows = torch.arange(-top, height + bottom, device=x.device) % height
    columns = torch.arange(-left, width + right, device=x.device) % width
    return x.index_select(-2, rows).index_select(-1, columns)


def _pairs(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _symmetric(padding: Any) -> Padding:
    """Padding (a number, or (rows, columns)) as left, right, top, bottom."""
    rows, columns = _pairs(padding)
    return columns, columns, rows, rows


def _conv_padding(padding: Any, weight: torch.Tensor, dilation: Any) -> Padding:
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":  # as PyTorch pads it: the odd px goes right and bottom
        rows, columns = (d * (k - 1) for d, k in zip(_pairs(dilation), weight.shape[-2:]))
        return columns // 2, columns - columns // 2, rows // 2, rows - rows // 2
    return _symmetric(padding)


def _argument(args: Sequence[Any], kwargs: dict, index: int, name: str, default: Any) -> Any:
    return args[index] if len(args) > index else kwargs.get(name, default)


def _replaced(args: Sequence[Any], kwargs: dict, index: int, name: str, value: Any) -> tuple[list, dict]:
    args, kwargs = list(args), dict(kwargs)
    if len(args) > index:
        args[index] = value
    else:
        kwargs[name] = value
    return args, kwargs


# op -> the position of its padding argument (its input comes first, a convolution's weight second)
PADDED_OPS = {torch.conv2d: 4, F.max_pool2d: 3, F.avg_pool2d: 3, torch.max_pool2d: 3}


class CircularPadding(TorchFunctionMode):
    """Padding by wrapping around, for every padded 2-d convolution and pool and every zero F.pad."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in PADDED_OPS:
            index = PADDED_OPS[func]
            padding = _argument(args, kwargs, index, "padding", 0)
            wrap = _conv_padding(padding, _argument(args, kwargs, 1, "weight", None),
                                 _argument(args, kwargs, 5, "dilation", 1)) \
                if func is torch.conv2d else _symmetric(padding)
            if any(wrap):
                args, kwargs = _replaced(args, kwargs, index, "padding", 0)
                args, kwargs = _replaced(args, kwargs, 0, "input", wrap_pad(_argument(args, kwargs, 0, "input", None), wrap))
        elif func is F.pad:
            mode = _argument(args, kwargs, 2, "mode", "constant")
            value = _argument(args, kwargs, 3, "value", None)
            pad = _argument(args, kwargs, 1, "pad", ())
            x = _argument(args, kwargs, 0, "input", None)
            if mode == "constant" and not value and len(pad) == 4 and x.dim() == 4:
                return wrap_pad(x, tuple(pad))
        return func(*args, **kwargs)


def on_a_torus() -> CircularPadding:
    """with on_a_torus(): net(image)  # the network sees image on a torus"""
    return CircularPadding()
