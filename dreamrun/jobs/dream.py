"""One dream from a config: build the network, objective and input, run the engine, write results.

Shared by the CLI (dreamrun.cli), the Python API (dreamrun.dream) and the tests.
"""
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from enum import Enum
from typing import Any, Iterator, Optional, Sequence

import torch
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter
from tqdm.contrib.logging import logging_redirect_tqdm

from dreamrun.config.schema import DreamConfig, InputKind
from dreamrun.core import engine
from dreamrun.core.gradient_filters import GradientFilter, gradient_filter
from dreamrun.core.objectives import Objective, check_channels, guided, parse_target
from dreamrun.core.observers import LastStep, Observer
from dreamrun.core.octaves import check_octaves, resize
from dreamrun.core.tiles import resolve_tile_size
from dreamrun.errors import DreamError
from dreamrun.nets.build import build_model, class_names
from dreamrun.nets.feature_net import FeatureNet, channel_counts, feature_net
from dreamrun.nets.precision import autocast_dtype
from dreamrun.outputs.files import save_json, save_png
from dreamrun.outputs.images import load_image, noise, resize_long_side, sample_image, to_pil, to_tensor
from dreamrun.outputs.octave_images import OctaveImages
from dreamrun.outputs.progress import ProgressBar
from dreamrun.outputs.tensorboard import TensorBoardLogger, log_config, log_hparams

log = logging.getLogger(__name__)

MAX_SIDE = 16384
INTERRUPTED_IMAGE = "interrupted.png"  # the last finished step of an interrupted dream
LAST_GOOD_IMAGE = "last_good.png"  # the image before the objective became NaN or infinite


@dataclass
class Dreamer:
    """A network cut at its target layers, with the objective compiled from the target dictionary."""

    net: FeatureNet
    objective: Objective
    device: torch.device
    tile_size: Optional[int] = None  # gradient tiles of at most this side; None: whole image
    _recent: tuple | None = field(default=None, repr=False)

    def __call__(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """The engine's objective: the loss, and each target's activation for the observers."""
        acts = self.net(image)
        self._recent = (tuple(image.shape[-2:]), {t.name: t.select(acts).detach() for t in self.objective.terms})
        parts = self.objective.activations(acts)
        return {"loss": self.objective.total(parts), **{f"act/{name}": value for name, value in parts.items()}}

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


@dataclass
class DreamResult:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], on the CPU
    metrics: dict[str, Any] = field(default_factory=dict)


def validate(cfg: DreamConfig) -> None:
    """Refuse values Hydra's types let through but a dream cannot use."""
    checks = [
        (cfg.octaves >= 1, f"octaves must be at least 1, got {cfg.octaves}"),
        (cfg.steps >= 0, f"steps must be 0 or more, got {cfg.steps}"),
        (math.isfinite(cfg.step_size) and cfg.step_size > 0, f"step_size must be a positive number, got {cfg.step_size}"),
        (math.isfinite(cfg.octave_scale) and cfg.octave_scale > 1, f"octave_scale must be greater than 1, got {cfg.octave_scale}"),
        (cfg.jitter.max_shift >= 0, f"jitter.max_shift must be 0 or more px, got {cfg.jitter.max_shift}"),
        (cfg.log.image_every >= 0, f"log.image_every must be 0 (off) or a step count, got {cfg.log.image_every}"),
        (cfg.log.image_max_side is None or cfg.log.image_max_side >= 16,
         f"log.image_max_side must be at least 16 px (or null), got {cfg.log.image_max_side}"),
        (cfg.input.size is None or 1 <= cfg.input.size <= MAX_SIDE,
         f"input.size must be between 1 and {MAX_SIDE} px (or null), got {cfg.input.size}"),
        (cfg.guide.size is None or 1 <= cfg.guide.size <= MAX_SIDE,
         f"guide.size must be between 1 and {MAX_SIDE} px (or null), got {cfg.guide.size}"),
        (math.isfinite(cfg.gradient.smoothing) and cfg.gradient.smoothing >= 0,
         f"gradient.smoothing must be 0 (off) or a sigma in px, got {cfg.gradient.smoothing}"),
        (cfg.gradient.laplacian_levels >= 0,
         f"gradient.laplacian_levels must be 0 (off) or a level count, got {cfg.gradient.laplacian_levels}"),
    ]
    for ok, message in checks:
        if not ok:
            raise DreamError(message)
    if cfg.input.kind == InputKind.noise and cfg.input.size is None:
        raise DreamError("input=noise needs input.size (the side of the noise image in px)")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DreamError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DreamError(f"device={name} but CUDA is not available here: use device=auto or cpu")
    return device


