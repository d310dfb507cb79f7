"""What a job dreams with, built from its config: the device, the objective compiled from the target
dictionary, and the network cut at the objective's layers (with a guide image folded in)."""
import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional

import torch
from omegaconf import OmegaConf

from dreamrun.config.schema import DreamConfig, Mode
from dreamrun.core.engine import Ascent
from dreamrun.core.gradient_filters import gradient_filter
from dreamrun.core.objectives import Objective, check_channels, guided, parse_target
from dreamrun.core.tiles import resolve_tile_size
from dreamrun.errors import DreamError
from dreamrun.inputs.images import load_image, resize_long_side, to_tensor
from dreamrun.nets.backends import BackendSettings, autotune
from dreamrun.nets.build import build_model, class_names
from dreamrun.nets.feature_net import FeatureNet, channel_counts, feature_net
from dreamrun.nets.precision import autocast_dtype

log = logging.getLogger(__name__)


@dataclass
class Dreamer:
    """A network cut at its target layers, with the objective compiled from the target dictionary."""

    net: FeatureNet
    objective: Objective
    device: torch.device
    tile_size: Optional[int] = None  # gradient tiles of at most this side; None: whole image
    # the CUDA flags it dreams under; None where jobs dreaming together share a network and its launcher sets them
    backends: Optional[BackendSettings] = None
    _recent: tuple | None = field(default=None, repr=False)

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The engine's objective: the loss, and each target's activation for the observers."""
        return self.values(self.net(image), tuple(image.shape[-2:]))

    def values(self, acts: dict[str, torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        """The objective's values on the activations of one image of this (H, W)."""
        self._recent = (size, {t.name: t.select(acts).detach() for t in self.objective.terms})
        parts = self.objective.activations(acts)
        return {"loss": self.objective.total(parts), **{f"act/{name}": value for name, value in parts.items()}}

    @property
    def precision(self) -> str:
        """The dtype the network computes in: float32, bfloat16 or float16."""
        return str(self.net.autocast_dtype or torch.float32).removeprefix("torch.")

    def activations(self, image: torch.Tensor) -> dict[str, float]:
        acts = self.objective.activations(self.inspect(image))
        return {name: value.item() for name, value in acts.items()}

    def recent_feature_maps(self, size: tuple[int, int]) -> Optional[dict[str, torch.Tensor]]:
        """The maps of the last objective evaluation, if it saw a whole image of this (H, W)."""
        if self._recent is None or self._recent[0] != tuple(size):
            return None
        return self._recent[1]

    def feature_maps(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each target's activation map (1, C', h, w): what the layer sees in image."""
        acts = self.inspect(image)
        return {term.name: term.select(acts) for term in self.objective.terms}

    @torch.no_grad()
    def inspect(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The target layers' activations for image, outside the ascent."""
        return self.net(image.to(self.device))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DreamError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise DreamError(f"device={name}: dreamrun dreams on cpu or cuda (use auto, cpu, cuda or cuda:N)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DreamError(f"device={name} but CUDA is not available here: use device=auto or cpu")
    return device


def setup_device(cfg: DreamConfig) -> torch.device:
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # random weights (model.weights=null) depend on it
    return device


def compile_target(cfg: DreamConfig) -> Objective:
    target = OmegaConf.to_container(cfg.target) if OmegaConf.is_config(cfg.target) else cfg.target
    return parse_target(target, list(cfg.model.layers), class_names(cfg.model.categories))


def build_dreamer(cfg: DreamConfig, objective: Objective, device: torch.device,
                  net: Optional[FeatureNet] = None, dreamer_class: type[Dreamer] = Dreamer,
                  long_side: Optional[int] = None) -> Dreamer:
    """A dreamer of objective as cfg says: on a network built for it, or on net if given (cut at least at
    the objective's layers and configured), shared by jobs dreaming together, whose launcher decides
    on tiles (it does not tile) and the CUDA settings. long_side: of the image it will dream, where known."""
    own = net is None
    if own:
        net = build_network(cfg, objective.layers, device)
    check_channels(objective, network_channels(net, cfg, device))
    if cfg.guide.path:
        guide = to_tensor(resize_long_side(load_image(cfg.guide.path), cfg.guide.size))
        if min(guide.shape[-2:]) < cfg.model.min_size:
            raise DreamError(f"the guide image is {guide.shape[-1]}x{guide.shape[-2]} px, smaller than "
                             f"{cfg.model.name}'s {cfg.model.min_size} px: raise guide.size")
        with torch.no_grad():
            objective = guided(objective, net(guide.to(device)))
    if own:
        configure_network(net, cfg, device)
    dreamer = dreamer_class(net, objective, device)
    if not own:
        return dreamer
    dreamer.backends = backend_settings_for(cfg, device)
    obstacle = objective.tiling_obstacle() or (None if cfg.model.tileable else (
        f"{cfg.model.name}'s unpadded convolutions shrink each tile's feature maps (model.tileable=false)"))
    dreamer.tile_size, note = resolve_tile_size(cfg.tile.size, dreamer, device, cfg.model.min_size, obstacle,
                                                long_side=long_side or cfg.input.size)
    if note:
        log.warning(note)
    return dreamer


def build_network(cfg: DreamConfig, layers: list[str], device: torch.device) -> FeatureNet:
    """cfg's network cut at these layers, on device."""
    return feature_net(build_model(cfg.model), cfg.model, layers, owns_model=True).to(device)


def configure_network(net: FeatureNet, cfg: DreamConfig, device: torch.device) -> FeatureNet:
    """net set up for speed as cfg says: memory format, precision, compilation."""
    if cfg.compile:
        log.warning("compile=true: the first steps compile the network, which takes minutes on a CPU")
    return net.configure(channels_last=cfg.channels_last, compile=cfg.compile,
                         autocast_dtype=autocast_dtype(_name(cfg.precision), device))


def network_channels(net: FeatureNet, cfg: DreamConfig, device: torch.device) -> dict[str, int]:
    """Each cut layer's channel count."""
    try:
        return channel_counts(net, cfg.model.min_size, device)
    except RuntimeError as e:  # the probe is the network's smallest input: too small for its layers
        raise DreamError(f"{cfg.model.name} cannot take a {cfg.model.min_size} px input, its model.min_size "
                         f"({' '.join(str(e).split())[:160]}): raise model.min_size") from None


def steps_per_size(cfg: DreamConfig) -> int:
    """How many steps in a row a job dreams at one image size: a dream's octave, or every frame of a zoom
    or video after the first (their frames keep one size)."""
    if cfg.mode == Mode.zoom:
        return cfg.zoom.frames * cfg.zoom.steps_per_frame
    if cfg.mode == Mode.video:
        frames = cfg.video.max_frames or 1000  # every frame of a video of unknown length: many
        return frames * cfg.video.steps_per_frame
    return cfg.steps


def backend_settings_for(cfg: DreamConfig, device: torch.device, deterministic: bool = False) -> BackendSettings:
    return BackendSettings(autotune=autotune(device, steps_per_size(cfg)), tf32=_name(cfg.precision) == "tf32",
                           deterministic=deterministic)


def ascent(cfg: DreamConfig, dreamer: Dreamer, *, octaves: Optional[int] = None,
           steps: Optional[int] = None) -> Ascent:
    """How the engine climbs for cfg on this dreamer: cfg's octaves and steps unless a frame of a zoom or
    a video takes its own."""
    return Ascent(octaves=cfg.octaves if octaves is None else octaves, octave_scale=cfg.octave_scale,
                  steps=cfg.steps if steps is None else steps, step_size=cfg.step_size,
                  max_shift=cfg.jitter.max_shift, tile_size=dreamer.tile_size,
                  gradient_filter=gradient_filter(smoothing=cfg.gradient.smoothing,
                                                  luminance=cfg.gradient.luminance_only,
                                                  laplacian_levels=cfg.gradient.laplacian_levels))


def describe(cfg: DreamConfig, dreamer: Dreamer) -> dict[str, Any]:
    """The metrics every job kind reports about what it dreamed with."""
    return {"device": str(dreamer.device), "precision": dreamer.precision, "tile_size": dreamer.tile_size,
            "model": cfg.model.name, "weights": cfg.model.weights}


def _name(value: Any) -> str:
    return value.value if isinstance(value, Enum) else str(value)
