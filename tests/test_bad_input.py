"""Whatever users feed dreamrun: images, config values and weights files, through the CLI and the API.

Refused input: one line `dreamrun: error: ...`, exit 2, no traceback, nothing on stdout, and the run
dir holds only the record of the failure. Odd but valid images: dreamed on, correctly converted.
"""
import base64
import json
import os
import pickle
import re
import shutil
import struct
import threading
import time
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import dreamrun
from conftest import TINY, run_cli
from dreamrun.config.compose import compose_config
from dreamrun.errors import DreamError
from dreamrun.jobs.frame_state import RNG_STATE_BYTES, ZOOM as ZOOM_KIND, read_state

STATE_FILE = ZOOM_KIND.state_file
from dreamrun.nets.build import build_architecture

EXIF_ORIENTATION = 0x0112
RECORD_ONLY = {".hydra", "dreamrun.log", "result.json", ".dreamrun.lock"}  # what a refused run leaves


def _photo(size=(96, 64)) -> Image.Image:
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height: the header alone, enough for Pillow's bomb check."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def _truncated(t: Path, name: str, format: str) -> Path:
    path = t / name
    _photo().save(path, format=format)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _image_of_text(t: Path) -> Path:
    return _write(t / "notes.jpg", b"this is a text file, not a picture")


def _directory(t: Path) -> Path:
    (t / "photos.jpg").mkdir()
    return t / "photos.jpg"


def named_pipe(path: Path) -> Path:
    """A FIFO at path, and a watchdog that opens it to write once anyone opens it to read: whatever reads it
    then sees an empty file, so a regression fails its test instead of hanging it."""
    os.mkfifo(path)

    def unblock_a_reader():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # ENXIO: no reader
                pass
            time.sleep(0.05)
    threading.Thread(target=unblock_a_reader, daemon=True).start()
    return path


def _symlink_loop(t: Path) -> Path:
    (t / "a.jpg").symlink_to(t / "b.jpg")
    (t / "b.jpg").symlink_to(t / "a.jpg")
    return t / "a.jpg"


def _broken_symlink(t: Path) -> Path:
    (t / "link.jpg").symlink_to(t / "gone.jpg")
    return t / "link.jpg"


def _one_pixel(t: Path) -> Path:
    Image.new("RGB", (1, 1), "red").save(t / "dot.png")
    return t / "dot.png"


# image file -> the message; every one is refused
BAD_IMAGES = {
    "missing": (lambda t: t / "missing.jpg", "image file not found"),
    "zero bytes": (lambda t: _write(t / "empty.jpg", b""), "cannot read image"),
    "truncated JPEG": (lambda t: _truncated(t, "cut.jpg", "JPEG"), "cannot read image"),
    "truncated PNG": (lambda t: _truncated(t, "cut.png", "PNG"), "cannot read image"),
    "text named .jpg": (_image_of_text, "cannot read image"),
    "directory": (_directory, "is a directory, not an image file"),
    "named pipe": (lambda t: named_pipe(t / "pipe.jpg"), "pipe.jpg is a named pipe, not an image file"),
    "character device": (lambda t: Path("/dev/zero"), "/dev/zero is a character device, not an image file"),
    "symlink loop": (_symlink_loop, "cannot read image file .*a.jpg: Too many levels of symbolic links"),
    "broken symlink": (_broken_symlink, r"image file not found: .*link.jpg \(a broken symlink to .*gone.jpg\)"),
    "name too long": (lambda t: t / ("a" * 300 + ".jpg"), "cannot read image file .*: File name too long"),
    "1x1 image": (_one_pixel, r"is 1x1 px: too small to dream on \(at least 16 px a side\)"),
    "decompression bomb": (lambda t: _write(t / "bomb.png", _png_header(20000, 20000)),
                           r"refusing .*bomb.png unread: .*exceeds limit"),
    "bomb below twice the limit": (lambda t: _write(t / "bomb.png", _png_header(10000, 10000)),
                                   r"refusing .*bomb.png unread: .*exceeds limit"),
}


