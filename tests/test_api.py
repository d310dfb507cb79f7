"""The Python API, dreamrun.dream(): it dreams the way `python -m dreamrun` does."""
import pytest
from PIL import Image

import dreamrun
from dreamrun.config.compose import compose_config

# no steps: these tests are about the size the image is dreamed at, which is set before the first one
TINY_DREAM = {"model": "efficientnet_lite0", "octaves": 1, "steps": 0, "device": "cpu"}


def test_dream_works_at_the_clis_size_by_default():
    cli_size = compose_config().input.size  # the long side `python -m dreamrun` dreams at
    assert cli_size is not None
    dreamed = dreamrun.dream(Image.new("RGB", (600, 400), (120, 80, 60)), **TINY_DREAM)
    assert dreamed.size == (cli_size, round(400 * cli_size / 600))  # 512 x 341 as shipped


@pytest.mark.parametrize("size, expected", [(None, (600, 400)), (300, (300, 200))])
def test_dream_size_none_keeps_the_image_and_a_number_sets_its_long_side(size, expected):
    dreamed = dreamrun.dream(Image.new("RGB", (600, 400), (120, 80, 60)), size=size, **TINY_DREAM)
    assert dreamed.size == expected
