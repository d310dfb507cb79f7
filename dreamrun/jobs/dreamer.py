"""What a job dreams with, built from its config: the device, the objective compiled from the target
dictionary, and the network cut at the objective's layers (with a guide image folded in)."""
import logging
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, ContextManager, Optional

import torch
from omegaconf import OmegaConf

from dreamrun.config.presets import another_models_target
from dreamrun.config.schema import DreamConfig, Mode
from dreamrun.core.engine import Ascent
from dreamrun.core.objectives import Objective, check_channels, guided, parse_target, pick_channels
from dreamrun.core.tiles import resolve_tile_size
from dreamrun.core.transforms import parse_transforms
from dreamrun.errors import DreamError
from dreamrun.inputs.images import load_image, resize_long_side, to_tensor
from dreamrun.nets.backends import BackendSettings, autotune
from dreamrun.nets.build import build_architecture, build_model, class_names, weights_to_download
from dreamrun.nets.feature_net import FeatureNet, channel_counts, feature_net
from dreamrun.nets.precision import autocast_dtype
from dreamrun.nets.torus import on_a_torus

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
    seamless: bool = False  # the network sees the image on a torus (nets.torus)
    _recent: tuple | None = field(default=None, repr=False)

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The engine's objective: the loss, and each target's activation for the observers."""
        with network_surface(self.seamless):
            acts = self.net(image)
        return self.values(acts, tuple(image.shape[-2:]))

    def at_frame(self, frame: int, easing: str) -> "Dreamer":
        """This dreamer with its objective's keyframed weights at frame (itself where none are keyframed)."""
        objective = self.objective.at_frame(frame, easing)
        return self if objective is self.objective else replace(self, objective=objective)

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
        with network_surface(self.seamless):
            return self.net(image.to(self.device))


def network_surface(seamless: bool) -> ContextManager:
    """Where the network sees the image: on a torus (seamless=true, nets.torus), or as it is."""
    return on_a_torus() if seamless else nullcontext()


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
    another_models = another_models_target(target or {}, cfg.model.name, list(cfg.model.layers))
    if another_models:
        raise DreamError(another_models)
    return parse_target(target, list(cfg.model.layers), class_names(cfg.model.categories),
                        _name(cfg.reduction))


def build_dreamer(cfg: DreamConfig, objective: Optional[Objective] = None, *, image: Optional[torch.Tensor] = None,
                  long_side: Optional[int] = None, net: Optional[FeatureNet] = None,
                  dreamer_class: type[Dreamer] = Dreamer) -> Dreamer:
    """The dreamer cfg describes: its objective compiled from cfg.target (or objective, a zoom schedule's
    union of targets), on a network built for it, or on net if given (cut at least at the objective's
    layers and configured), shared by jobs dreaming together, whose launcher decides on tiles (it does
    not tile) and the CUDA settings. image: the input (1, 3, H, W) it will dream, where known: the
    channels {strongest: K} targets pick are picked on it. long_side: of the image it will dream (by
    default image's), where known: tiles fit it.

    In one pass down the layers: the target and the guide first (cheap, so a mistake in either is
    refused before a download), then the network, then what the objective needs of it."""
    device = setup_device(cfg)
    own = net is None
    backends = backend_settings_for(cfg, device) if own else None
    if objective is None:
        objective = compile_target(cfg)
    guide = to_tensor(resize_long_side(load_image(cfg.guide.path), cfg.guide.size)) if cfg.guide.path else None
    if guide is not None and min(guide.shape[-2:]) < cfg.model.min_size:
        raise DreamError(f"the guide image is {guide.shape[-1]}x{guide.shape[-2]} px, smaller than "
                         f"{cfg.model.name}'s {cfg.model.min_size} px: raise guide.size")

    if own:
        if any(term.channels for term in objective.terms) and weights_to_download(cfg.model):
            check_channels(objective, _architecture_channels(cfg, objective))  # before a long download
        net = feature_net(build_model(cfg.model), cfg.model, objective.layers, owns_model=True).to(device)
    counts = channel_counts(net, cfg.model.min_size, device, model=cfg.model.name)
    with torch.no_grad(), network_surface(cfg.seamless):  # the network as the dream will see it
        guide_activations = None if guide is None else net(guide.to(device))
    if own:
        configure_network(net, cfg, device)

    check_channels(objective, counts)
    if objective.unpicked:
        with network_surface(cfg.seamless):
            objective = picked_on(objective, net, image, device)
    if guide_activations is not None:
        objective = guided(objective, guide_activations)
    dreamer = dreamer_class(net, objective, device, backends=backends, seamless=cfg.seamless)
    if not own:
        return dreamer
    obstacle = objective.tiling_obstacle() or _tiling_obstacle(cfg)
    long_side = long_side or (max(image.shape[-2:]) if image is not None else cfg.input.size)
    setting = None if cfg.seamless else cfg.tile.size  # on a torus the network sees the whole image at once
    dreamer.tile_size, note = resolve_tile_size(setting, dreamer, device, cfg.model.min_size, obstacle,
                                                long_side=long_side)
    if note:
        log.warning(note)
    return dreamer


