"""The layer browser: dreamrun-layers / python -m dreamrun.nets.layers."""
import os
import subprocess
import sys

import pytest
import yaml

from dreamrun.config.presets import fitting_target_presets
from dreamrun.nets.layers import describe_layers, render
from conftest import REPO


def run_layers(*args: str) -> subprocess.CompletedProcess:
    # tests/ on the path, so model._target_=tiny_net.build imports as a user's own module would
    path = os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "dreamrun.nets.layers", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": path})


def row(output: str, name: str) -> list[str]:
    (line,) = [line for line in output.splitlines() if line.split()[:1] == [name]]
    return line.split()


def test_layer_browser_lists_vgg16_layers_with_channels_strides_and_presets():
    result = run_layers("model=vgg16")
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "conv1_1") == ["conv1_1", "features.1", "64", "1"]  # no preset selects it
    assert row(result.stdout, "conv4_3") == ["conv4_3", "features.22", "512", "8", "conv4_3"]
    assert row(result.stdout, "conv5_3") == ["conv5_3", "features.29", "512", "16", "conv5_3"]
    assert row(result.stdout, "logits") == ["logits", "classifier.6", "1000", "-"]
    assert "conv4_4" not in result.stdout and "block_12" not in result.stdout  # other models' presets
    assert "default target: target=conv4_3" in result.stdout.splitlines()


def test_each_layer_names_the_target_presets_that_select_it(compose_cfg):
    cfg = compose_cfg("model=inception_v3")
    listing = render(cfg.model, cfg.target)
    assert row(listing, "Mixed_6c") == ["Mixed_6c", "Mixed_6c", "768", "16", "mixed_6c,", "mixed_6"]
    assert row(listing, "Mixed_7a")[-2:] == ["mixed_7a,", "mixed_7"]
    assert row(listing, "logits") == ["logits", "fc", "1000", "-"]


def _default_target_in_yaml(model: str) -> str:
    """The target preset conf/model/<model>.yaml picks in its defaults list: `- override /target: NAME`."""
    defaults = yaml.safe_load((REPO / "conf" / "model" / f"{model}.yaml").read_text())["defaults"]
    (name,) = [entry["override /target"] for entry in defaults if "override /target" in entry]
    return name


@pytest.mark.parametrize("model", ["inception_v3", "efficientnet_lite0", "resnet50"])
def test_the_default_target_is_the_preset_name_the_model_yaml_gives(compose_cfg, model):
    cfg = compose_cfg(f"model={model}")
    lines = render(cfg.model, cfg.target).splitlines()
    assert lines[-1] == f"default target: target={_default_target_in_yaml(model)}"


@pytest.mark.parametrize("preset, expected", [
    ("googlenet", {"inception_3a": (256, 8), "inception_4c": (512, 16), "inception_5b": (1024, 32)}),
    ("resnet50", {"layer1": (256, 4), "layer3_2": (1024, 16), "layer4": (2048, 32)}),
    ("vgg19", {"conv3_4": (256, 4), "conv5_4": (512, 16)}),
    ("inception_v3", {"Mixed_5b": (256, 8), "Mixed_6e": (768, 16), "Mixed_7c": (2048, 32)}),
    ("efficientnet_lite0", {"block_0": (16, 2), "block_12": (192, 32), "logits": (1000, None)}),
])
def test_known_layers_have_their_channel_counts_and_strides(compose_cfg, preset, expected):
    layers = {layer.name: layer for layer in describe_layers(compose_cfg(f"model={preset}").model)}
    assert {name: (layers[name].channels, layers[name].stride) for name in expected} == expected


def test_target_presets_are_those_whose_layers_the_model_has():
    assert list(fitting_target_presets(["layer1", "layer2"])) == ["layer1", "layer2"]
    assert "mixed_5" not in fitting_target_presets(["Mixed_5b", "Mixed_5c"])  # mixed_5 needs Mixed_5d too


def test_a_custom_model_without_layers_lists_its_modules_to_pick_from():
    result = run_layers("model=custom", "model._target_=tiny_net.build")
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr
    assert row(result.stdout, "module") == ["module", "type", "channels", "stride"]
    assert row(result.stdout, "0") == ["0", "Conv2d", "8", "1"]
    assert row(result.stdout, "1") == ["1", "ReLU", "8", "1"]
    assert row(result.stdout, "2") == ["2", "Conv2d", "16", "2"]
    assert row(result.stdout, "3") == ["3", "ReLU", "16", "2"]
    assert "'+model.layers={name: path}'" in result.stdout


def test_the_modules_a_custom_model_lists_can_be_named_as_its_layers():
    result = run_layers("model=custom", "model._target_=tiny_net.build", "+model.layers={head: 3}")
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "head") == ["head", "3", "16", "2"]
    assert "default target: none: add layers to it, e.g. '+target.head=all'" in result.stdout.splitlines()


def test_an_unknown_model_is_refused_without_a_traceback():
    result = run_layers("model=alexnet")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["dreamrun-layers: error: model=alexnet: no such preset; choose one of "
                                          "custom, efficientnet_lite0, googlenet, inception_v3, resnet50, vgg16, vgg19"]


def test_a_reader_that_stops_early_gets_no_traceback():
    """`dreamrun-layers | head -1`: the reader is gone before the table is written."""
    proc = subprocess.run(f"{sys.executable} -m dreamrun.nets.layers model=efficientnet_lite0 | true", shell=True,
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.stderr == ""
