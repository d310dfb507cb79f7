"""One dream from a config: build the network, objective and input, run the engine, write results.

Shared by the CLI (dreamrun.cli), the Python API (dreamrun.dream) and the tests.
"""
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from omegaconf import OmegaConf

from dreamrun import engine
from dreamrun.errors import DreamError
from dreamrun.images import load_image, noise, resize_long_side, sample_image, save_json, save_png, to_pil, to_tensor
from dreamrun.models import FeatureNet, build_model, channel_counts, feature_net
from dreamrun.objectives import Objective, check_channels, parse_target
from dreamrun.observers import Observer, OctaveImages, ProgressBar
from dreamrun.octaves import check_octaves
from dreamrun.schema import DreamConfig, InputKind

log = logging.getLogger(__name__)

MAX_SIDE = 16384


@dataclass
class Dreamer:
    """A network cut at its target layers, with the objective compiled from the target dictionary."""

    net: FeatureNet
    objective: Objective
    device: torch.device

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return self.objective(self.net(image))

    @torch.no_grad()
    def activations(self, image: torch.Tensor) -> dict[str, float]:
        acts = self.objective.activations(self.net(image.to(self.device)))
        return {name: value.item() for name, value in acts.items()}


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
        (cfg.input.size is None or 1 <= cfg.input.size <= MAX_SIDE,
         f"input.size must be between 1 and {MAX_SIDE} px (or null), got {cfg.input.size}"),
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
    return parse_target(target, list(cfg.model.layers))


def build_dreamer(cfg: DreamConfig, objective: Objective, device: torch.device) -> Dreamer:
    model = build_model(cfg.model)
    net = feature_net(model, cfg.model, objective.layers).to(device)
    check_channels(objective, channel_counts(net, cfg.model.min_size, device))
    return Dreamer(net, objective, device)


def run_dream(cfg: DreamConfig, image: torch.Tensor, observers: Sequence[Observer] = ()) -> DreamResult:
    """Dream on image (1, 3, H, W) in [0, 1] as cfg says; returns the dream and its metrics."""
    validate(cfg)
    objective = compile_target(cfg)
    height, width = image.shape[-2:]
    check_octaves(height, width, cfg.octaves, cfg.octave_scale, cfg.model.min_size)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # random weights (model.weights=null) depend on it
    dreamer = build_dreamer(cfg, objective, device)
    generator = torch.Generator().manual_seed(cfg.seed)  # jitter shifts: CPU, so any device agrees

    image = image.to(device)
    before = dreamer.activations(image)
    start = time.perf_counter()
    dreamed = engine.dream(
        image, dreamer,
        octaves=cfg.octaves, octave_scale=cfg.octave_scale, steps=cfg.steps,
        step_size=cfg.step_size, max_shift=cfg.jitter.max_shift,
        generator=generator, observers=observers,
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    after = dreamer.activations(dreamed)

    weights = {t.name: t.weight for t in dreamer.objective.terms}
    total_before = sum(weights[n] * v for n, v in before.items())
    total_after = sum(weights[n] * v for n, v in after.items())
    metrics = {
        "gain": total_after / total_before if total_before else float("nan"),
        "objective_before": total_before,
        "objective_after": total_after,
        "seconds": round(seconds, 3),
        "steps": cfg.octaves * cfg.steps,
        "device": str(device),
        "model": cfg.model.name,
        "weights": cfg.model.weights,
        "size": [width, height],
        "targets": {name: {"before": before[name], "after": after[name], "weight": weights[name]}
                    for name in before},
    }
    return DreamResult(dreamed.cpu(), metrics)


def run_job(cfg: DreamConfig, run_dir: Path, progress: bool | None = None) -> Path:
    """The whole job in a run dir: input.png, octave_<i>.png, dream.png, metrics.json."""
    validate(cfg)
    image = load_input(cfg, torch.Generator().manual_seed(cfg.seed))
    save_png(to_pil(image), run_dir / "input.png")
    result = run_dream(cfg, image, observers=[ProgressBar(progress), OctaveImages(run_dir)])
    dream_path = run_dir / "dream.png"
    save_png(to_pil(result.image), dream_path)
    save_json({"status": "completed", **result.metrics}, run_dir / "metrics.json")
    log.info("gain %.3gx in %.1f s on %s (%s)", result.metrics["gain"], result.metrics["seconds"],
             result.metrics["device"], ", ".join(f"{n}: {t['before']:.3g} -> {t['after']:.3g}"
                                                 for n, t in result.metrics["targets"].items()))
    return dream_path
