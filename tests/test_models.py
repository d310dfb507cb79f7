import math
import pickle
from urllib.error import URLError

import pytest
import torch
import torchvision

import tiny_net
from dreamrun.errors import DreamError
from dreamrun.jobs.dream import run_dream
from dreamrun.jobs.skeleton import load_input
from dreamrun.nets.build import build_model
from dreamrun.nets.feature_net import channel_counts, feature_net
from dreamrun.nets.layers import target_presets


@pytest.fixture
def random_inception(compose_cfg):
    cfg = compose_cfg("model.weights=null")
    return cfg, build_model(cfg.model)


def called_modules(net) -> set[str]:
    return {node.target for node in net.body.graph.nodes if node.op == "call_module"}


def test_feature_net_stops_at_the_deepest_target(random_inception):
    cfg, model = random_inception
    net = feature_net(model, cfg.model, ["Mixed_5b", "Mixed_6b"])
    called = {name.split(".")[0] for name in called_modules(net)}
    assert {"Mixed_5b", "Mixed_6a", "Mixed_6b"} <= called
    assert not called & {"Mixed_6c", "Mixed_7c", "AuxLogits", "fc"}
    assert not any(name.startswith(("Mixed_7", "fc")) for name, _ in net.body.named_modules())
    out = net(torch.rand(1, 3, 80, 80))
    assert set(out) == {"Mixed_5b", "Mixed_6b"}


def test_parameters_are_frozen(random_inception):
    _, model = random_inception
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training


def test_inception_layers_report_their_channel_counts(random_inception):
    cfg, model = random_inception
    net = feature_net(model, cfg.model, ["Mixed_5b", "Mixed_6e", "Mixed_7c"])
    assert channel_counts(net, 75, torch.device("cpu")) == {"Mixed_5b": 256, "Mixed_6e": 768, "Mixed_7c": 2048}


def test_lite0_blocks_are_targetable_and_cut_after_the_deepest(compose_cfg):
    cfg = compose_cfg("model=efficientnet_lite0", "model.weights=null")
    net = feature_net(build_model(cfg.model), cfg.model, ["block_3", "block_5"])
    blocks = {".".join(name.split(".")[:2]) for name in called_modules(net) if name.startswith("_blocks.")}
    assert blocks == {f"_blocks.{i}" for i in range(6)}
    assert "_conv_head" not in called_modules(net)
    out = net(torch.rand(1, 3, 200, 300))  # any size, not just 224
    assert out["block_5"].shape[1] == 80


def test_inception_first_conv_sees_the_image_scaled_as_its_weights_expect(compose_cfg):
    # Google's Inception-v3 weights were trained on pixels in [-1, 1]. torchvision's transform_input
    # maps ImageNet-normalised input there; normalising once and transforming once must give 2x - 1.
    cfg = compose_cfg("model.weights=null")
    model = build_model(cfg.model)
    net = feature_net(model, cfg.model, ["Mixed_5b"])
    image = torch.rand(1, 3, 80, 80)
    seen = model._transform_input((image - net.mean) / net.std)
    assert torch.allclose(seen, image * 2 - 1, atol=1e-5)


def test_a_state_dict_file_loads(compose_cfg, tmp_path):
    cfg = compose_cfg("model=efficientnet_lite0", "model.weights=null")
    torch.manual_seed(5)
    source = build_model(cfg.model)
    path = tmp_path / "lite0.pth"
    torch.save(source.state_dict(), path)
    cfg.model.weights = str(path)
    loaded = build_model(cfg.model)
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.state_dict().values()))


def test_weights_of_another_architecture_name_the_mismatching_keys(compose_cfg, tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    cfg = compose_cfg("model=efficientnet_lite0", f"model.weights={path}")
    with pytest.raises(DreamError, match=r"does not fit this architecture.*missing: _conv_stem.weight.*unexpected: conv1.weight"):
        build_model(cfg.model)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_corrupt_weights_file_is_refused(compose_cfg, tmp_path):
    path = tmp_path / "broken.pth"
    path.write_bytes(b"\x80\x04not really a checkpoint")
    cfg = compose_cfg("model=efficientnet_lite0", f"model.weights={path}")
    with pytest.raises(DreamError, match="cannot load weights file"):
        build_model(cfg.model)


class RunsCode:
    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_a_pickle_that_would_run_code_is_refused_unrun(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"x": RunsCode()}, path, pickle_module=pickle)
    cfg = compose_cfg("model=efficientnet_lite0", f"model.weights={path}")
    with pytest.raises(DreamError, match="cannot load weights file"):
        build_model(cfg.model)
    assert not (tmp_path / "PWNED").exists()


def test_unknown_weights_name_lists_the_valid_ones(compose_cfg):
    cfg = compose_cfg("model.weights=IMAGENET9K")
    with pytest.raises(DreamError, match="valid: IMAGENET1K_V1"):
        build_model(cfg.model)


