"""seamless=true: the network sees the image on a torus, octaves resize it wrapping around, and the dream
tiles; seamless=false leaves everything as it was."""
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import dreamrun
from conftest import REPO, TINY, run_cli
from dreamrun.core.octaves import resize
from dreamrun.nets.build import build_model
from dreamrun.nets.feature_net import feature_net
from dreamrun.nets.torus import CircularPadding, on_a_torus

sys.path.insert(0, str(REPO))
from benchmarks.seamless_seams import seam_ratio, tileable  # noqa: E402  the benchmark's own measure


@pytest.mark.parametrize("overrides, layers", [
    (["model=efficientnet_lite0"], ["block_12", "block_15"]),
    (["model=resnet50", "model.weights=null"], ["layer3", "layer4"]),
    (["model=vgg16", "model.weights=null"], ["conv5_3"]),
])
def test_on_a_torus_rolling_the_image_rolls_every_feature_map(compose_cfg, overrides, layers):
    """Translation by whole strides commutes with a network on a torus, exactly; with zero padding it does not."""
    cfg = compose_cfg(*overrides)
    net = feature_net(build_model(cfg.model), cfg.model, layers)
    image = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    shift = (32, 64)  # multiples of every layer's stride
    with torch.no_grad():
        with on_a_torus():
            seen, seen_rolled = net(image), net(torch.roll(image, shift, (-2, -1)))
        plain, plain_rolled = net(image), net(torch.roll(image, shift, (-2, -1)))
    for layer in layers:
        stride = 128 // seen[layer].shape[-1]
        rolled = (shift[0] // stride, shift[1] // stride)
        torch.testing.assert_close(seen_rolled[layer], torch.roll(seen[layer], rolled, (-2, -1)), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(plain_rolled[layer], torch.roll(plain[layer], rolled, (-2, -1)), rtol=1e-2, atol=1e-3)


def test_wrapping_padding_of_any_size_is_the_periodic_image():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    with on_a_torus():
        padded = F.pad(x, (5, 1, 4, 2))  # more than the image: F.pad's circular mode refuses this
    rows, columns = (np.arange(-4, 5) % 3), (np.arange(-5, 5) % 4)
    np.testing.assert_array_equal(padded[0, 0].numpy(), x[0, 0].numpy()[np.ix_(rows, columns)])


def test_wrapped_resizing_is_periodic_and_bilinear_inside():
    image = torch.rand(1, 3, 40, 60, generator=torch.Generator().manual_seed(0))
    for size in [(20, 30), (56, 84)]:
        wrapped = resize(image, size, wrap=True)
        torch.testing.assert_close(wrapped[..., 4:-4, 4:-4], resize(image, size)[..., 4:-4, 4:-4], rtol=0, atol=1e-5)
    # a roll by whole output px commutes with the resize, the edges included
    torch.testing.assert_close(resize(torch.roll(image, (10, 14), (-2, -1)), (20, 30), wrap=True),
                               torch.roll(resize(image, (20, 30), wrap=True), (5, 7), (-2, -1)), rtol=0, atol=1e-5)


def _detail(run_dir) -> torch.Tensor:
    dream, source = (torch.from_numpy(np.asarray(Image.open(run_dir / name), dtype=np.float32) / 255).permute(2, 0, 1)
                     for name in ("dream.png", "input.png"))
    return (dream - source)[None]


def test_a_seamless_dream_continues_across_its_wrapped_edges(tmp_path):
    """A sweep of seeds, seamless and plain, through the CLI; the detail's correlation across the seams,
    pooled over the seeds (one column pair is a noisy sample), against its correlation inside."""
    tile = tileable(128)
    Image.fromarray((tile[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(tmp_path / "tile.png")
    proc = run_cli("-m", "tile.png", "model=efficientnet_lite0", "input.size=null", "octaves=3", "steps=8",
                   "step_size=0.02", "device=cpu", "seamless=true,false", "seed=0,1,2", "log=none",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweep.subdir=${seamless}_${seed}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ratios = {kind: seam_ratio([_detail(tmp_path / "sweep" / f"{kind}_{seed}") for seed in range(3)])
              for kind in ("True", "False")}
    assert ratios["True"] >= 0.8 and ratios["True"] > ratios["False"], ratios


def test_without_seamless_the_torus_is_never_entered(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("on a torus without seamless=true")

    monkeypatch.setattr(CircularPadding, "__torch_function__", refuse)
    dream = dreamrun.dream(Image.new("RGB", (64, 64), (90, 140, 200)), model="efficientnet_lite0", octaves=2,
                           steps=1, device="cpu", progress=False)
    assert dream.size == (64, 64)


@pytest.mark.parametrize("overrides, message", [
    (["mode=zoom", "input=noise", "input.size=64"], "seamless=true makes one tileable dream (mode=dream)"),
    (["compile=true"], "use compile=false"),
    (["tile.size=64"], "use tile.size=auto or null"),
])
def test_what_cannot_be_seamless_is_one_line(tmp_path, overrides, message):
    proc = run_cli(*TINY, "seamless=true", *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
