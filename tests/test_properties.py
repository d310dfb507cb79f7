"""Engine invariants over many generated cases (hypothesis): shape, value range, determinism, jitter."""
import torch
from hypothesis import assume, given, settings, strategies as st

from dreamrun.core import engine
from dreamrun.core.octaves import octave_sizes
from dreamrun.core.zoom import zoom_in

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
    return engine.dream(image, objective, octaves=case["octaves"], octave_scale=1.4, steps=case["steps"],
                        step_size=case["step_size"], max_shift=case["max_shift"],
                        generator=torch.Generator().manual_seed(case["seed"]), tile_size=case["tile_size"])


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