def _sixteen_bit(t: Path) -> Path:
    Image.fromarray(np.full((64, 96), 32768, dtype=np.uint16)).save(t / "deep.png")
    return t / "deep.png"


def _palette_with_transparency(t: Path) -> Path:
    image = Image.new("P", (96, 64), 0)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    image.paste(1, (0, 0, 48, 64))
    image.save(t / "palette.png", transparency=0)
    return t / "palette.png"


def _cmyk(t: Path) -> Path:
    Image.new("CMYK", (96, 64), (0, 255, 255, 0)).save(t / "print.jpg", quality=95)
    return t / "print.jpg"


def _exif_rotated(t: Path) -> Path:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored 96x64, shown 64x96
    _photo().save(t / "phone.jpg", exif=exif)
    return t / "phone.jpg"


def _animated_gif(t: Path) -> Path:
    frames = [Image.new("RGB", (96, 64), colour) for colour in ("blue", "red", "green")]
    frames[0].save(t / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    return t / "moving.gif"


def _saved(name: str, **options):
    def make(t: Path) -> Path:
        _photo().save(t / name, **options)
        return t / name
    return make


# image file -> (size as dreamed, the colour of its pixel (2, 2) or None); every one is dreamed on
ODD_IMAGES = {
    "16-bit PNG": (_sixteen_bit, (96, 64), (128, 128, 128)),
    "palette PNG with transparency": (_palette_with_transparency, (96, 64), (10, 200, 30)),
    "CMYK JPEG": (_cmyk, (96, 64), (255, 0, 0)),
    "EXIF-rotated JPEG": (_exif_rotated, (64, 96), None),
    "animated GIF": (_animated_gif, (96, 64), (0, 0, 255)),  # the first frame
    "WebP": (_saved("photo.webp", lossless=True), (96, 64), None),
    "TIFF": (_saved("photo.tiff"), (96, 64), None),
}


def _weights(t: Path, make) -> str:
    path = t / "weights.pth"
    make(path)
    return f"model.weights={path}"


class RunsCode:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


@cache
def _lite0_state() -> dict:
    return build_architecture(compose_config("model=efficientnet_lite0", "model.weights=null").model).state_dict()


def _cut_in_half(path: Path) -> None:
    torch.save(_lite0_state(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _with_nan(path: Path) -> None:
    state = {k: v.clone() for k, v in _lite0_state().items()}
    state["_blocks.5._bn1.weight"][3] = float("nan")
    torch.save(state, path)


BAD_WEIGHTS = {
    "corrupt weights file": (lambda p: p.write_bytes(b"\x80\x04 not really a checkpoint"), "cannot load weights file"),
    "another architecture": (lambda p: torch.save(torchvision.models.resnet18().state_dict(), p),
                             r"does not fit this architecture.*missing: _conv_stem.*unexpected: conv1.weight"),
    "a pickle that runs code": (lambda p: torch.save({"x": RunsCode()}, p, pickle_module=pickle),
                                "cannot load weights file .*not a plain PyTorch state dict"),
    "a text file": (lambda p: p.write_text("these are my notes, not weights"),
                    r"cannot load weights file .*weights.pth: not a PyTorch weights file \(it starts with b'these"),
    "torch.save's file cut in half": (_cut_in_half,
                                      "cannot load weights file .*weights.pth: it is truncated or damaged"),
    "NaN weights": (_with_nan, r"weights file .*weights.pth: _blocks.5._bn1.weight holds NaN"),
    "a named pipe": (named_pipe, "weights.pth is a named pipe, not a weights file"),
}

# config overrides -> the message (exit 2); Hydra's own refusals (exit 1) are in test_cli
BAD_CONFIG = {
    "unknown layer (another model's)": (["+target.Mixed_6e=all"], r"unknown layer 'Mixed_6e'.*valid layers: block_0"),
    "channel out of range": (["target.block_12=[3,5000]"], r"channel 5000 is out of range: block_12 has \d+ channels"),
    "duplicate channels": (["target.block_12=[3,3]"], r"channel list \[3, 3\] has duplicates"),
    "negative channel": (["target.block_12=[-1]"], "channel -1 is not a non-negative integer"),
    "empty channel list": (["target.block_12=[]"], "the channel list is empty"),
    "empty target": (["~target.block_12"], "target dictionary is empty"),
    "octaves < 1": (["octaves=0"], "octaves must be at least 1"),
    "steps < 0": (["steps=-1"], "steps must be 0 or more"),
    "step size 0": (["step_size=0"], "step_size must be a positive number"),
    "step size NaN": (["step_size=nan"], "step_size must be a positive number, got nan"),
    "octave scale inf": (["octave_scale=inf"], "octave_scale must be greater than 1, got inf"),
    "negative jitter": (["jitter.max_shift=-4"], "jitter.max_shift must be 0 or more px"),
    "negative size": (["input.size=-5"], r"input.size must be between 1 and 16384 px"),
    "absurd size": (["input.size=100000"], r"input.size must be between 1 and 16384 px"),
    "absurd octaves": (["octaves=1000"], r"octaves=1000 is too many.*largest count that fits is octaves=3"),
    "zoom factor NaN": (["mode=zoom", "zoom.factor=nan"], "zoom.factor is the part of each side"),
    "unknown device": (["device=tpu"], "unknown device 'tpu'"),
    "more strongest channels than the layer has": (["target.block_12={strongest: 500}"],
                                                   "strongest: 500 is more than block_12's 192 channels"),
    "no strongest channels": (["target.block_12={weakest: 0}"], "weakest is how many channels to pick"),
}


def _check_refused(proc, run_dir: Path, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dreamrun: error: "), proc.stderr
    assert re.search(message, lines[0]), lines[0]
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "failed" and re.search(message, result["error"])
    assert {p.name for p in run_dir.iterdir()} <= RECORD_ONLY  # no stray outputs


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_bad_images_are_refused_by_the_cli(tmp_path, case):
    make, message = BAD_IMAGES[case]
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, "input=image", f"input.path={make(tmp_path)}", f"hydra.run.dir={run_dir}")
    _check_refused(proc, run_dir, message)


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_bad_images_are_refused_by_the_api(tmp_path, case):
    make, message = BAD_IMAGES[case]
    with pytest.raises(DreamError, match=message):
        dreamrun.dream(make(tmp_path), model="efficientnet_lite0", octaves=1, steps=1, device="cpu")


@pytest.mark.parametrize("case", ODD_IMAGES)
def test_odd_images_are_dreamed_on_by_the_cli(tmp_path, case):
    make, size, colour = ODD_IMAGES[case]
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, "input=image", f"input.path={make(tmp_path)}", "input.size=null", "octaves=1",
                   "log=none", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    with Image.open(run_dir / "input.png") as seen, Image.open(run_dir / "dream.png") as dream:
        assert seen.mode == "RGB" and seen.size == dream.size == size
        if colour:
            assert np.abs(np.subtract(seen.getpixel((2, 2)), colour)).max() <= 3


@pytest.mark.parametrize("case", ODD_IMAGES)
def test_odd_images_are_dreamed_on_by_the_api(tmp_path, case):
    make, size, _ = ODD_IMAGES[case]
    dream = dreamrun.dream(make(tmp_path), model="efficientnet_lite0", octaves=1, steps=1, device="cpu", size=None)
    assert dream.mode == "RGB" and dream.size == size


@pytest.mark.parametrize("case", BAD_WEIGHTS)
def test_bad_weights_files_are_refused_unrun(tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the malicious pickle would write
    make, message = BAD_WEIGHTS[case]
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, _weights(tmp_path, make), f"hydra.run.dir={run_dir}", cwd=tmp_path)
    _check_refused(proc, run_dir, message)
    with pytest.raises(DreamError, match=message):
        dreamrun.dream(Image.new("RGB", (96, 64)), model="efficientnet_lite0", weights=tmp_path / "weights.pth",
                       octaves=1, steps=1, device="cpu")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("case", BAD_CONFIG)
def test_bad_config_values_are_refused_by_the_cli(tmp_path, case):
    overrides, message = BAD_CONFIG[case]
    run_dir = tmp_path / "run"
    _check_refused(run_cli(*TINY, *overrides, f"hydra.run.dir={run_dir}"), run_dir, message)


@pytest.mark.parametrize("kwargs, message", [
    ({"step_size": float("nan")}, "step_size must be a positive number"),
    ({"octave_scale": float("inf")}, "octave_scale must be greater than 1"),
    ({"octaves": 0}, "octaves must be at least 1"),
    ({"max_shift": -1}, "^max_shift must be 0 or more"),
    ({"target": {}}, "target dictionary is empty"),
    ({"target": {"Mixed_6e": "all"}}, r"of inception_v3 \(model=inception_v3\), not of efficientnet_lite0"),
    ({"target": {"block_12": [2, 2]}}, "has duplicates"),
    ({"size": 0}, "^size must be between 1"),
])
def test_bad_values_are_refused_by_the_api(kwargs, message):
    with pytest.raises(DreamError, match=message):
        dreamrun.dream(Image.new("RGB", (96, 64)), model="efficientnet_lite0", device="cpu",
                       **{"octaves": 1, "steps": 1, **kwargs})


def test_an_image_path_with_tilde_is_in_the_home_dir(tmp_path, monkeypatch):
    _photo().save(tmp_path / "photo.png")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert dreamrun.dream("~/photo.png", model="efficientnet_lite0", octaves=1, steps=1, device="cpu",
                         size=None).size == (96, 64)
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, "input=image", 'input.path="~/photo.png"', f"hydra.run.dir={run_dir}",
                   env={"HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr


ZOOM_SETTINGS = {"seed": 0}


def _zoom_run_dir(t: Path) -> Path:
    """A zoom run dir as FrameWriter leaves it after frame 2: the frame and its zoom_state.json."""
    run_dir = t / "zoom"
    (run_dir / "frames").mkdir(parents=True)
    Image.new("RGB", (64, 64)).save(run_dir / "frames" / "000002.png")
    rng_state = base64.b64encode(torch.Generator().get_state().numpy().tobytes()).decode()
    (run_dir / STATE_FILE).write_text(json.dumps({"frame": 2, "rng_state": rng_state, "config": ZOOM_SETTINGS}))
    return run_dir


def _state_edit(edit):
    """The state file with edit applied to its JSON object."""
    def make(run_dir: Path) -> None:
        state = json.loads((run_dir / STATE_FILE).read_text())
        (run_dir / STATE_FILE).write_text(json.dumps(edit(state)))
    return make


def _state_text(data: bytes):
    def make(run_dir: Path) -> None:
        (run_dir / STATE_FILE).write_bytes(data)
    return make


def _state_replaced(make_thing):
    def make(run_dir: Path) -> None:
        (run_dir / STATE_FILE).unlink()
        make_thing(run_dir / STATE_FILE)
    return make


def _without(key: str):
    return _state_edit(lambda state: {k: v for k, v in state.items() if k != key})


def _setting(key: str, value):
    return _state_edit(lambda state: {**state, key: value})


def _frame_deleted(run_dir: Path) -> None:
    (run_dir / "frames" / "000002.png").unlink()


# damage to a zoom run dir -> the phrase its refusal says after "cannot resume: .../zoom_state.json"
DAMAGED_ZOOM_STATES = {
    "not JSON": (_state_text(b'{"frame": 2, "rng'), r"is damaged: not JSON \(Unterminated string"),
    "not UTF-8": (_state_text(b"\xff\xfe{}"), r"is damaged: not JSON \('utf-8' codec can't decode"),
    "a JSON list": (_state_text(b"[2]"), "is damaged: it holds a JSON list, not an object"),
    "no frame": (_without("frame"), "is damaged: it lacks frame$"),
    "no rng_state": (_without("rng_state"), "is damaged: it lacks rng_state$"),
    "no config": (_without("config"), "is damaged: it lacks config$"),
    "frame a string": (_setting("frame", "2"), 'is damaged: frame is "2", not a frame number'),
    "frame negative": (_setting("frame", -1), "is damaged: frame is -1, not a frame number"),
    "frame a boolean": (_setting("frame", True), "is damaged: frame is true, not a frame number"),
    "config a list": (_setting("config", [1]), r"is damaged: config is \[1\], not an object of settings"),
    "rng_state not base64": (_setting("rng_state", "%%%"), "is damaged: rng_state is not the jitter RNG's saved state"),
    "rng_state cut short": (_setting("rng_state", base64.b64encode(b"0" * 10).decode()),
                            "is damaged: rng_state is not the jitter RNG's saved state"),
    "its frame missing": (_frame_deleted, r"names frame 2, but .*frames/000002.png is missing"),
    "a directory": (_state_replaced(lambda p: p.mkdir()), "is not a regular file"),
    "a named pipe": (_state_replaced(named_pipe), "is not a regular file"),
}


def test_an_intact_zoom_state_is_read(tmp_path):
    assert len(torch.Generator().get_state()) == RNG_STATE_BYTES
    assert read_state(_zoom_run_dir(tmp_path), ZOOM_SETTINGS, ZOOM_KIND)["frame"] == 2


@pytest.mark.parametrize("case", DAMAGED_ZOOM_STATES)
def test_a_damaged_zoom_state_is_refused_naming_it(tmp_path, case):
    damage, phrase = DAMAGED_ZOOM_STATES[case]
    run_dir = _zoom_run_dir(tmp_path)
    damage(run_dir)
    with pytest.raises(DreamError) as refused:
        read_state(run_dir, ZOOM_SETTINGS, ZOOM_KIND)
    message = str(refused.value)
    assert message.startswith(f"cannot resume: {run_dir / STATE_FILE}") and re.search(phrase, message), message


ZOOM = ["mode=zoom", "model=efficientnet_lite0", "input=noise", "input.size=64", "device=cpu",
        "zoom.steps_per_frame=1", "zoom.frames=2", "log=none"]


@pytest.fixture(scope="module")
def zoomed(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("zoomed") / "run"
    proc = run_cli(*ZOOM, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    return run_dir


@pytest.mark.parametrize("case", ["a JSON list", "no rng_state", "rng_state cut short", "its frame missing"])
def test_a_damaged_zoom_state_is_refused_by_the_cli_leaving_the_run_dir_as_it_was(zoomed, tmp_path, case):
    damage, phrase = DAMAGED_ZOOM_STATES[case]
    run_dir = tmp_path / "run"
    shutil.copytree(zoomed, run_dir)
    if case == "its frame missing":
        state = json.loads((run_dir / STATE_FILE).read_text())
        (run_dir / "frames" / f"{state['frame']:06d}.png").unlink()
        phrase = phrase.replace("2", str(state["frame"]))
    else:
        damage(run_dir)
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    proc = run_cli(*ZOOM, "resume=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == "", proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"dreamrun: error: cannot resume: {run_dir / STATE_FILE}"), lines[0]
    assert re.search(phrase, lines[0]), lines[0]
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("case", ["named pipe", "symlink loop", "name too long"])
def test_a_bad_guide_image_is_refused_by_the_cli(tmp_path, case):
    make, message = BAD_IMAGES[case]
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, f"guide.path={make(tmp_path)}", f"hydra.run.dir={run_dir}")
    _check_refused(proc, run_dir, message)