def load_input(cfg: DreamConfig, generator: torch.Generator) -> torch.Tensor:
    """The input image as (1, 3, H, W) in [0, 1] on the CPU."""
    if cfg.input.kind == InputKind.noise:
        return noise(cfg.input.size, generator)
    if cfg.input.kind == InputKind.image:
        if not cfg.input.path:
            raise DreamError("input=image needs input.path=/path/to/image")
        image = load_image(cfg.input.path)
    else:
        image = sample_image()
    return to_tensor(resize_long_side(image, cfg.input.size))


def compile_target(cfg: DreamConfig) -> Objective:
    target = OmegaConf.to_container(cfg.target) if OmegaConf.is_config(cfg.target) else cfg.target
    return parse_target(target, list(cfg.model.layers), class_names(cfg.model.categories))


def build_dreamer(cfg: DreamConfig, objective: Objective, device: torch.device) -> Dreamer:
    model = build_model(cfg.model)
    net = feature_net(model, cfg.model, objective.layers).to(device)
    check_channels(objective, channel_counts(net, cfg.model.min_size, device))
    if cfg.guide.path:
        guide = to_tensor(resize_long_side(load_image(cfg.guide.path), cfg.guide.size))
        if min(guide.shape[-2:]) < cfg.model.min_size:
            raise DreamError(f"the guide image is {guide.shape[-1]}x{guide.shape[-2]} px, smaller than "
                             f"{cfg.model.name}'s {cfg.model.min_size} px: raise guide.size")
        with torch.no_grad():
            objective = guided(objective, net(guide.to(device)))
    if cfg.compile:
        log.warning("compile=true: the first steps compile the network, which takes minutes on a CPU")
    net.configure(channels_last=cfg.channels_last, compile=cfg.compile,
                  autocast_dtype=autocast_dtype(_name(cfg.precision), device))
    dreamer = Dreamer(net, objective, device)
    dreamer.tile_size = resolve_tile_size(cfg.tile.size, dreamer, device, cfg.model.min_size)
    return dreamer


def configured_gradient_filter(cfg: DreamConfig) -> Optional[GradientFilter]:
    return gradient_filter(smoothing=cfg.gradient.smoothing, luminance=cfg.gradient.luminance_only,
                           laplacian_levels=cfg.gradient.laplacian_levels)


def _name(value: Any) -> str:
    return value.value if isinstance(value, Enum) else str(value)


def prepare(cfg: DreamConfig, height: int, width: int) -> Dreamer:
    """Check everything about cfg that can be checked before dreaming, and build the dreamer."""
    validate(cfg)
    objective = compile_target(cfg)
    check_octaves(height, width, cfg.octaves, cfg.octave_scale, cfg.model.min_size)
    return build_dreamer(cfg, objective, setup_device(cfg))


def setup_device(cfg: DreamConfig) -> torch.device:
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # random weights (model.weights=null) depend on it
    return device


@contextmanager
def cudnn_autotuned(device: torch.device) -> Iterator[None]:
    """cudnn.benchmark on CUDA while the block runs (each octave's size is tuned once, then reused),
    then as it was: a notebook's other work keeps its own setting."""
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = previous or device.type == "cuda"
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def objective_gain(before: float, after: float) -> Optional[float]:
    """The objective after / before, or None where before is not positive: from a start at or below
    zero (class logits, negative weights) a ratio says nothing about how much the dream raised it."""
    return after / before if before > 0 and math.isfinite(after / before) else None


