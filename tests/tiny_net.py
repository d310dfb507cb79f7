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


def build_chatty(*, width: int = 8) -> nn.Module:
    """A network whose builder talks on stdout, as torch.hub's download does ("Downloading: ..."), from
    Python and from below it (file descriptor 1)."""
    import os

    print('Downloading: "https://example.invalid/chatty.pth" to /tmp/chatty.pth', flush=True)
    os.write(1, b"100%|##########| 1.00M/1.00M\n")
    return build(width=width)
