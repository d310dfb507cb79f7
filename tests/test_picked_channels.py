"""{strongest: K} and {weakest: K} targets: the channels most (least) active on the input, picked once, against
the packaged Lite0's own activations, written where a run can be repeated with them named."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import dreamrun
from conftest import REPO, run_cli
from test_fidelity import lite0_reference, reference_outputs

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
RUN = ["model=efficientnet_lite0", "input=image", "input.size=null", "octaves=2", "steps=2", "device=cpu",
       "precision=fp32"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A 112x80 photo, dreamed at its own size: the network sees exactly these pixels."""
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    with Image.open(REPO / "tests" / "photos" / "chelsea.jpg") as image:
        image.convert("RGB").resize((112, 80), Image.LANCZOS).save(path)
    return path


def reference_picks(photo: Path) -> dict[str, list[int]]:
    """The package model's channel means on the photo (forward hooks, fp32), ranked."""
    x = torch.from_numpy(np.asarray(Image.open(photo), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    seen = reference_outputs(lite0_reference(), {"block_12": "_blocks.12", "block_8": "_blocks.8"}, x)
    strongest = seen["block_12"].mean(dim=(0, 2, 3)).argsort(descending=True)[:5].tolist()
    weakest = seen["block_8"].mean(dim=(0, 2, 3)).argsort()[:3].tolist()
    return {"block_12": strongest, "block_8": weakest}


@pytest.fixture(scope="module")
def picked_run(photo, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("picked") / "run"
    proc = run_cli(*RUN, f"input.path={photo}", "target=block_12", "target.block_12={strongest: 5}",
                   "+target.block_8={weakest: 3, weight: 0.5}", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    return run_dir, proc


def test_the_picked_channels_are_the_package_models_strongest_and_weakest(photo, picked_run):
    run_dir, proc = picked_run
    expected = reference_picks(photo)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["channels_picked"] == {"block_12": {"strongest": 5, "channels": expected["block_12"]},
                                          "block_8": {"weakest": 3, "channels": expected["block_8"]}}
    assert json.loads((run_dir / "result.json").read_text())["metrics"]["channels_picked"] == metrics["channels_picked"]
    # the objective dreamed those channels, with the weight given
    names = f"block_12[{','.join(map(str, expected['block_12']))}]", f"block_8[{','.join(map(str, expected['block_8']))}]"
    assert set(metrics["targets"]) == set(names) and metrics["targets"][names[1]]["weight"] == 0.5
    assert f"target.block_12=[{','.join(map(str, expected['block_12']))}]" in proc.stderr


def test_tensorboards_text_tab_names_the_overrides_that_repeat_them(picked_run):
    run_dir, _ = picked_run
    events = EventAccumulator(str(run_dir), size_guidance={"tensors": 0})
    events.Reload()
    text = events.Tensors("target/picked_channels/text_summary")[0].tensor_proto.string_val[0].decode()
    picked = json.loads((run_dir / "metrics.json").read_text())["channels_picked"]
    for layer, pick in picked.items():
        assert f"'target.{layer}=[{','.join(map(str, pick['channels']))}]'" in text


def test_naming_the_picked_channels_repeats_the_dream(photo, picked_run, tmp_path):
    run_dir, _ = picked_run
    picked = json.loads((run_dir / "metrics.json").read_text())["channels_picked"]
    proc = run_cli(*RUN, f"input.path={photo}", "target=block_12",
                   f"target.block_12=[{','.join(map(str, picked['block_12']['channels']))}]",
                   f"+target.block_8={{channels: [{','.join(map(str, picked['block_8']['channels']))}], weight: 0.5}}",
                   "log=none", f"hydra.run.dir={tmp_path / 'named'}")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "named" / "dream.png")),
                                  np.asarray(Image.open(run_dir / "dream.png")))


def test_the_api_picks_them_too(photo):
    dream = dreamrun.dream(photo, model="efficientnet_lite0", target={"block_12": {"strongest": 5}}, octaves=1,
                           steps=1, size=None, device="cpu", progress=False)
    picked = dream.info["dreamrun"]["channels_picked"]["block_12"]
    # the same five as the package model's (the order may differ: dream() runs at precision=auto)
    assert sorted(picked["channels"]) == sorted(reference_picks(photo)["block_12"])