def test_failed_download_says_where_to_put_the_file(compose_cfg, monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    cfg = compose_cfg()
    with pytest.raises(DreamError) as e:
        build_model(cfg.model)
    message = str(e.value)
    assert "could not download" in message
    assert str(tmp_path / "hub" / "checkpoints" / "inception_v3_google-0cc3c7bd.pth") in message
    assert "model.weights=" in message


@pytest.mark.slow
def test_torchvision_weights_path_loads_a_cached_file(compose_cfg, monkeypatch, tmp_path):
    """The real Weights API path, offline: a file already in torch's cache is used without a download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cfg = compose_cfg("model.weights=null")
    torch.manual_seed(7)
    source = build_model(cfg.model)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(source.state_dict(), cache / "inception_v3_google-0cc3c7bd.pth")
    loaded = build_model(compose_cfg().model)  # model.weights=IMAGENET1K_V1
    assert torch.equal(loaded.Mixed_6e.branch1x1.conv.weight, source.Mixed_6e.branch1x1.conv.weight)


TORCHVISION_PRESETS = ["googlenet", "vgg16", "vgg19", "resnet50"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", TORCHVISION_PRESETS)
def test_every_target_preset_of_a_model_builds_its_feature_extractor(compose_cfg, preset):
    cfg = compose_cfg(f"model={preset}", "model.weights=null")
    model = build_model(cfg.model)
    presets = target_presets(list(cfg.model.layers))
    assert len(presets) >= 4
    for name in presets:
        target = compose_cfg(f"model={preset}", f"target={name}").target
        net = feature_net(model, cfg.model, list(target))
        counts = channel_counts(net, cfg.model.min_size, torch.device("cpu"))
        assert set(counts) == set(target) and all(c >= 64 for c in counts.values()), name


@pytest.mark.slow
@pytest.mark.parametrize("preset", TORCHVISION_PRESETS)
def test_a_two_step_dream_runs_on_every_torchvision_preset(compose_cfg, preset):
    cfg = compose_cfg(f"model={preset}", "model.weights=null", "input.size=64", "octaves=1", "steps=2",
                      "device=cpu", "precision=fp32")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    result = run_dream(cfg, image)
    assert result.image.shape == image.shape
    assert not torch.equal(result.image, image)
    (term,) = result.metrics["targets"].values()
    assert term["before"] > 0 and math.isfinite(term["after"])


def test_googlenet_first_conv_sees_the_image_scaled_as_its_weights_expect(compose_cfg):
    # GoogLeNet's weights come from TensorFlow, like Inception-v3's: transform_input must turn the
    # ImageNet-normalised input into 2x - 1, with or without weights
    cfg = compose_cfg("model=googlenet", "model.weights=null")
    model = build_model(cfg.model)
    net = feature_net(model, cfg.model, ["inception_3a"])
    image = torch.rand(1, 3, 64, 64)
    assert torch.allclose(model._transform_input((image - net.mean) / net.std), image * 2 - 1, atol=1e-5)


def test_a_custom_model_builds_from_its_import_path_and_loads_its_state_dict(compose_cfg, tmp_path):
    torch.manual_seed(3)
    source = tiny_net.build(width=4)
    path = tmp_path / "mine.pt"
    torch.save(source.state_dict(), path)
    cfg = compose_cfg("model=custom", "model._target_=tiny_net.build", "+model.kwargs.width=4",
                      f"model.weights={path}", "+model.layers={features: '3'}", "+target.features=[7]")
    model = build_model(cfg.model)
    assert torch.equal(model[2].weight, source[2].weight)
    net = feature_net(model, cfg.model, ["features"])
    assert channel_counts(net, cfg.model.min_size, torch.device("cpu")) == {"features": 8}


@pytest.mark.parametrize("overrides, message", [
    (["model._target_=tiny_net.nowhere"], "cannot import it"),
    (["model._target_=builtins.dict"], "not a torch.nn.Module"),
    (["model._target_=tiny_net.build", "+model.kwargs.depth=3"], "cannot build with model.kwargs"),
    (["model._target_=tiny_net.build", "model.weights=IMAGENET1K_V1"], "state-dict file"),
])
def test_a_custom_model_that_cannot_be_built_says_why(compose_cfg, overrides, message):
    cfg = compose_cfg("model=custom", *overrides)
    with pytest.raises(DreamError, match=message):
        build_model(cfg.model)


def test_a_custom_layer_path_the_model_lacks_names_the_modules_it_has(compose_cfg):
    cfg = compose_cfg("model=custom", "model._target_=tiny_net.build", "+model.layers={features: '9'}",
                      "+target.features=all")
    with pytest.raises(DreamError) as error:
        feature_net(build_model(cfg.model), cfg.model, ["features"])
    assert str(error.value).startswith("model.layers.features=9: Sequential has no module or operation '9'; "
                                       "its top-level modules: 0, 1, 2, 3")
