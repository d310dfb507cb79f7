"""A user's own network, as model._target_ imports it: tests/ is on sys.path under pytest."""
from torch import nn


def build(*, width: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
    )


class _Poisoned(nn.Module):
    """Its output is NaN wherever the input is finite: a network gone bad (NaN in, NaN out)."""

    def forward(self, x):
        return x * float("nan")


def build_nan(*, width: int = 8) -> nn.Module:
    """A network whose every activation is NaN: the objective is NaN from the first step."""
    return nn.Sequential(*build(width=width), _Poisoned())
