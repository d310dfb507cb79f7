"""The layer browser: every targetable layer of a model, its channel count and output stride,
and the target presets made for it. Offline: the network is built with random weights.

    dreamrun-layers model=vgg16
    python -m dreamrun.nets.layers model=efficientnet_lite0
    python -m dreamrun.nets.layers model=custom model._target_=mypkg.nets.build '+model.layers={head: head}'
"""
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dreamrun.config.compose import compose_config, config_dir
from dreamrun.config.hydra_errors import CONFIG_ERRORS, one_line
from dreamrun.config.schema import ModelConfig
from dreamrun.errors import EXIT_USER_ERROR, DreamError
from dreamrun.nets.build import build_architecture, class_names
from dreamrun.nets.feature_net import feature_net

PROBE_SIDE = 256  # the probe image's side: big enough for every preset's deepest layer


@dataclass(frozen=True)
class Layer:
    name: str
    module: str
    channels: int
    stride: Optional[int]  # input side / feature map side; None for logits (no map)


@torch.no_grad()
def describe_layers(cfg: ModelConfig) -> list[Layer]:
    """Each of the preset's layers with its channel count and output stride, in the preset's order."""
    model = build_architecture(cfg)
    if not cfg.layers:
        children = ", ".join(name for name, _ in model.named_children())
        raise DreamError(f"model.layers is empty: name the modules to target, e.g. "
                         f"model.layers={{name: module.path}}; the network's top-level modules: {children}")
    net = feature_net(model, cfg, list(cfg.layers))
    outputs = net(torch.zeros(1, 3, PROBE_SIDE, PROBE_SIDE))
    return [Layer(name, cfg.layers[name], outputs[name].shape[1], _stride(outputs[name])) for name in cfg.layers]


def _stride(activation: torch.Tensor) -> Optional[int]:
    if activation.dim() != 4:
        return None
    # networks with unpadded convolutions (Inception) lose a few pixels per layer: report the
    # nominal stride, the power of two their stride-2 stages multiply to
    return 2 ** round(math.log2(PROBE_SIDE / activation.shape[-1]))


def target_presets(layers: Sequence[str], conf: Path = Path(config_dir())) -> list[str]:
    """The target presets (conf/target/*.yaml) whose layers all belong to a model with these layers."""
    presets = []
    # natural order: block_2 before block_10
    by_name = lambda path: [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]
    for path in sorted((conf / "target").glob("*.yaml"), key=by_name):
        targets = OmegaConf.load(path)
        if targets and set(targets) <= set(layers):
            presets.append(path.stem)
    return presets


def render(cfg: ModelConfig, default_target: Sequence[str]) -> str:
    layers = describe_layers(cfg)
    names = class_names(cfg.categories)
    name_width = max(len("layer"), *(len(layer.name) for layer in layers))
    module_width = max(len("module"), *(len(layer.module) for layer in layers))
    lines = [f"{cfg.name}: input at least {cfg.min_size} px",
             f"{'layer':<{name_width}}  {'module':<{module_width}}  channels  stride"]
    for layer in layers:
        stride = "-" if layer.stride is None else str(layer.stride)
        lines.append(f"{layer.name:<{name_width}}  {layer.module:<{module_width}}  {layer.channels:>8}  {stride:>6}")
    if "logits" in cfg.layers:
        kind = f"{len(names)} ImageNet classes, by index or name" if names else "class indices"
        lines.append(f"logits: {{classes: [...]}} targets {kind}, e.g. '+target.logits={{classes: [1]}}'")
    lines.append(f"target presets: {', '.join(target_presets(list(cfg.layers))) or 'none'}")
    lines.append(f"default target: {', '.join(default_target) or 'none'}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """dreamrun-layers [model=NAME] [model.KEY=VALUE ...]: print the model's targetable layers."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in overrides):
        print(__doc__.strip())
        return
    try:
        cfg = compose_config(*overrides)
        print(render(cfg.model, list(cfg.target)))
    except CONFIG_ERRORS as e:
        _refuse(one_line(e))
    except OmegaConfBaseException as e:
        _refuse(str(e).strip().splitlines()[0])
    except DreamError as e:
        _refuse(str(e))


def _refuse(message: str) -> None:
    print(f"dreamrun-layers: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
