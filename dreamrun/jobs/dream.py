"""The dream job: one image dreamed over its octaves, and run_dream, the same dream without files.

    python -m dreamrun target=mixed_6 octaves=4

run_dream serves the Python API, the tests and the benchmarks; DreamJob is that dream on the job
skeleton (dreamrun.jobs.skeleton), with its files: input.png, octave_<i>.png, dream.png,
metrics.json and a TensorBoard run.
"""
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import torch

from dreamrun.config.schema import DreamConfig
from dreamrun.core import engine
from dreamrun.core.observers import LastStep, Observer
from dreamrun.core.octaves import check_octaves, resize
from dreamrun.jobs.dreamer import Dreamer, ascent, build_dreamer, compile_target, describe, transforms_of
from dreamrun.jobs.skeleton import JobKind, JobResult
from dreamrun.outputs.files import save_json, save_png
from dreamrun.outputs.images import to_pil
from dreamrun.outputs.octave_images import OctaveImages
from dreamrun.outputs.progress import ProgressBar
from dreamrun.outputs.run_files import OUTPUT_FILES
from dreamrun.outputs.tensorboard import TensorBoardLogger, flatten_hparams

log = logging.getLogger(__name__)


@dataclass
class DreamResult:
    image: torch.Tensor  # (1, 3, H, W) in [0, 1], on the CPU
    metrics: dict[str, Any] = field(default_factory=dict)


def prepare(cfg: DreamConfig, height: int, width: int, image: Optional[torch.Tensor] = None) -> Dreamer:
    """The dreamer for an image of this size (image: the image itself, which {strongest: K} targets need),
    once cfg is validated (skeleton.validate): the target compiled, the octaves checked against the size,
    then the network built (build_dreamer)."""
    objective = compile_target(cfg)
    check_octaves(height, width, cfg.octaves, cfg.octave_scale, cfg.model.min_size, max_side=cfg.input.size,
                  upscale=cfg.input.upscale)
    return build_dreamer(cfg, objective, image=image, long_side=max(height, width))


def objective_gain(before: float, after: float) -> Optional[float]:
    """The objective after / before, or None where before is not positive: from a start at or below
    zero (class logits, negative weights) a ratio says nothing about how much the dream raised it."""
    return after / before if before > 0 and math.isfinite(after / before) else None


def run_dream(cfg: DreamConfig, image: torch.Tensor, dreamer: Dreamer,
              observers: Sequence[Observer] = (), mask: Optional[torch.Tensor] = None) -> DreamResult:
    """Dream on image (1, 3, H, W) in [0, 1] as cfg says, with a dreamer prepared for it, where mask
    (1, 1, H, W; inputs.masks) lets it; returns the dream and its metrics. The caller sets the dreamer's CUDA backend flags around it (nets.backends: the
    skeleton does, and dream())."""
    about, climb = describe(cfg, dreamer), ascent(cfg, dreamer)
    device = dreamer.device
    height, width = image.shape[-2:]
    generator = torch.Generator().manual_seed(cfg.seed)  # jitter shifts: CPU, so any device agrees

    image = image.to(device)
    before = dreamer.activations(image)
    start = time.perf_counter()
    dreamed = engine.dream(image, dreamer, climb, generator=generator, observers=observers,
                           mask=None if mask is None else mask.to(device))
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
        **about,
        "guide": cfg.guide.path,
        "mask": cfg.mask.path,
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


class DreamJob(JobKind):
    """The whole dream in a run dir: input.png, octave_<i>.png, dream.png, metrics.json, a TensorBoard run."""

    board: Optional[TensorBoardLogger] = None
    label = ""  # before the job's lines, where they mix with other jobs' (dreaming together)

    def build(self, image: torch.Tensor) -> Dreamer:
        return self.dreamer(image)

    def load_input(self) -> torch.Tensor:
        cfg = self.cfg
        image = super().load_input()
        check_octaves(*image.shape[-2:], cfg.octaves, cfg.octave_scale, cfg.model.min_size, max_side=cfg.input.size,
                      upscale=cfg.input.upscale)
        return image

    def dreamer(self, image: torch.Tensor) -> Dreamer:
        """What the job dreams with: alone, a network of its own (dreaming together: a shared one)."""
        return build_dreamer(self.cfg, image=image)

    def observers(self, image, dreamer, writer):
        save_png(to_pil(image), self.run_dir / OUTPUT_FILES["input"])
        observers: list[Observer] = [ProgressBar(self.progress), OctaveImages(self.run_dir, self.recipe)]
        if writer is not None:
            logging_ = self.cfg.log
            self.board = TensorBoardLogger(
                writer, feature_maps=dreamer.feature_maps,
                # the last step's maps are of the image as the transforms moved it: not where the image is
                recent_feature_maps=None if transforms_of(self.cfg) else dreamer.recent_feature_maps,
                image_every=logging_.image_every, image_max_side=logging_.image_max_side,
                heatmaps=logging_.heatmaps, histograms=logging_.histograms, device=dreamer.device,
                hparams=flatten_hparams(self.cfg))
            self.board.log_image("dream/input", image, 0)
            observers.append(self.board)
        return observers

    def run(self, image, dreamer, observers):
        cfg = self.cfg
        result = run_dream(cfg, image, dreamer, observers, mask=self.mask)
        output = self.run_dir / OUTPUT_FILES["dream"]
        save_png(to_pil(result.image), output, self.recipe)
        save_json(result.metrics, self.run_dir / OUTPUT_FILES["metrics"])
        if self.board:
            self.board.log_final(result.image, cfg.octaves * cfg.steps,
                                 {name: result.metrics[name] for name in ("gain", "seconds")
                                  if result.metrics[name] is not None})
        gain = result.metrics["gain"]
        log.info("%s%s in %.1f s on %s (%s)", self.label, "gain n/a" if gain is None else f"gain {gain:.3g}x",
                 result.metrics["seconds"], result.metrics["device"],
                 ", ".join(f"{n}: {t['before']:.3g} -> {t['after']:.3g}"
                           for n, t in result.metrics["targets"].items()))
        return JobResult(output, result.metrics)

    def interrupted(self, image, last: LastStep):
        if last.image is not None:
            save_png(to_pil(at_full_size(last.image.cpu(), image)), self.run_dir / OUTPUT_FILES["interrupted"],
                     self.recipe)
            log.info("interrupted: the last finished step (octave %d, step %d) is in %s",
                     last.octave, last.step, OUTPUT_FILES["interrupted"])
