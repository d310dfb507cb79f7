"""One job's life, the same for every job kind:

    validate → input → network → observers → run → results, then result.json however it ended

with what goes wrong mapped to one line (DreamError): a NaN objective, running out of memory.
Ctrl-C and SIGTERM stop the job cleanly (dreamrun.jobs.interrupts) and come out as KeyboardInterrupt.

A job kind (dreamrun.jobs.dream, .zoom, .video) subclasses JobKind and supplies only what differs: its
own checks, its input, its network, its observers and its loop. A job is an object of its kind, made for
one config and run dir, that keeps what it learns between the hooks; the skeleton validates its config
once, then calls the hooks in order.
"""
import logging
import math
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter
from tqdm import TqdmWarning

with warnings.catch_warnings():  # tqdm.contrib imports tqdm.auto, which warns in a notebook without ipywidgets
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.contrib.logging import logging_redirect_tqdm

from dreamrun.config.schema import DreamConfig, InputKind, Mode, Param
from dreamrun.core.engine import NonFiniteError
from dreamrun.core.observers import LastStep, Observer
from dreamrun.core.parameterisations import fourier_noise
from dreamrun.core.tiles import NEVER_TILE
from dreamrun.errors import DreamError
from dreamrun.inputs.images import fit_long_side, load_image, noise, sample_image, size_note, to_tensor
from dreamrun.inputs.masks import load_mask
from dreamrun.jobs import interrupts
from dreamrun.jobs.claim import claim, release
from dreamrun.jobs.dreamer import Dreamer, transforms_of
from dreamrun.jobs.record import COMPLETED, FAILED, INTERRUPTED, JobRecord
from dreamrun.nets.backends import backend_settings
from dreamrun.outputs.files import disk_error, save_png
from dreamrun.outputs.images import to_pil
from dreamrun.outputs.recipe import recipe_of
from dreamrun.outputs.run_files import OUTPUT_FILES
from dreamrun.outputs.tensorboard import log_config, log_picked_channels

log = logging.getLogger(__name__)

MAX_SIDE = 16384


@dataclass
class JobResult:
    output: Path  # the file the job made for the user: dream.png, zoom.gif
    metrics: dict[str, Any] = field(default_factory=dict)


