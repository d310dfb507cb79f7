import pytest
import torch

from dreamrun.core.octaves import check_octaves, max_octaves, octave_sizes, resize
from dreamrun.errors import DreamError


def test_octaves_go_smallest_first_and_end_at_full_size():
    sizes = octave_sizes(400, 600, 4, 1.4)
    assert sizes[-1] == (400, 600)
    assert sizes == sorted(sizes)
    assert sizes[0] == (round(400 / 1.4**3), round(600 / 1.4**3))


def test_one_octave_is_the_image_itself():
    assert octave_sizes(99, 77, 1, 1.4) == [(99, 77)]


def test_max_octaves_keeps_the_smallest_octave_above_the_minimum():
    n = max_octaves(300, 450, 1.4, 75)
    assert min(octave_sizes(300, 450, n, 1.4)[0]) >= 75
    assert min(octave_sizes(300, 450, n + 1, 1.4)[0]) < 75


def test_too_many_octaves_names_the_largest_count_that_fits():
    with pytest.raises(DreamError, match="largest count that fits is octaves=5"):
        check_octaves(300, 450, 9, 1.4, 75)


def test_an_image_below_the_minimum_size_is_refused():
    with pytest.raises(DreamError, match="at least 75 px"):
        check_octaves(60, 200, 1, 1.4, 75)


def test_downscaling_is_antialiased():
    stripes = torch.zeros(1, 1, 64, 64)
    stripes[..., ::2] = 1.0  # one-pixel stripes alias to a solid colour without a low-pass filter
    small = resize(stripes, (16, 16))
    assert torch.allclose(small, torch.full_like(small, 0.5), atol=0.05)


def test_a_photo_kept_smaller_than_input_size_is_told_how_to_enlarge_it():
    """input.size no longer enlarges: a 300x200 photo has room for 3 octaves of a 75 px network."""
    with pytest.raises(DreamError, match=r"largest count that fits is octaves=3, or use input.upscale=true"):
        check_octaves(200, 300, 4, 1.4, 75, max_side=512, upscale=False)
    with pytest.raises(DreamError, match=r"fits is octaves=3$"):  # as large as asked: nothing to enlarge
        check_octaves(200, 300, 4, 1.4, 75, max_side=300, upscale=False)
    with pytest.raises(DreamError, match="use input.upscale=true"):
        check_octaves(40, 60, 1, 1.4, 75, max_side=512, upscale=False)
