"""Masks: a dream changes only where its mask is white, keeps the input exactly where it is black, and
dreams inside as strongly as an unmasked dream does there (measured with the packaged Lite0 itself)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import dreamrun
from conftest import REPO, TINY, ZOOM, run_cli
from dreamrun.core.zoom import zoom_in
from dreamrun.jobs.frame_state import frame_path
from test_fidelity import lite0_reference, reference_outputs

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def _disc(path: Path, size: tuple[int, int], invert: bool = False) -> np.ndarray:
    """A white disc on black (or the reverse), at size; returns it as booleans (True: white)."""
    mask = Image.new("L", size, 255 if invert else 0)
    ImageDraw.Draw(mask).ellipse((size[0] // 5, size[1] // 5, size[0] * 3 // 4, size[1] * 4 // 5),
                                 fill=0 if invert else 255)
    mask.save(path)
    return np.asarray(mask) > 0


@pytest.mark.parametrize("invert", [False, True])
def test_where_the_mask_is_black_the_dream_is_the_input_exactly(tmp_path, invert):
    white = _disc(tmp_path / "mask.png", (96, 64), invert)  # the size of TINY's input: no resizing
    keep = white if invert else ~white
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, "mask.path=mask.png", f"mask.invert={str(invert).lower()}", "log=none",
                   f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    change = np.abs(_pixels(run_dir / "dream.png") - _pixels(run_dir / "input.png")).max(axis=2)
    assert (change[keep] == 0).all()
    assert change[~keep].mean() > 2  # and it dreamed inside
    assert json.loads((run_dir / "metrics.json").read_text())["mask"] == "mask.png"


def test_a_feathered_mask_fades_the_dream_out_across_its_edge(tmp_path):
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (0, 0, 48, 64))  # the left half dreams
    mask.save(tmp_path / "half.png")
    changes = {}
    for feather in (0, 16):
        run_dir = tmp_path / f"feather_{feather}"
        proc = run_cli(*TINY, "mask.path=half.png", f"mask.feather={feather}", "log=none", "steps=4",
                       f"hydra.run.dir={run_dir}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        changes[feather] = np.abs(_pixels(run_dir / "dream.png") - _pixels(run_dir / "input.png")).mean(axis=(0, 2))
    # hard: nothing right of the edge; feathered: a fading band past it, and nothing far beyond
    assert (changes[0][48:] == 0).all()
    assert changes[16][48:52].mean() > 0.5 and (changes[16][72:] == 0).all()
    assert changes[16][40:48].mean() < changes[0][40:48].mean()


def _region_objective(model, image: Image.Image, box: tuple[int, int, int, int]) -> float:
    """Lite0's block_12 mean squared activation on the region of image seen alone, as the packaged model
    computes it."""
    x = torch.from_numpy(np.asarray(image.crop(box), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    return reference_outputs(model, {"block_12": "_blocks.12"}, x)["block_12"].pow(2).mean().item()


def test_the_dream_inside_a_mask_is_as_strong_as_an_unmasked_dream_there(tmp_path):
    with Image.open(REPO / "tests" / "photos" / "astronaut.jpg") as photo:
        photo = photo.convert("RGB").resize((128, 96), Image.LANCZOS)
    region = (0, 0, 64, 96)  # the left half dreams
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, region)
    mask.save(tmp_path / "left.png")
    model = lite0_reference()
    before = _region_objective(model, photo, region)
    gains = {"masked": [], "plain": []}
    for seed in range(3):
        for kind, where in (("masked", tmp_path / "left.png"), ("plain", None)):
            dream = dreamrun.dream(photo, model="efficientnet_lite0", octaves=2, steps=8, step_size=0.03, size=None,
                                   seed=seed, device="cpu", mask=where, progress=False)
            gains[kind].append(_region_objective(model, dream, region) / before)
    masked, plain = np.mean(gains["masked"]), np.mean(gains["plain"])
    assert plain > 1, gains  # the dreams did dream there
    assert masked >= 0.9 * plain, gains


def test_every_frame_of_a_zoom_is_masked(tmp_path):
    """Outside the mask a frame is the last frame zoomed in, nothing more."""
    keep = ~_disc(tmp_path / "mask.png", (64, 64))
    run_dir = tmp_path / "zoom"
    proc = run_cli(*ZOOM, "mask.path=mask.png", "zoom.rotation=3", "log=none", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (_pixels(frame_path(run_dir, 0))[keep] == _pixels(run_dir / "input.png")[keep]).all()
    for k in range(1, 4):
        before = torch.from_numpy(_pixels(frame_path(run_dir, k - 1)).astype(np.float32) / 255).permute(2, 0, 1)[None]
        zoomed = (zoom_in(before, 0.02, 3.0)[0].permute(1, 2, 0).numpy() * 255).round().astype(int)
        frame = _pixels(frame_path(run_dir, k))
        assert (frame[keep] == zoomed[keep]).all(), k
        assert np.abs(frame - zoomed).max(axis=2)[~keep].mean() > 1, k  # and inside it dreamed


def test_a_grey_mask_scales_each_step_by_its_grey(tmp_path):
    """Small steps are nearly linear: a 50% grey mask changes the photo about half as much as white."""
    with Image.open(REPO / "tests" / "photos" / "astronaut.jpg") as photo:
        photo = photo.convert("RGB").resize((96, 64), Image.LANCZOS)
    change = {}
    for grey in (128, 255):
        Image.new("L", photo.size, grey).save(tmp_path / f"{grey}.png")
        dream = dreamrun.dream(photo, model="efficientnet_lite0", octaves=1, steps=4, step_size=0.01, size=None,
                               device="cpu", mask=tmp_path / f"{grey}.png", progress=False)
        change[grey] = np.abs(np.asarray(dream).astype(int) - np.asarray(photo).astype(int)).mean()
    assert change[128] / change[255] == pytest.approx(128 / 255, abs=0.1)


def test_a_mask_with_transparency_dreams_where_it_is_opaque(tmp_path):
    painted = Image.new("RGBA", (96, 64), (255, 255, 255, 0))  # white, but transparent: an editor's empty layer
    painted.paste((0, 0, 0, 255), (0, 0, 48, 64))  # the left half painted (black, opaque)
    painted.save(tmp_path / "layer.png")
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, "mask.path=layer.png", "log=none", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    change = np.abs(_pixels(run_dir / "dream.png") - _pixels(run_dir / "input.png")).max(axis=2)
    assert (change[:, 48:] == 0).all() and change[:, :40].mean() > 2


def test_every_frame_of_a_video_is_masked(tmp_path):
    av = pytest.importorskip("av")
    from helpers.clips import panning_clip

    panning_clip(tmp_path / "clip.mp4", frames=3, width=64, height=48)
    keep = ~_disc(tmp_path / "mask.png", (64, 48))
    run_dir = tmp_path / "video"
    proc = run_cli("mode=video", "input=video", "input.path=clip.mp4", "input.size=null", "model=efficientnet_lite0",
                   "octaves=1", "steps=2", "video.steps_per_frame=2", "video.octaves=1", "device=cpu",
                   "mask.path=mask.png", "log=none", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with av.open(str(tmp_path / "clip.mp4")) as container:
        decoded = [frame.to_ndarray(format="rgb24").astype(int) for frame in container.decode(video=0)]
    for k, frame in enumerate(decoded):
        dreamed = _pixels(frame_path(run_dir, k))
        assert (dreamed[keep] == frame[keep]).all(), k
        assert np.abs(dreamed - frame).max(axis=2)[~keep].mean() > 1, k


@pytest.mark.parametrize("overrides, message", [
    (["mask.path=notes.txt"], "cannot read image notes.txt"),
    (["mask.path=absent.png"], "absent.png"),
    (["mask.path=notes.txt", "mask.feather=-2"], "mask.feather must be 0"),
])
def test_a_bad_mask_is_one_line(tmp_path, overrides, message):
    (tmp_path / "notes.txt").write_text("not a picture")
    run_dir = tmp_path / "run"
    proc = run_cli(*TINY, *overrides, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dreamrun: error: ") and message in lines[0], proc.stderr
    assert json.loads((run_dir / "result.json").read_text())["status"] == "failed"
