"""TensorBoard logging, as an observer beside the engine.

One run per job, written into the job's run dir: per-step scalars (loss, each target's
activation, gradient norm, step time, octave and image size), images (input, progress, octave
ends, final), heat-maps and histograms of the target activations, the config and hparams.
"""
import io
import json
import time
from typing import Any, Callable, Mapping, Optional

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from dreamrun.config.keys import flatten_config
from dreamrun.core.engine import unroll
from dreamrun.core.observers import Observer
from dreamrun.outputs.heatmaps import heatmap
from dreamrun.outputs.images import to_pil

FeatureMaps = Callable[[torch.Tensor], Mapping[str, torch.Tensor]]  # image -> {target: (1, C, h, w)}
# the maps the objective computed at the last step, for an image of the given (H, W), else None
RecentFeatureMaps = Callable[[tuple[int, int]], Optional[Mapping[str, torch.Tensor]]]

HISTOGRAM_BINS = 64

LAYOUT = {
    "dream": {
        "objective": ["Multiline", ["dream/loss"]],
        "target activations": ["Multiline", [r"act/.*"]],
        "gradient norm (before normalisation)": ["Multiline", ["dream/grad_norm"]],
        "seconds per step": ["Multiline", ["dream/step_seconds"]],
    },
    "pyramid": {
        "octave": ["Multiline", ["dream/octave"]],
        "image size (px)": ["Multiline", ["dream/height", "dream/width"]],
    },
}


class StepClock:
    """Marks between which a step ran, and the seconds between two of them: on CUDA the GPU's own time
    (events it records as it reaches them: the host only queues the work), elsewhere the host's clock."""

    def __init__(self, device: torch.device = torch.device("cpu")):
        self.device = device
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(self.device))  # the job's card, which need not be the current one
        return event

    def seconds(self, start: Any, end: Any) -> float:
        if not self.cuda:
            return end - start
        end.synchronize()
        return start.elapsed_time(end) / 1000


