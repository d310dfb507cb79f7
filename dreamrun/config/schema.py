"""The typed schema of dreamrun's config: the one place that says which keys exist.

Hydra merges every YAML in conf/ onto these dataclasses, so a misspelt key or a value of
the wrong type is refused with Hydra's own message before any work starts.
"""
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass
class ModelConfig:
    name: str = MISSING
    arch: Optional[str] = None  # a torchvision.models builder name, or one of dreamrun.nets.build.BUILDERS
    # or, for your own network: the import path of a function that builds it (mypkg.nets.build)
    _target_: Optional[str] = None
    weights: Optional[str] = None  # weights name, path to a state-dict file, or None (random)
    kwargs: Dict[str, Any] = field(default_factory=dict)  # passed to the builder
    mean: List[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: List[float] = field(default_factory=lambda: list(IMAGENET_STD))
    min_size: int = 32  # smallest input side the network accepts
    layers: Dict[str, str] = field(default_factory=dict)  # target name -> module path
    categories: Optional[str] = None  # "imagenet": the class names {classes: [...]} targets may use
    # padded convolutions, so a tile's feature maps are the image's cut at the tile and tiles give the
    # untiled gradient; false (Inception-v3's unpadded ones): tile.size=auto does not tile
    tileable: bool = True


class InputKind(Enum):
    sample = "sample"
    image = "image"
    noise = "noise"
    video = "video"  # a video file, frame by frame: mode=video


@dataclass
class InputConfig:
    kind: InputKind = InputKind.sample
    path: Optional[str] = None
    size: Optional[int] = 512  # the long side's maximum in px (noise: size x size); None keeps the image's size
    upscale: bool = False  # enlarge an image (or video) smaller than size to it, too


@dataclass
class JitterConfig:
    max_shift: int = 32


class Precision(Enum):
    auto = "auto"  # bf16 on CUDA cards from Ampere on and on CPUs with fast bf16 (AVX512-BF16, AMX), else fp32
    fp32 = "fp32"  # true fp32, on CUDA too (no TF32)
    tf32 = "tf32"  # fp32 whose CUDA convolutions and matmuls run on TF32 tensor cores (on the CPU: fp32)
    bf16 = "bf16"
    fp16 = "fp16"


@dataclass
class TileConfig:
    # "auto": tiles sized from the free memory; null: never tile; N: tiles of at most N x N px
    size: Any = "auto"


@dataclass
class GuideConfig:
    path: Optional[str] = None  # a guide image: the dream maximises its match with the guide's features
    size: Optional[int] = 224  # long side of the guide in px; None keeps its size


@dataclass
class MaskConfig:
    path: Optional[str] = None  # white = dream, black = keep, grey = partly; any size, resized to the input
    feather: float = 0.0  # px of soft edge (a Gaussian blur of the mask, sigma = feather / 2)
    invert: bool = False  # black = dream, white = keep


@dataclass
class GradientConfig:
    smoothing: float = 0.0  # sigma in px of a Gaussian cascade over the gradient; 0 = off
    laplacian_levels: int = 0  # Laplacian-pyramid normalisation of the gradient over N levels; 0 = off
    luminance_only: bool = False  # dream in luminance only, keeping the input's colours


@dataclass
class LogConfig:
    tensorboard: bool = True  # a TensorBoard run in every run dir
    image_every: int = 25  # steps between progress images in TensorBoard; 0 = octave ends only
    image_max_side: Optional[int] = None  # shrink logged images to this long side
    heatmaps: bool = True  # per-target activation heat-maps at each octave end
    histograms: bool = True  # per-target activation histograms at each octave end


class Mode(Enum):
    dream = "dream"  # one dream of the input
    zoom = "zoom"  # frames: dream, zoom in, dream again (see ZoomConfig)
    video = "video"  # a video file dreamed frame by frame, the dream carried along the motion (see VideoConfig)


class Param(Enum):
    pixel = "pixel"  # the image's pixels, by normalised gradient steps
    fft = "fft"  # a 1/frequency-scaled, colour-decorrelated spectrum, by Adam (core.parameterisations)


class Reduction(Enum):  # core.objectives.REDUCTIONS
    mean_square = "mean_square"  # DeepDream's L2 objective, per element
    l2 = "l2"
    mean = "mean"  # Lucid's channel objective


class AnimationFormat(Enum):
    gif = "gif"
    webp = "webp"


class Easing(Enum):
    linear = "linear"
    smooth = "smooth"


@dataclass
class ZoomConfig:
    frames: int = 60
    # these four take a number, or keyframes {frame: value, ...} interpolated between (core.keyframes)
    steps_per_frame: Any = 5
    factor: Any = 0.02  # the part of each side cropped away per frame, then resampled back up
    rotation: Any = 0.0  # degrees per frame, counter-clockwise
    shift: Any = None  # [x, y]: px the view moves per frame (null: it stays centred)
    easing: Easing = Easing.linear  # between keyframes: linear, or smooth (each segment starts and ends at rest)
    octaves: int = 1  # octaves per frame
    fps: float = 15.0
    animation: AnimationFormat = AnimationFormat.gif  # zoom.gif or zoom.webp; zoom.mp4 too where ffmpeg is
    # optional schedule: target dictionaries taken in turn, frames_per_target frames each (empty: `target`)
    targets: List[Any] = field(default_factory=list)
    frames_per_target: int = 10
    log_every: int = 10  # frames between frame images in TensorBoard


class FlowMethod(Enum):
    dis = "dis"  # OpenCV's Dense Inverse Search: fast, sharp at motion edges
    farneback = "farneback"  # OpenCV's Farneback: smoother, slower


@dataclass
class VideoConfig:
    max_frames: Optional[int] = None  # dream at most this many frames (after `every`); None: all
    every: int = 1  # take every n-th frame of the input (dream.mp4 plays at the input's fps / every)
    steps_per_frame: Any = 5  # frame 0 is a normal dream (octaves x steps); each next frame takes these (or keyframes)
    octaves: int = 2  # octaves per frame after the first
    blend: float = 0.9  # how much of the previous dream a frame starts from (0: independent frames)
    hold: float = 0.5  # where the previous dream was carried, the part of its new steps a frame holds back
    flow: bool = True  # carry the previous dream along the optical flow (false: a plain blend in place)
    flow_method: FlowMethod = FlowMethod.dis
    easing: Easing = Easing.linear  # between keyframes of step_size, steps_per_frame and target weights
    log_every: int = 10  # frames between frame images in TensorBoard


@dataclass
class DreamConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    # layer -> "all" | [channel, ...] | {channels: "all" | [...], weight: float, reduction: str}
    # logits -> {classes: [index or name, ...], weight: float}
    target: Dict[str, Any] = field(default_factory=dict)
    guide: GuideConfig = field(default_factory=GuideConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    gradient: GradientConfig = field(default_factory=GradientConfig)
    jitter: JitterConfig = field(default_factory=JitterConfig)
    input: InputConfig = field(default_factory=InputConfig)
    log: LogConfig = field(default_factory=LogConfig)
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10
    step_size: Any = 0.01  # a number; for a zoom or a video also keyframes {frame: value, ...}
    seed: int = 0
    device: str = "auto"
    precision: Precision = Precision.auto
    channels_last: bool = True
    compile: bool = False  # torch.compile the network: faster steps after minutes of compiling on CPU
    seamless: bool = False  # a dream that tiles: the network sees the image on a torus (nets.torus)
    param: Param = Param.pixel  # the space the dream climbs in: pixel, or fft (feature visualisation)
    transforms: Any = "none"  # moves the network sees the image through each step: none, lucid, or a list
    reduction: Reduction = Reduction.mean_square  # how a target reduces its activation where it names none
    tile: TileConfig = field(default_factory=TileConfig)
    mode: Mode = Mode.dream
    zoom: ZoomConfig = field(default_factory=ZoomConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    resume: bool = False  # zoom, video: continue the run in hydra.run.dir after its last saved frame
    overwrite: bool = False  # replace the results of an earlier run in the same hydra.run.dir


@dataclass
class BatchedLauncherConfig:
    """hydra/launcher=batched (conf/hydra/launcher/batched.yaml): typed, so exact=maybe is refused."""

    _target_: str = "hydra_plugins.dreamrun_launchers.batched.BatchedLauncher"
    exact: bool = True


@dataclass
class SlurmLauncherConfig:
    """hydra/launcher=slurm (conf/hydra/launcher/slurm.yaml): one SLURM job array per sweep, through submitit.
    The sbatch options are submitit's parameters (slurm_<name>); the first group is submitit's own."""

    _target_: str = "hydra_plugins.dreamrun_launchers.slurm.SlurmLauncher"
    submitit_folder: str = "${hydra.sweep.dir}/.submitit/%j"  # sbatch scripts and each job's stdout/stderr
    # submitit's parameters for every cluster
    name: str = "${hydra.job.name}"
    timeout_min: int = 60
    cpus_per_task: Optional[int] = 8
    gpus_per_node: Optional[int] = None
    tasks_per_node: int = 1
    mem_gb: Optional[int] = 32
    nodes: int = 1
    stderr_to_stdout: bool = False
    # SLURM's own (sbatch --partition, ...)
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    comment: Optional[str] = None
    constraint: Optional[str] = None
    exclude: Optional[str] = None
    gres: Optional[str] = None
    cpus_per_gpu: Optional[int] = None
    gpus_per_task: Optional[int] = 1
    mem_per_gpu: Optional[str] = None
    mem_per_cpu: Optional[str] = None
    signal_delay_s: int = 120  # the time-limit warning comes this long before the limit
    array_parallelism: int = 16  # jobs of the array running at once
    setup: Optional[List[str]] = None  # shell lines before the job
    additional_parameters: Dict[str, Any] = field(default_factory=dict)  # any other sbatch option


# SlurmLauncherConfig's keys that submitit takes as they are; the others are SLURM's, as slurm_<key>
SUBMITIT_KEYS = ("name", "timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes",
                 "stderr_to_stdout")


def register_configs() -> None:
    store = ConfigStore.instance()
    store.store(name="dreamrun_schema", node=DreamConfig)
    store.store(group="hydra/launcher", name="batched_schema", node=BatchedLauncherConfig, provider="dreamrun")
    store.store(group="hydra/launcher", name="slurm_schema", node=SlurmLauncherConfig, provider="dreamrun")
