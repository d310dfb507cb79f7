import logging

import pytest
import torch

from dreamrun.core import tiles
from dreamrun.core.objectives import Objective, Term
from dreamrun.core.tiles import resolve_tile_size
from dreamrun.errors import DreamError
from dreamrun.jobs.dreamer import build_dreamer
from dreamrun.jobs.skeleton import load_input
from helpers.dreams import solo_dream

from conftest import TINY

EXACT = 1e-4  # of the largest untiled gradient: float rounding; where tiling is not exact it is off by > 1e-3


def test_tile_bounds_cover_the_side_in_equal_parts_no_longer_than_a_tile():
    for length, tile in [(100, 32), (64, 63), (65, 40), (1000, 50)]:
        bounds = tiles.tile_bounds(length, tile)
        assert bounds[0][0] == 0 and bounds[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        sizes = [end - start for start, end in bounds]
        assert max(sizes) <= tile and max(sizes) - min(sizes) <= 1


def test_tile_bounds_of_big_tiles_start_on_the_32px_grid_in_parts_the_network_takes():
    for min_side in (15, 32, 40, 75):
        least = tiles.min_tile_size(min_side)
        for tile in (least, least + 31, 3 * least):
            for length in range(tile + 1, 8 * tile, 7):
                bounds = tiles.tile_bounds(length, tile)
                assert bounds[0][0] == 0 and bounds[-1][1] == length
                assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
                assert all(start % 32 == 0 for start, _ in bounds)
                sizes = [end - start for start, end in bounds]
                assert len(bounds) == -(-length // (tile // 32 * 32)) and min_side <= min(sizes) <= max(sizes) <= tile


def far_from_borders(height: int, width: int, tile_size: int, margin: int) -> torch.Tensor:
    """(H, W): True at pixels at least margin px from every tile border."""
    far = torch.ones(height, width, dtype=torch.bool)
    for dim, length in ((0, height), (1, width)):
        for start, _ in tiles.tile_bounds(length, tile_size)[1:]:
            low = max(0, start - margin)
            far.narrow(dim, low, min(length, start + margin) - low).fill_(False)
    return far


def off_border_error(objective, image: torch.Tensor, tile_size: int, margin: int) -> float:
    """The largest |tiled - untiled| gradient at least margin px from tile borders, relative to the
    largest untiled gradient."""
    whole, _ = tiles.gradient(image, objective)
    tiled, _ = tiles.gradient(image, objective, tile_size=tile_size)
    far = far_from_borders(*image.shape[-2:], tile_size, margin)
    return ((tiled - whole)[..., far].abs().max() / whole.abs().max()).item()


def conv_objective():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1))
    return lambda image: net(image).pow(2).mean()


def test_tiled_gradient_equals_the_untiled_one_away_from_tile_borders():
    objective = conv_objective()
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    # the gradient at a pixel involves outputs 2 px away, which see 2 px further
    assert off_border_error(objective, image, 32, margin=4) < EXACT
    assert off_border_error(objective, image, 32, margin=0) > 1e-2  # near the borders they do differ


