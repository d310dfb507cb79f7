"""The layer browser: every targetable layer of a model, its channel count and output stride,
the target presets that select it and the model's default one (as typed: target=mixed_6c); for a
network without model.layers, its top-level modules to name them from. Offline: the network is
built with random weights.

    dreamrun-layers model=vgg16
    dreamrun-layers model=resnet18 --config-dir my-configs            # presets of your own (also ~/.config/dreamrun)
    python -m dreamrun.nets.layers model=efficientnet_lite0
    dreamrun-layers model=custom model._target_=mypkg.nets.build      # its top-level modules, to name layers from
    python -m dreamrun.nets.layers model=custom model._target_=mypkg.nets.build '+model.layers={head: head}'
"""
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from dreamrun.config.compose import compose_config
from dreamrun.config.hydra_errors import CONFIG_ERRORS, one_line
from dreamrun.config.presets import config_dirs, fitting_target_presets, preset_named
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


@dataclass(frozen=True)
class Child:
    """A top-level module of a network, to name model.layers from."""
    path: str
    kind: str  # its class name, e.g. Conv2d
    channels: Optional[int]  # None: it gave no tensor for the probe image
    stride: Optional[int]  # None: no feature map


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


@torch.no_grad()
def describe_children(cfg: ModelConfig) -> tuple[list[Child], Optional[str]]:
    """The network's top-level modules with the channels and stride of what each gave for a probe image,
    and why the probe did not pass through the network, if it did not."""
    model = build_architecture(cfg)
    outputs: dict[str, Any] = {}
    for name, child in model.named_children():
        child.register_forward_hook(lambda module, args, output, name=name: outputs.setdefault(name, output))
    problem = None
    try:
        model(torch.zeros(1, 3, PROBE_SIDE, PROBE_SIDE))
    except Exception as e:  # a network of the user's own that cannot take the probe: still list its modules
        problem = " ".join(f"{type(e).__name__}: {e}".split()[:40])  # one line, however long the message
    children = []
    for name, child in model.named_children():
        output = outputs.get(name)
        mapped = isinstance(output, torch.Tensor) and output.dim() >= 2
        children.append(Child(name, type(child).__name__, output.shape[1] if mapped else None,
                              _stride(output) if mapped else None))
    return children, problem


def _stride(activation: torch.Tensor) -> Optional[int]:
    if activation.dim() != 4:
        return None
    # networks with unpadded convolutions (Inception) lose a few pixels per layer: report the
    # nominal stride, the power of two their stride-2 stages multiply to
    return 2 ** round(math.log2(PROBE_SIDE / activation.shape[-1]))


def _table(rows: Sequence[Sequence[str]], align: str) -> list[str]:
    """Rows of cells as aligned columns; align has one '<' or '>' per column."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(align))]
    return ["  ".join(f"{cell:{a}{width}}" for cell, a, width in zip(row, align, widths)).rstrip() for row in rows]


def _number(value: Optional[int]) -> str:
    return "-" if value is None else str(value)


def render(cfg: ModelConfig, target: Mapping[str, Any], dirs: Optional[Sequence[Path]] = None) -> str:
    """dreamrun-layers' listing: the model's layers, or without any its top-level modules to name them from.
    dirs: the config dirs whose target presets it names (default: config_dirs())."""
    if not cfg.layers:
        return _render_children(cfg)
    layers = describe_layers(cfg)
    presets = fitting_target_presets(list(cfg.layers), dirs)
    rows = [["layer", "module", "channels", "stride", "target presets"]]
    for layer in layers:
        # the layer's own preset first, then the stages it belongs to
        selecting = ", ".join(sorted((name for name, targets in presets.items() if layer.name in targets),
                                     key=lambda name: len(presets[name])))
        rows.append([layer.name, layer.module, str(layer.channels), _number(layer.stride), selecting])
    lines = [f"{cfg.name}: input at least {cfg.min_size} px", *_table(rows, "<<>><")]
    if "logits" in cfg.layers:
        names = class_names(cfg.categories)
        kind = f"{len(names)} ImageNet classes, by index or name" if names else "class indices"
        lines.append(f"logits: {{classes: [...]}} targets {kind}, e.g. '+target.logits={{classes: [1]}}'")
    example = next((layer.name for layer in layers if layer.name != "logits"), "logits")
    lines.append(f"default target: {_target_words(target, presets, example)}")
    return "\n".join(lines)


def _target_words(target: Mapping[str, Any], presets: Mapping[str, DictConfig], example: str) -> str:
    """The target as the user types it: target=PRESET when it is one."""
    if not target:
        return f"none: add layers to it, e.g. '+target.{example}=all'"
    preset = preset_named(target, presets)
    return f"target={preset}" if preset else ", ".join(target)


def _render_children(cfg: ModelConfig) -> str:
    """A network without model.layers: its top-level modules, and how to name the ones to target."""
    children, problem = describe_children(cfg)
    rows = [["module", "type", "channels", "stride"]]
    rows += [[child.path, child.kind, _number(child.channels), _number(child.stride)] for child in children]
    lines = [f"{cfg.name}: no layers named yet (model.layers is empty); its top-level modules:", *_table(rows, "<<>>")]
    if problem:
        lines.append(f"(a {PROBE_SIDE} px RGB probe image did not pass through it, so some shapes are missing: "
                     f"{problem})")
    # a module with a feature map makes the example; a global pool's 1 px map dreams nothing
    mapped = [child.path for child in children if child.stride is not None and child.stride < PROBE_SIDE]
    example = (mapped or [child.path for child in children] or ["path"])[-1]
    lines.append(f"name the modules to target with '+model.layers={{name: path}}', "
                 f"e.g. '+model.layers={{head: {example}}}' (a dotted path reaches inside a module: body.3)")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """dreamrun-layers [--config-dir DIR] [model=NAME] [model.KEY=VALUE ...]: print the model's targetable layers."""
    overrides = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in overrides):
        print(__doc__.strip())
        return
    dirs = []
    while any(flag in overrides for flag in ("--config-dir", "-cd")):  # as dreamrun takes it (Hydra's flag)
        at = next(i for i, arg in enumerate(overrides) if arg in ("--config-dir", "-cd"))
        if at + 1 == len(overrides) or not Path(overrides[at + 1]).expanduser().is_dir():
            _refuse(f"{overrides[at]} needs a config dir that exists, e.g. --config-dir ~/my-dreamrun-configs")
        dirs.append(Path(overrides[at + 1]).expanduser())
        del overrides[at:at + 2]
    try:
        cfg = compose_config(*overrides, config_dirs=dirs)
        print(render(cfg.model, cfg.target, config_dirs(dirs)), flush=True)
    except BrokenPipeError:  # `dreamrun-layers | head -1`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing left to flush at exit
        sys.exit(1)
    except CONFIG_ERRORS as e:
        _refuse(one_line(e, overrides))
    except OmegaConfBaseException as e:
        _refuse(str(e).strip().splitlines()[0])
    except DreamError as e:
        _refuse(str(e))


def _refuse(message: str) -> None:
    print(f"dreamrun-layers: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
