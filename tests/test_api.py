"""The Python API, dreamrun.dream(): it dreams the way `python -m dreamrun` does."""
import numpy as np
import pytest
import torch
from PIL import Image

import dreamrun
from dreamrun.config.compose import compose_config
from dreamrun.errors import DreamError

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


@pytest.mark.parametrize("call, message", [
    ({"model": "efficientnet_lite"}, "model=efficientnet_lite: no such preset; did you mean model=efficientnet_lite0?"),
    ({"octaves": "two"}, "octaves='two': "),
    ({"size": 64.5}, "size=64.5: "),
    ({"steps": None}, "steps=None: "),
    ({"max_shift": [1]}, "max_shift=[1]: "),
    ({"target": ["block_3"]}, "target must map layers to channels"),
    ({"target": {"block_3": object()}}, "target={'block_3': <object"),
    ({"image": 3}, "image must be a PIL image or a path to one, not a int"),
    ({"image": torch.rand(3, 64, 64)}, "not a Tensor: torchvision.transforms.functional.to_pil_image"),
    ({"image": np.zeros((64, 64, 3), np.uint8)}, "not a ndarray: PIL.Image.fromarray"),
])
def test_a_wrong_argument_is_a_dream_error_naming_it(call, message):
    """A notebook gets DreamError, the CLI's one error type, saying which argument is wrong — not
    Hydra's or OmegaConf's exceptions about config keys the caller never wrote."""
    arguments = {"image": Image.new("RGB", (64, 64)), **TINY_DREAM, "size": 64, **call}
    with pytest.raises(DreamError) as raised:
        dreamrun.dream(arguments.pop("image"), **arguments)
    assert message in str(raised.value), raised.value


def test_the_metrics_come_back_with_the_dream():
    dreamed = dreamrun.dream(Image.new("RGB", (96, 64), (120, 80, 60)), model="efficientnet_lite0", octaves=1,
                             steps=2, device="cpu", size=None)
    metrics = dreamed.info["dreamrun"]
    assert metrics["size"] == [96, 64] and metrics["steps"] == 2 and metrics["device"] == "cpu"
    assert metrics["gain"] == pytest.approx(metrics["objective_after"] / metrics["objective_before"])
    assert metrics["gain"] > 1  # the dream raised the objective


@pytest.mark.parametrize("progress, shown", [(True, True), (False, False), (None, False)])
def test_progress_is_a_bar_where_asked_and_where_a_person_watches(capsys, progress, shown):
    # under pytest stderr is no terminal and no notebook runs: the default shows nothing
    dreamrun.dream(Image.new("RGB", (64, 64)), model="efficientnet_lite0", octaves=1, steps=2, device="cpu",
                   size=None, progress=progress)
    assert ("2/2" in capsys.readouterr().err) is shown


def test_a_notebook_gets_a_bar_by_default(capsys, monkeypatch):
    """In Jupyter stderr is no terminal, yet a person watches the cell."""
    import dreamrun.api as api

    monkeypatch.setattr(api, "in_notebook", lambda: True)
    dreamrun.dream(Image.new("RGB", (64, 64)), model="efficientnet_lite0", octaves=1, steps=2, device="cpu",
                   size=None)
    assert "2/2" in capsys.readouterr().err


def test_messages_use_the_apis_own_words(monkeypatch, tmp_path):
    """dream(weights=...) is what a notebook user can pass, not the CLI's model.weights=."""
    from urllib.error import URLError

    import torchvision

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(DreamError) as e:
        dreamrun.dream(Image.new("RGB", (96, 96)), model="inception_v3", weights="IMAGENET1K_V1", device="cpu", octaves=1)
    assert "pass weights=/path/to/state_dict.pth" in str(e.value) and "model.weights" not in str(e.value)
    with pytest.raises(DreamError, match=r"^max_shift must be 0 or more"):
        dreamrun.dream(Image.new("RGB", (96, 96)), model="efficientnet_lite0", max_shift=-1)


def test_a_small_image_keeps_its_size_unless_upscale():
    small = Image.new("RGB", (120, 80), (120, 80, 60))
    assert dreamrun.dream(small, size=300, **TINY_DREAM).size == (120, 80)
    assert dreamrun.dream(small, size=300, upscale=True, **TINY_DREAM).size == (300, 200)


def test_the_apis_words_leave_a_users_paths_alone():
    from dreamrun.api import in_api_terms

    said = "cannot read guide.path /data/guide.path.png; pass model.weights=/w/model.weights.pth"
    assert in_api_terms(said) == "cannot read guide /data/guide.path.png; pass weights=/w/model.weights.pth"