def _tiling_obstacle(cfg: DreamConfig) -> Optional[str]:
    """Why cfg's network or moves keep tiles from giving the untiled gradient (None: they do not)."""
    if not cfg.model.tileable:
        return f"{cfg.model.name}'s unpadded convolutions shrink each tile's feature maps (model.tileable=false)"
    if transforms_of(cfg):
        return "transforms= would move each tile on its own, so the tiles' gradients would not meet"
    return None


def transforms_of(cfg: DreamConfig) -> tuple:
    """cfg.transforms as the engine's transform objects (core.transforms); () for none."""
    spec = OmegaConf.to_container(cfg.transforms) if OmegaConf.is_config(cfg.transforms) else cfg.transforms
    return tuple(parse_transforms(spec))


def picked_on(objective: Objective, net: FeatureNet, image: Optional[torch.Tensor], device: torch.device) -> Objective:
    """objective with its {strongest: K} and {weakest: K} channels picked on image, by the network as it
    dreams (its precision, so jobs dreaming together on a shared network pick what they would alone)."""
    if image is None:
        raise DreamError("target: {strongest: K} picks channels on the input image, and this dream has none yet")
    with torch.no_grad():
        picked = pick_channels(objective, net(image.to(device)))
    for term in picked.terms:
        if term.pick is not None:
            log.info("target.%s: the %s %d channels on the input are %s ('target.%s=[%s]' names them)",
                     term.layer, *term.pick, list(term.channels), term.layer, ",".join(map(str, term.channels)))
    return picked


def _architecture_channels(cfg: DreamConfig, objective: Objective) -> dict[str, int]:
    """The target layers' channel counts, from the network with random weights (a second on a CPU); none
    where that network differs from the one the weights make (a builder that sizes it by its weights):
    then the check waits for the real network."""
    try:
        net = feature_net(build_architecture(cfg.model), cfg.model, objective.layers)
        return channel_counts(net, cfg.model.min_size, torch.device("cpu"), model=cfg.model.name)
    except (DreamError, RuntimeError, AssertionError, ValueError, TypeError):
        return {}


def configure_network(net: FeatureNet, cfg: DreamConfig, device: torch.device) -> FeatureNet:
    """net set up for speed as cfg says: memory format, precision, compilation."""
    if cfg.compile:
        log.warning("compile=true: the first steps compile the network, which takes minutes on a CPU")
    return net.configure(channels_last=cfg.channels_last, compile=cfg.compile,
                         autocast_dtype=autocast_dtype(_name(cfg.precision), device))


def steps_per_size(cfg: DreamConfig) -> int:
    """How many steps in a row a job dreams at one image size: a dream's octave, or every frame of a zoom
    or video after the first (their frames keep one size)."""
    if cfg.mode == Mode.zoom:
        return cfg.zoom.frames * _most(cfg.zoom.steps_per_frame)
    if cfg.mode == Mode.video:
        frames = cfg.video.max_frames or 1000  # every frame of a video of unknown length: many
        return frames * _most(cfg.video.steps_per_frame)
    return cfg.steps


def _most(steps: Any) -> int:
    """steps per frame, or the most its keyframes give"""
    return max(steps.values()) if OmegaConf.is_dict(steps) else steps


def backend_settings_for(cfg: DreamConfig, device: torch.device, deterministic: bool = False) -> BackendSettings:
    return BackendSettings(autotune=autotune(device, steps_per_size(cfg)), tf32=_name(cfg.precision) == "tf32",
                           deterministic=deterministic)


def ascent(cfg: DreamConfig, dreamer: Dreamer, *, octaves: Optional[int] = None, steps: Optional[int] = None,
           step_size: Optional[float] = None) -> Ascent:
    """How the engine climbs for cfg on this dreamer: cfg's octaves, steps and step size unless a frame of a
    zoom or a video takes its own (step_size keyframes: jobs.frame_plan)."""
    if step_size is None:
        if OmegaConf.is_dict(cfg.step_size):
            raise ValueError("step_size has keyframes: pass the frame's step_size")
        step_size = cfg.step_size
    return Ascent(octaves=cfg.octaves if octaves is None else octaves, octave_scale=cfg.octave_scale,
                  steps=cfg.steps if steps is None else steps, step_size=step_size,
                  max_shift=cfg.jitter.max_shift, tile_size=dreamer.tile_size, smoothing=cfg.gradient.smoothing,
                  luminance_only=cfg.gradient.luminance_only, laplacian_levels=cfg.gradient.laplacian_levels,
                  seamless=cfg.seamless, param=_name(cfg.param), transforms=transforms_of(cfg))


def describe(cfg: DreamConfig, dreamer: Dreamer) -> dict[str, Any]:
    """The metrics every job kind reports about what it dreamed with."""
    return {"device": str(dreamer.device), "precision": dreamer.precision, "tile_size": dreamer.tile_size,
            "model": cfg.model.name, "weights": cfg.model.weights,
            "channels_picked": dreamer.objective.picked() or None}


def _name(value: Any) -> str:
    return value.value if isinstance(value, Enum) else str(value)