class TensorBoardLogger(Observer):
    def __init__(self, writer: SummaryWriter, *, feature_maps: Optional[FeatureMaps] = None,
                 recent_feature_maps: Optional[RecentFeatureMaps] = None,
                 image_every: int = 0, image_max_side: Optional[int] = None,
                 heatmaps: bool = True, histograms: bool = True, device: torch.device = torch.device("cpu"),
                 hparams: Optional[Mapping[str, Any]] = None):
        """hparams: the run's settings for the HParams dashboard (flatten_hparams), logged with its
        final metrics by log_final."""
        self.writer = writer
        self.hparams = hparams
        self.feature_maps = feature_maps
        self.recent_feature_maps = recent_feature_maps
        self.last_shift = (0, 0)
        self.image_every = image_every
        self.image_max_side = image_max_side
        self.heatmaps = heatmaps
        self.histograms = histograms
        self.pending: list[tuple[int, dict[str, torch.Tensor], dict[str, float], tuple]] = []
        self.sizes: list[tuple[int, int]] = []
        self.steps = 0
        self.clock = StepClock(device)
        self.step_start = self.clock.mark()

    def on_dream_start(self, *, sizes, steps):
        self.sizes = sizes
        self.steps = steps
        self.writer.add_custom_scalars(LAYOUT)
        self.step_start = self.clock.mark()

    def on_step(self, *, octave, step, global_step, values, image, shift):
        step_marks = (self.step_start, self.clock.mark())
        self.last_shift = shift
        height, width = self.sizes[octave]
        tensors = {
            "dream/loss": values["loss"],
            "dream/grad_norm": values["grad_norm"],
            **{name: value for name, value in values.items() if name.startswith("act/")},
        }
        numbers = {"dream/octave": octave, "dream/height": height, "dream/width": width}
        # tensors and CUDA events stay on the device until the octave ends: no GPU sync inside the step loop
        self.pending.append((global_step, tensors, numbers, step_marks))
        last_of_octave = step == self.steps - 1  # logged as dream/octave_end instead
        if self.image_every and (global_step + 1) % self.image_every == 0 and not last_of_octave:
            self.log_image("dream/progress", image, global_step)
        self.step_start = self.clock.mark()  # the logging above is not the step's time

    def on_octave_end(self, *, octave, global_step, image):
        self.write_pending()
        step = global_step - 1  # the octave's last step
        self.log_image("dream/octave_end", image, step)
        if self.feature_maps and (self.heatmaps or self.histograms):
            for name, (activation, shift) in self.octave_end_maps(image).items():
                if self.heatmaps and activation.dim() == 4:  # logits have no map to show
                    colours = unroll(heatmap(activation, image.shape[-2:])[None], shift)  # (1, 3, H, W)
                    self.log_image(f"heatmap/{name}", colours, step)
                if self.histograms:
                    log_histogram(self.writer, f"hist/{name}", activation, step)
        self.step_start = self.clock.mark()

    def octave_end_maps(self, image: torch.Tensor) -> dict[str, tuple[torch.Tensor, tuple[int, int]]]:
        """Each target's activation map with the roll it was seen under.

        The objective's own maps from the octave's last step cost nothing; they saw the image one
        step earlier, rolled. Only where there are none (tiled steps) does the network run again.
        """
        recent = self.recent_feature_maps(tuple(image.shape[-2:])) if self.recent_feature_maps else None
        if recent is not None:
            return {name: (maps, self.last_shift) for name, maps in recent.items()}
        return {name: (maps, (0, 0)) for name, maps in self.feature_maps(image).items()}

    def on_dream_end(self, *, image):
        self.write_pending()

    def close(self) -> None:
        """Write what is still buffered and close the run: also after a failure or Ctrl-C."""
        self.write_pending()
        self.writer.close()

    def write_pending(self) -> None:
        if not self.pending:
            return
        steps = [step for step, _, _, _ in self.pending]
        for name in self.pending[0][1]:
            column = torch.stack([tensors[name].float() for _, tensors, _, _ in self.pending]).tolist()
            for step, value in zip(steps, column):
                self.writer.add_scalar(name, value, step)
        for step, _, numbers, (start, end) in self.pending:
            for name, value in {"dream/step_seconds": self.clock.seconds(start, end), **numbers}.items():
                self.writer.add_scalar(name, value, step)
        self.pending.clear()

    def log_image(self, tag: str, image: torch.Tensor, step: int) -> None:
        """image (1, 3, H, W) in [0, 1], shrunk to image_max_side."""
        log_image(self.writer, tag, shrink(image.detach(), self.image_max_side), step)

    def log_final(self, image: torch.Tensor, step: int, metrics: Mapping[str, float]) -> None:
        """The dream as it ended, and the run's hparams with its final metrics."""
        self.log_image("dream/final", image, step)
        if self.hparams is not None:
            log_hparams(self.writer, self.hparams, metrics)


def log_image(writer: SummaryWriter, tag: str, image: torch.Tensor, step: int) -> None:
    """Like add_image, but JPEG (quality 95) instead of PNG: many times faster to encode, and a
    quarter of the bytes (benchmarks/README.md). The lossless images are the run dir's PNGs."""
    pil = to_pil(image)
    encoded = io.BytesIO()
    pil.save(encoded, format="JPEG", quality=95)
    log_encoded_image(writer, tag, encoded.getvalue(), pil.size, step)


def log_encoded_image(writer: SummaryWriter, tag: str, data: bytes, size: tuple[int, int], step: int) -> None:
    """An already encoded image (JPEG, PNG, or an animated GIF: TensorBoard shows it moving, which
    add_video only manages with moviepy 1.x installed)."""
    summary = Summary(value=[Summary.Value(tag=tag, image=Summary.Image(
        height=size[1], width=size[0], colorspace=3, encoded_image_string=data))])
    writer._get_file_writer().add_summary(summary, step)