class JobKind:
    """One job of a kind, in its run dir. The skeleton calls these in order; override what differs."""

    def __init__(self, cfg: DreamConfig, run_dir: Path, progress: Optional[bool] = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.progress = progress  # progress bars: None draws them when stderr is a terminal
        self.input_note = ""  # how the input's size was set (resized, or kept though small): said once it dreams
        self.mask: Optional[torch.Tensor] = None  # (1, 1, H, W): where it may dream (mask.path), once the input loads
        self.recipe: dict[str, str] = {}  # the PNG text chunks that remake its dream (outputs.recipe), once built

    def validate(self) -> None:
        """Refuse what this kind cannot do, beyond the checks every job makes."""

    def load_input(self) -> torch.Tensor:
        """The image to start from, (1, 3, H, W) in [0, 1] on the CPU; input_note says how its size was set."""
        image, self.input_note = _input_image(self.cfg, torch.Generator().manual_seed(self.cfg.seed))
        self.mask = load_mask(self.cfg.mask, tuple(image.shape[-2:]))
        return image

    def build(self, image: torch.Tensor) -> Dreamer:
        raise NotImplementedError

    def observers(self, image: torch.Tensor, dreamer: Dreamer, writer: Optional[SummaryWriter]) -> list[Observer]:
        """Progress bars, file writers, and the TensorBoard logger on writer (None: log=none)."""
        return []

    def run(self, image: torch.Tensor, dreamer: Dreamer, observers: Sequence[Observer]) -> JobResult:
        """The loop, then the results in the run dir."""
        raise NotImplementedError

    def interrupted(self, image: torch.Tensor, last: LastStep) -> None:
        """Ctrl-C or SIGTERM stopped the loop: keep what is worth keeping."""


def run_job(job: JobKind, *, overrides: Sequence[str] = ()) -> JobResult:
    """The job in its run dir, claimed for it (jobs.claim: the CLI claims it earlier, before Hydra writes
    there), its outcome in result.json. Raises DreamError for what the user can fix, KeyboardInterrupt
    (interrupts.Terminated for SIGTERM) when stopped; anything else is a bug."""
    cfg = job.cfg
    claim(job.run_dir, overwrite=cfg.overwrite, resume=cfg.resume, overrides=overrides)
    record = JobRecord(overrides=list(overrides))
    status, error, metrics = FAILED, None, None
    try:
        with interrupts.handled():
            result = _live(job, overrides)
        status, metrics = COMPLETED, result.metrics
        return result
    except DreamError as e:
        error = str(e)
        raise
    except KeyboardInterrupt as e:
        status, error = INTERRUPTED, interrupts.reason(e)
        raise
    except OSError as e:
        full = disk_error(e, job.run_dir)  # a writer of files not our own (TensorBoard's) met a full disk
        error = str(full) if full else f"{type(e).__name__}: {e}"
        if full:
            raise full from None
        raise
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        raise
    finally:
        try:
            record.finish(job.run_dir, status, error=error, metrics=metrics)
        except DreamError as e:  # a full disk, say
            if status == COMPLETED:
                raise
            log.error("dreamrun: the outcome could not be recorded in result.json: %s", e)  # the error goes on
        finally:
            release(job.run_dir)


def _live(job: JobKind, overrides: Sequence[str]) -> JobResult:
    cfg = job.cfg
    validate(cfg)
    job.validate()
    image = job.load_input()
    dreamer = job.build(image)
    job.recipe = recipe_of(cfg, overrides, str(dreamer.device)).png_text()
    if job.input_note:  # here, not as the input loads: a run refused before it dreams says one line only
        log.info(job.input_note)
    last = LastStep()
    with ExitStack() as stack:
        writer = None
        if cfg.log.tensorboard:
            # flushing costs a disk sync: every 10 s is live enough, and closing flushes the rest
            writer = stack.enter_context(SummaryWriter(log_dir=str(job.run_dir), flush_secs=10))
            log_config(writer, cfg)
            if picked := dreamer.objective.picked():
                log_picked_channels(writer, picked)
        observers = [last, *job.observers(image, dreamer, writer)]
        for observer in observers:
            stack.callback(observer.close)  # a failed or interrupted run keeps what it logged
        try:
            with logging_redirect_tqdm(), backend_settings(dreamer.backends):  # log lines print above the bar
                return job.run(image, dreamer, observers)
        except KeyboardInterrupt:
            job.interrupted(image, last)
            raise
        except NonFiniteError as e:
            save_png(to_pil(e.image), job.run_dir / OUTPUT_FILES["last_good"])
            raise DreamError(f"the objective became NaN or infinite at step {e.global_step} (octave {e.octave}), "
                             f"so the dream stopped; the last good image is in {OUTPUT_FILES['last_good']}. Try "
                             "precision=fp32 or a smaller step_size; NaN weights (a damaged weights file) do "
                             "this too") from None
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not _out_of_memory(e):
                raise
            raise DreamError(_memory_advice(last, tuple(image.shape[-2:]), dreamer)) from None


def validate(cfg: DreamConfig) -> None:
    """Refuse values Hydra's types let through but no job can use."""
    checks = [
        (cfg.octaves >= 1, f"octaves must be at least 1, got {cfg.octaves}"),
        (cfg.steps >= 0, f"steps must be 0 or more, got {cfg.steps}"),
        (math.isfinite(cfg.octave_scale) and cfg.octave_scale > 1, f"octave_scale must be greater than 1, got {cfg.octave_scale}"),
        (cfg.jitter.max_shift >= 0, f"jitter.max_shift must be 0 or more px, got {cfg.jitter.max_shift}"),
        (cfg.log.image_every >= 0, f"log.image_every must be 0 (off) or a step count, got {cfg.log.image_every}"),
        (cfg.log.image_max_side is None or cfg.log.image_max_side >= 16,
         f"log.image_max_side must be at least 16 px (or null), got {cfg.log.image_max_side}"),
        (cfg.input.size is None or 1 <= cfg.input.size <= MAX_SIDE,
         f"input.size must be between 1 and {MAX_SIDE} px (or null), got {cfg.input.size}"),
        (cfg.guide.size is None or 1 <= cfg.guide.size <= MAX_SIDE,
         f"guide.size must be between 1 and {MAX_SIDE} px (or null), got {cfg.guide.size}"),
        (math.isfinite(cfg.mask.feather) and cfg.mask.feather >= 0,
         f"mask.feather must be 0 (a hard edge) or more px, got {cfg.mask.feather}"),
        (math.isfinite(cfg.gradient.smoothing) and cfg.gradient.smoothing >= 0,
         f"gradient.smoothing must be 0 (off) or a sigma in px, got {cfg.gradient.smoothing}"),
        (cfg.gradient.laplacian_levels >= 0,
         f"gradient.laplacian_levels must be 0 (off) or a level count, got {cfg.gradient.laplacian_levels}"),
        (-2**63 <= cfg.seed < 2**64, f"seed must be between -2**63 and 2**64 - 1 (torch's range), got {cfg.seed}"),
        (cfg.model.min_size >= 1, f"model.min_size must be at least 1 px, got {cfg.model.min_size}"),
        (len(cfg.model.mean) == 3, f"model.mean must hold 3 values (R, G, B), got {list(cfg.model.mean)}"),
        (len(cfg.model.std) == 3 and all(s > 0 for s in cfg.model.std),
         f"model.std must hold 3 positive values (R, G, B), got {list(cfg.model.std)}"),
    ]
    for ok, message in checks:
        if not ok:
            raise DreamError(message)
    _check_step_size(cfg)
    if cfg.input.kind == InputKind.video and cfg.mode != Mode.video:
        raise DreamError(f"input=video is dreamed frame by frame with mode=video, not mode={cfg.mode.value}: "
                         "add mode=video")
    if cfg.seamless and cfg.mode != Mode.dream:
        raise DreamError(f"seamless=true makes one tileable dream (mode=dream); a {cfg.mode.value}'s frames are not "
                         "tiles: drop seamless=true")
    if cfg.seamless and cfg.compile:
        raise DreamError("seamless=true wraps the network's padding as it runs, which torch.compile does not see: "
                         "use compile=false")
    if cfg.seamless and cfg.tile.size not in (*NEVER_TILE, "auto"):
        raise DreamError(f"seamless=true dreams the whole image on a torus, which tile.size={cfg.tile.size} would "
                         "cut into tiles: use tile.size=auto or null")
    if cfg.input.kind == InputKind.noise and cfg.input.size is None:
        raise DreamError("input=noise needs input.size (the side of the noise image in px)")
    _check_parameterisation(cfg)


def _check_parameterisation(cfg: DreamConfig) -> None:
    """param and transforms: the combinations they cannot serve, each refused in one line."""
    transforms = transforms_of(cfg)  # a wrong one is refused here
    if cfg.seamless and transforms:
        raise DreamError("seamless=true shows the network the image on a torus, which the transforms' padding, "
                         "turns and zooms would cut open: use transforms=none")
    if cfg.param != Param.fft:
        return
    if cfg.mode != Mode.dream:
        raise DreamError(f"param=fft makes one image from its spectrum; a {cfg.mode.value}'s frames are made by "
                         "moving pixels: use param=pixel")
    if cfg.octaves != 1:
        raise DreamError(f"param=fft climbs every scale of the image at once, in one octave: use octaves=1 "
                         f"(not {cfg.octaves})")
    if cfg.mask.path:
        raise DreamError("param=fft changes every pixel through the spectrum, so a mask could keep none exactly: "
                         "use param=pixel with mask.path")


def _check_step_size(cfg: DreamConfig) -> None:
    """A dream takes one positive step_size; a zoom or a video may also take keyframes (jobs.frame_plan
    checks those), as may its target weights."""
    keyframed = [key for key, value in [("step_size", cfg.step_size), *_target_weights(cfg)] if OmegaConf.is_dict(value)]
    if keyframed and cfg.mode == Mode.dream:
        raise DreamError(f"{keyframed[0]}: keyframes {{frame: value}} change a setting over a zoom's or a video's "
                         f"frames (mode=zoom or mode=video); a dream takes one value")
    step = cfg.step_size
    if not OmegaConf.is_dict(step) and not (isinstance(step, (int, float)) and not isinstance(step, bool)
                                            and math.isfinite(step) and step > 0):
        raise DreamError(f"step_size must be a positive number, got {step}")


def _target_weights(cfg: DreamConfig) -> list[tuple[str, Any]]:
    return [(f"target.{layer}.weight", spec.get("weight")) for layer, spec in (cfg.target or {}).items()
            if OmegaConf.is_dict(spec)]


def load_input(cfg: DreamConfig, generator: torch.Generator) -> torch.Tensor:
    """The input image as (1, 3, H, W) in [0, 1] on the CPU. A path means that image, with or without
    input=image: only input=noise, which makes its own, refuses one."""
    return _input_image(cfg, generator)[0]


def _input_image(cfg: DreamConfig, generator: torch.Generator) -> tuple[torch.Tensor, str]:
    """load_input's image, and the line that says how its size was set (empty for noise)."""
    if cfg.input.kind == InputKind.noise:
        if cfg.input.path:
            raise DreamError(f"input=noise makes its own image, so input.path={cfg.input.path} would be "
                             "ignored: drop input.path, or dream on it with input=image")
        make_noise = fourier_noise if cfg.param == Param.fft else noise  # where each space starts from nothing
        return make_noise(cfg.input.size, generator), ""
    if cfg.input.path:
        image = load_image(cfg.input.path)
    elif cfg.input.kind == InputKind.image:
        raise DreamError("input=image needs input.path=/path/to/image")
    else:
        image = sample_image()
    fitted = fit_long_side(image, cfg.input.size, cfg.input.upscale)
    return to_tensor(fitted), size_note(image.size, fitted.size, cfg.input.size)


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