def strided_net() -> torch.nn.Module:
    """Three padded stride-2 convolutions: a stride-8 map, each output seeing 15 px."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 8, 3, stride=2, padding=1))


def test_tiles_sample_a_strided_map_where_the_whole_image_does():
    net = strided_net()
    image = torch.rand(1, 3, 200, 232, generator=torch.Generator().manual_seed(1))  # sides: multiples of 8
    # tiles of 100 px would sample the stride-8 map 4 px off the image's grid; these start at 128
    assert off_border_error(lambda tile: net(tile).pow(2).mean(), image, 128, margin=16) < EXACT


@pytest.mark.parametrize("term", [Term("x"), Term("x", reduction="mean"), Term("x", reduction="l2"),
                                  Term("x", channels=(1, 4), reduction="l2"),
                                  Term("x", guide=torch.randn(8, 5, generator=torch.Generator().manual_seed(2)))],
                         ids=["mean_square", "mean", "l2", "l2[1,4]", "guide"])
def test_an_objective_is_called_tileable_where_its_tiles_give_the_untiled_gradient(term):
    net, objective = strided_net(), Objective((term,))
    ramp = torch.linspace(0.2, 1, 232).view(1, 1, 1, -1)  # tiles of unequal contrast, as in a photo
    image = ramp * torch.rand(1, 3, 200, 232, generator=torch.Generator().manual_seed(1))
    error = off_border_error(lambda tile: objective({"x": net(tile)}), image, 128, margin=16)
    assert (error < EXACT) == (objective.tiling_obstacle() is None), error


def test_class_scores_are_called_untileable_and_are_not_a_tiles_share():
    features = strided_net()
    head = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(7), torch.nn.Flatten(), torch.nn.Linear(8 * 49, 10))
    objective = Objective((Term("logits", channels=(3,), reduction="mean"),))  # as VGG's classifier sees a map
    image = torch.rand(1, 3, 192, 192, generator=torch.Generator().manual_seed(1))
    error = off_border_error(lambda tile: objective({"logits": head(features(tile))}), image, 96, margin=24)
    assert error > 1e-2
    assert "logits" in objective.tiling_obstacle()


# each preset at a shallow target, so that its receptive field fits well inside a 96 px tile
PRESET_TARGETS = {"efficientnet_lite0": "block_1", "vgg16": "conv3_1", "vgg19": "conv3_2", "resnet50": "layer1",
                  "googlenet": "inception_3a", "inception_v3": "mixed_5b"}
SLOW_PRESETS = {"vgg16", "vgg19"}  # building their random classifier takes seconds


def random_dreamer(compose_cfg, *overrides: str):
    cfg = compose_cfg("model.weights=null", "device=cpu", "precision=fp32", "channels_last=false", *overrides)
    return cfg, build_dreamer(cfg)


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW_PRESETS else m
                                   for m in PRESET_TARGETS])
def test_presets_tile_exactly_as_their_tileable_flag_says(compose_cfg, model):
    """Measured, not assumed: off the tile borders by more than the layer's receptive field (48 px
    covers these layers), the padded networks' tiled gradients are the untiled ones to float rounding;
    Inception-v3's are off by over 10% (its unpadded convolutions shrink each tile's maps)."""
    cfg, dreamer = random_dreamer(compose_cfg, f"model={model}", f"target={PRESET_TARGETS[model]}", "tile.size=null")
    image = torch.rand(1, 3, 192, 192, generator=torch.Generator().manual_seed(1))
    error = off_border_error(dreamer, image, 96, margin=48)
    assert (error < EXACT) == cfg.model.tileable, error


def test_tiled_values_are_the_whole_images_objective():
    objective = conv_objective()
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    _, whole = tiles.gradient(image, objective)
    _, tiled = tiles.gradient(image, objective, tile_size=32)
    assert tiled["loss"].item() == pytest.approx(whole["loss"].item(), rel=0.05)


def seam_ratio(detail: torch.Tensor, tile: int) -> float:
    """How much bigger the jumps across tile borders are than across the lines 2-6 px beside them."""
    ratios = []
    for dim in (-1, -2):
        jumps = detail.diff(dim=dim).abs().mean(dim=[d for d in range(4) if d != dim % 4])
        for border in range(tile, detail.shape[dim] - 1, tile):
            beside = torch.cat([jumps[border - 7:border - 2], jumps[border + 1:border + 6]])
            ratios.append((jumps[border - 1] / beside.mean()).item())
    return sum(ratios) / len(ratios)


def test_tiled_dreams_show_no_seams(compose_cfg):
    base = [*TINY, "input.size=256", "octaves=1", "steps=15", "step_size=0.03", "target=block_8"]
    image = load_input(compose_cfg(*base), torch.Generator().manual_seed(0))
    untiled = solo_dream(compose_cfg(*base, "tile.size=null"), image).image - image
    tiled = solo_dream(compose_cfg(*base, "tile.size=64"), image).image - image
    assert not torch.equal(tiled, untiled)
    assert seam_ratio(tiled, 64) == pytest.approx(seam_ratio(untiled, 64), abs=0.1)


def test_tile_size_must_leave_room_for_the_network():
    def resolve(setting, min_side):
        return resolve_tile_size(setting, lambda x: x.sum(), torch.device("cpu"), min_side)

    with pytest.raises(DreamError, match="at least 64"):
        resolve(40, 32)
    with pytest.raises(DreamError, match="at least 64"):
        resolve(40, 15)  # two 15 px parts, but on the 32 px grid
    with pytest.raises(DreamError, match="at least 192"):
        resolve(160, 75)
    assert resolve(None, 32) == (None, None)
    assert resolve(256, 32) == (256, None)


def test_auto_tile_size_is_a_usable_side(compose_cfg):
    cfg = compose_cfg(*TINY)
    result = solo_dream(cfg, load_input(cfg, torch.Generator().manual_seed(0)))
    assert 64 <= result.metrics["tile_size"] <= 1024


@pytest.mark.parametrize("overrides, why", [
    (["model=inception_v3", "target=mixed_5b"], "inception_v3's unpadded convolutions"),
    (["model=efficientnet_lite0", "+target.block_1={reduction: l2}"], "reduction=l2"),
    (["model=efficientnet_lite0", "+target.logits={classes: [3]}"], "target logits"),
], ids=["inception_v3", "l2", "logits"])
def test_auto_does_not_tile_where_tiles_are_inexact_and_says_why(compose_cfg, caplog, overrides, why):
    caplog.set_level(logging.WARNING, logger="dreamrun")
    _, dreamer = random_dreamer(compose_cfg, *overrides, "tile.size=auto", "input.size=null")
    assert dreamer.tile_size is None
    assert any("tile.size=auto: not tiling" in r.getMessage() and why in r.getMessage() for r in caplog.records)


def test_auto_says_nothing_where_the_image_would_not_have_been_tiled(compose_cfg, caplog):
    caplog.set_level(logging.WARNING, logger="dreamrun")
    _, dreamer = random_dreamer(compose_cfg, "model=inception_v3", "target=mixed_5b", "tile.size=auto",
                                "input.size=96")
    assert dreamer.tile_size is None
    assert not [r for r in caplog.records if "tile" in r.getMessage()]


def test_an_explicit_tile_size_tiles_where_tiles_are_inexact_and_says_why(compose_cfg, caplog):
    caplog.set_level(logging.WARNING, logger="dreamrun")
    _, dreamer = random_dreamer(compose_cfg, "model=efficientnet_lite0", "+target.block_1={reduction: l2}",
                                "tile.size=128")
    assert dreamer.tile_size == 128
    assert any("tile.size=128: tiled gradients are approximate" in r.getMessage()
               and "reduction=l2" in r.getMessage() for r in caplog.records)


def test_free_cuda_memory_counts_what_pytorchs_cache_holds_unused(monkeypatch):
    """The card's own count calls the allocator's cached blocks taken: the later jobs of a sweep or a
    notebook loop would get ever smaller tiles and batches."""
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 8000))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 900)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: 300)
    assert tiles.free_memory(torch.device("cuda:0")) == 1000 + 600


def test_auto_measures_nothing_for_an_image_no_tile_is_smaller_than():
    probed = []

    def objective(image):
        probed.append(image.shape)
        return image.pow(2).sum()

    cpu = torch.device("cpu")
    assert resolve_tile_size("auto", objective, cpu, 75, long_side=192) == (None, None)  # 192: the least tile
    assert probed == []
    resolve_tile_size("auto", objective, cpu, 75, long_side=193)
    assert probed  # a bigger image might need tiles: what a pixel costs is measured