class FramesTensorBoardLogger(Observer):
    """A zoom's or a video's TensorBoard run: per frame the loss and each target's activation at the
    frame's last step (a video's also its optical flow), and every log_every frames the frame itself.
    Tags start with the kind: zoom/loss, video/flow_px, video/frame."""

    def __init__(self, writer: SummaryWriter, kind: str, *, log_every: int = 10,
                 image_max_side: Optional[int] = None):
        self.writer = writer
        self.kind = kind
        self.log_every = log_every
        self.image_max_side = image_max_side
        self.last_values: Mapping[str, torch.Tensor] = {}

    def on_step(self, *, octave, step, global_step, values, image, shift):
        self.last_values = values

    def on_frame_settings(self, *, frame, values):
        for name, value in values.items():
            self.writer.add_scalar(f"{self.kind}/keyframes/{name}", value, frame)

    def on_flow(self, *, frame, magnitude, occluded):
        self.writer.add_scalar(f"{self.kind}/flow_px", magnitude, frame)
        self.writer.add_scalar(f"{self.kind}/occluded", occluded, frame)

    def on_frame(self, *, frame, image, rng_state):
        for name, value in self.last_values.items():
            if name == "loss" or name.startswith("act/"):
                self.writer.add_scalar(f"{self.kind}/loss" if name == "loss" else name, value.item(), frame)
        if self.log_every and frame % self.log_every == 0:
            log_image(self.writer, f"{self.kind}/frame", shrink(image, self.image_max_side), frame)

    def close(self) -> None:
        self.writer.close()


def shrink(image: torch.Tensor, max_side: Optional[int]) -> torch.Tensor:
    """(1, 3, H, W) scaled down so its long side is at most max_side (None: as it is)."""
    height, width = image.shape[-2:]
    if not max_side or max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=True)


def log_histogram(writer: SummaryWriter, tag: str, values: torch.Tensor, step: int) -> None:
    """Like add_histogram, counted with torch.histc where the values are (add_histogram's NumPy path
    and its ~1500 "tensorflow" buckets were a noticeable share of a default CPU run)."""
    values = values.detach().float().flatten()
    low, high = values.min().item(), values.max().item()
    high = max(high, low + 1e-6)
    counts = torch.histc(values, bins=HISTOGRAM_BINS, min=low, max=high)
    limits = torch.linspace(low, high, HISTOGRAM_BINS + 1)[1:]
    proto = HistogramProto(min=low, max=high, num=values.numel(), sum=values.sum().item(),
                           sum_squares=values.pow(2).sum().item(),
                           bucket_limit=limits.tolist(), bucket=counts.tolist())
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, histo=proto)]), step)


def log_config(writer: SummaryWriter, cfg: DictConfig) -> None:
    text = OmegaConf.to_yaml(cfg, resolve=True)
    writer.add_text("config", "\n".join("    " + line for line in text.splitlines()))  # markdown code block


def log_picked_channels(writer: SummaryWriter, picked: Mapping[str, Mapping[str, Any]]) -> None:
    """The channels {strongest: K} targets picked on the input, as the overrides that name them."""
    lines = [f"    'target.{layer}=[{','.join(map(str, pick['channels']))}]'" for layer, pick in picked.items()]
    writer.add_text("target/picked_channels", "\n".join(lines))


def flatten_hparams(cfg: DictConfig) -> dict[str, Any]:
    """Config values TensorBoard's HParams dashboard can compare: scalars by dotted key."""
    skip = {"model.layers", "model.mean", "model.std", "model.kwargs"}  # preset data, not choices
    # the target dictionary, lists and None as compact text
    return {key: value if isinstance(value, (bool, int, float, str)) else json.dumps(value)
            for key, value in flatten_config(cfg, skip).items()}


def log_hparams(writer: SummaryWriter, settings: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
    """hparams (settings: flatten_hparams) in this run itself (add_hparams would make a sub-run, splitting a
    sweep's jobs)."""
    metric_values = {f"hparams/{name}": float(value) for name, value in metrics.items()}
    for summary in hparams(dict(settings), metric_values):
        writer._get_file_writer().add_summary(summary)
    for tag, value in metric_values.items():
        writer.add_scalar(tag, value)
    writer.flush()