def run_dream(cfg: DreamConfig, image: torch.Tensor, observers: Sequence[Observer] = (),
              dreamer: Dreamer | None = None) -> DreamResult:
    """Dream on image (1, 3, H, W) in [0, 1] as cfg says; returns the dream and its metrics."""
    dreamer = dreamer or prepare(cfg, *image.shape[-2:])
    device = dreamer.device
    height, width = image.shape[-2:]
    generator = torch.Generator().manual_seed(cfg.seed)  # jitter shifts: CPU, so any device agrees

    image = image.to(device)
    before = dreamer.activations(image)
    start = time.perf_counter()
    with cudnn_autotuned(device):
        dreamed = engine.dream(
            image, dreamer,
            octaves=cfg.octaves, octave_scale=cfg.octave_scale, steps=cfg.steps,
            step_size=cfg.step_size, max_shift=cfg.jitter.max_shift,
            generator=generator, tile_size=dreamer.tile_size, observers=observers,
            gradient_filter=configured_gradient_filter(cfg),
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    after = dreamer.activations(dreamed)

    weights = {t.name: t.weight for t in dreamer.objective.terms}
    total_before = dreamer.objective.total(before)
    total_after = dreamer.objective.total(after)
    metrics = {
        "gain": objective_gain(total_before, total_after),
        "objective_before": total_before,
        "objective_after": total_after,
        "seconds": round(seconds, 3),
        "steps": cfg.octaves * cfg.steps,
        "device": str(device),
        "precision": str(dreamer.net.autocast_dtype or torch.float32).removeprefix("torch."),
        "tile_size": dreamer.tile_size,
        "model": cfg.model.name,
        "weights": cfg.model.weights,
        "guide": cfg.guide.path,
        "size": [width, height],
        "targets": {name: {"before": before[name], "after": after[name], "weight": weights[name]}
                    for name in before},
    }
    return DreamResult(dreamed.cpu(), metrics)


def at_full_size(dreamed: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """An octave's dream (1, 3, h, w) carried to image's full size the way the next octave would
    take it: its dreamed detail upscaled onto the full-size input."""
    detail = dreamed - resize(image, tuple(dreamed.shape[-2:]))
    return (image + resize(detail, tuple(image.shape[-2:]))).clamp(0.0, 1.0)


def _out_of_memory(error: Exception) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "can't allocate memory" in str(error)


def _memory_advice(last: LastStep, full_size: tuple[int, int], dreamer: Dreamer) -> str:
    """Which size ran out of memory, the largest that fit, and what to change."""
    if last.image is None:
        failed, fit = (last.sizes[0] if last.sizes else full_size), None
    else:
        fit = tuple(last.image.shape[-2:])
        octave_done = last.step == last.steps - 1 and last.octave + 1 < len(last.sizes)
        failed = last.sizes[last.octave + 1] if octave_done else fit
    where = f"dreaming a {failed[1]}x{failed[0]} px image on {dreamer.device}"
    if fit is not None and fit != failed:
        where += f" (the largest size that fit was {fit[1]}x{fit[0]} px)"
    tiles = f"smaller gradient tiles than {dreamer.tile_size} px" if dreamer.tile_size else "gradient tiles"
    return (f"out of memory {where}: use a smaller input.size, fewer octaves, or {tiles} "
            "(tile.size=512)")


def run_job(cfg: DreamConfig, run_dir: Path, progress: bool | None = None) -> DreamResult:
    """The whole job in a run dir: input.png, octave_<i>.png, dream.png, metrics.json, a TensorBoard run."""
    validate(cfg)
    image = load_input(cfg, torch.Generator().manual_seed(cfg.seed))
    dreamer = prepare(cfg, *image.shape[-2:])
    save_png(to_pil(image), run_dir / "input.png")
    last = LastStep()
    observers: list[Observer] = [ProgressBar(progress), OctaveImages(run_dir), last]
    board = None
    if cfg.log.tensorboard:
        board = TensorBoardLogger(
            # flushing costs a disk sync: every 10 s is live enough, and close() flushes the rest
            SummaryWriter(log_dir=str(run_dir), flush_secs=10), feature_maps=dreamer.feature_maps,
            recent_feature_maps=dreamer.recent_feature_maps,
            image_every=cfg.log.image_every, image_max_side=cfg.log.image_max_side,
            heatmaps=cfg.log.heatmaps, histograms=cfg.log.histograms)
        log_config(board.writer, cfg)
        board.log_image("dream/input", image, 0)
        observers.append(board)
    try:
        with logging_redirect_tqdm():  # log lines print above the progress bar, not through it
            result = run_dream(cfg, image, observers, dreamer)
        save_png(to_pil(result.image), run_dir / "dream.png")
        save_json(result.metrics, run_dir / "metrics.json")
        if board:
            board.log_image("dream/final", result.image, cfg.octaves * cfg.steps)
            log_hparams(board.writer, cfg, {name: result.metrics[name] for name in ("gain", "seconds")
                                            if result.metrics[name] is not None})
    except KeyboardInterrupt:
        if last.image is not None:
            save_png(to_pil(at_full_size(last.image.cpu(), image)), run_dir / INTERRUPTED_IMAGE)
            log.info("interrupted: the last finished step (octave %d, step %d) is in %s",
                     last.octave, last.step, INTERRUPTED_IMAGE)
        raise
    except engine.NonFiniteError as e:
        save_png(to_pil(e.image), run_dir / LAST_GOOD_IMAGE)
        raise DreamError(f"the objective became NaN or infinite at step {e.global_step} (octave {e.octave}), "
                         f"so the dream stopped; the last good image is in {LAST_GOOD_IMAGE}. Try precision=fp32 "
                         "or a smaller step_size; NaN weights (a damaged weights file) do this too") from None
    except (torch.OutOfMemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        raise DreamError(_memory_advice(last, tuple(image.shape[-2:]), dreamer)) from None
    finally:
        if board:
            board.close()  # a failed or interrupted run keeps what it logged
    gain = result.metrics["gain"]
    log.info("%s in %.1f s on %s (%s)", "gain n/a" if gain is None else f"gain {gain:.3g}x",
             result.metrics["seconds"], result.metrics["device"],
             ", ".join(f"{n}: {t['before']:.3g} -> {t['after']:.3g}" for n, t in result.metrics["targets"].items()))
    return result
