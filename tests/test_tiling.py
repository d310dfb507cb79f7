import pytest
import torch

from dreamrun.core import tiles
from dreamrun.core.tiles import resolve_tile_size
from dreamrun.errors import DreamError
from dreamrun.jobs.dream import run_dream
from dreamrun.jobs.skeleton import load_input

from conftest import TINY


def test_tile_bounds_cover_the_side_in_equal_parts_no_longer_than_a_tile():
    for length, tile in [(100, 32), (64, 64), (65, 64), (1000, 256)]:
        bounds = tiles.tile_bounds(length, tile)
        assert bounds[0][0] == 0 and bounds[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
        sizes = [end - start for start, end in bounds]
        assert max(sizes) <= tile and max(sizes) - min(sizes) <= 1


def conv_objective():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3, padding=1))
    return lambda image: net(image).pow(2).mean()


def test_tiled_gradient_equals_the_untiled_one_away_from_tile_borders():
    objective = conv_objective()
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    whole, _ = tiles.gradient(image, objective)
    tiled, _ = tiles.gradient(image, objective, tile_size=32)
    reach = 4  # the gradient at a pixel involves outputs 2 px away, which see 2 px further
    far = torch.ones(64, 96, dtype=torch.bool)
    for border in (32,):
        far[border - reach:border + reach, :] = False
    for border in (32, 64):
        far[:, border - reach:border + reach] = False
    scale = whole.abs().max()
    assert (tiled - whole)[..., far].abs().max() < 1e-4 * scale
    assert (tiled - whole).abs().max() > 1e-2 * scale  # near the borders they do differ


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
    untiled = run_dream(compose_cfg(*base, "tile.size=null"), image).image - image
    tiled = run_dream(compose_cfg(*base, "tile.size=64"), image).image - image
    assert not torch.equal(tiled, untiled)
    assert seam_ratio(tiled, 64) == pytest.approx(seam_ratio(untiled, 64), abs=0.1)


def test_tile_size_must_leave_room_for_the_network():
    with pytest.raises(DreamError, match="at least 64"):
        resolve_tile_size(40, lambda x: x.sum(), torch.device("cpu"), 32)
    assert resolve_tile_size(None, lambda x: x.sum(), torch.device("cpu"), 32) is None
    assert resolve_tile_size(256, lambda x: x.sum(), torch.device("cpu"), 32) == 256


def test_auto_tile_size_is_a_usable_side(compose_cfg):
    cfg = compose_cfg(*TINY)
    result = run_dream(cfg, load_input(cfg, torch.Generator().manual_seed(0)))
    assert 64 <= result.metrics["tile_size"] <= 1024
