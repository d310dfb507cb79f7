"""The network dreamrun dreams with: the model cut after its deepest target layer, rewritten for speed
(BatchNorm folded, average pools as convolutions) and returning every target's activation."""
import warnings
from typing import Mapping, Optional

import torch
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from dreamrun.config.schema import ModelConfig
from dreamrun.nets.rewrites import speed_up


class FeatureNet(nn.Module):
    """Image (B, 3, H, W) in [0, 1] -> {layer: activation}, the network cut after the deepest layer.

    Speed settings (see configure): channels_last memory format and autocast to bf16/fp16;
    activations then come out in that dtype, the input stays fp32.
    """

    def __init__(self, model: nn.Module, layers: Mapping[str, str],
                 mean: list[float], std: list[float]):
        super().__init__()
        self.channels_last = False
        self.autocast_dtype: Optional[torch.dtype] = None
        # create_feature_extractor drops every module after the deepest requested node
        with warnings.catch_warnings():
            # it warns that eval-mode graphs differ from train-mode ones; we only ever trace eval
            warnings.filterwarnings("ignore", message=".*obtained by tracing the model in eval mode")
            self.body = create_feature_extractor(model.eval(), return_nodes={p: n for n, p in layers.items()})
        self.body = speed_up(self.body)  # a copy of the layers up to the cut, rewritten
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def configure(self, *, channels_last: bool, autocast_dtype: Optional[torch.dtype], compile: bool) -> "FeatureNet":
        self.channels_last = channels_last
        self.autocast_dtype = autocast_dtype
        if channels_last:
            self.body = self.body.to(memory_format=torch.channels_last)
        if compile:
            # dynamic shapes: the octaves' different sizes reuse one compiled graph
            self.body = torch.compile(self.body, dynamic=True)
        return self

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (image - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            return self.body(x)


def feature_net(model: nn.Module, cfg: ModelConfig, layers: list[str]) -> FeatureNet:
    return FeatureNet(model, {name: cfg.layers[name] for name in layers}, cfg.mean, cfg.std).eval()


@torch.no_grad()
def channel_counts(net: FeatureNet, min_size: int, device: torch.device) -> dict[str, int]:
    probe = torch.zeros(1, 3, min_size, min_size, device=device)
    return {name: act.shape[1] for name, act in net(probe).items()}
