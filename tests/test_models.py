import io
import math
import os
import pickle
import re
import zipfile
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision

import tiny_net
from dreamrun.config.compose import compose_config
from dreamrun.errors import DreamError
from dreamrun.jobs.skeleton import load_input
from dreamrun.nets.build import build_architecture, build_model, load_state_dict_file
from dreamrun.nets.feature_net import channel_counts, feature_net
from dreamrun.config.presets import fitting_target_presets
from conftest import run_cli
from helpers.dreams import solo_dream


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
    # dreamrun folds the transform into its own normalisation: one step instead of a dozen small ops
    cfg = compose_cfg("model.weights=null")
    model = build_model(cfg.model)
    net = feature_net(model, cfg.model, ["Mixed_5b"])
    image = torch.rand(1, 3, 80, 80)
    assert torch.allclose(first_conv_input(net, image), image * 2 - 1, atol=1e-5)
    assert model.transform_input  # the model itself is left as built


def first_conv_input(net, image: torch.Tensor) -> torch.Tensor:
    seen = []
    conv = next(m for m in net.body.modules() if isinstance(m, torch.nn.Conv2d))
    handle = conv.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    net(image)
    handle.remove()
    return seen[0]


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


@pytest.fixture(scope="module")
def lite0():
    return build_architecture(compose_config("model=efficientnet_lite0", "model.weights=null").model)


def _saved(make_state):
    """A weights file holding make_state(the Lite0 state dict), as torch.save writes it."""
    def make(t: Path, state: dict) -> Path:
        torch.save(make_state(state), t / "lite0.pth")
        return t / "lite0.pth"
    return make


def _bytes(make_bytes):
    def make(t: Path, state: dict) -> Path:
        (t / "lite0.pth").write_bytes(make_bytes(state))
        return t / "lite0.pth"
    return make


def _torch_file(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _zip_of_text(state: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "not weights")
    return buffer.getvalue()


def _with_values(*edits: tuple[str, tuple, float]):
    """The state dict with single values set, each edit (key, index, value)."""
    def edit(state: dict) -> dict:
        state = {k: v.clone() for k, v in state.items()}
        for key, index, value in edits:
            state[key][index] = value
        return state
    return edit


def _directory(t: Path, state: dict) -> Path:
    (t / "lite0.pth").mkdir()
    return t / "lite0.pth"


def _symlink_loop(t: Path, state: dict) -> Path:
    (t / "a.pth").symlink_to(t / "b.pth")
    (t / "b.pth").symlink_to(t / "a.pth")
    return t / "a.pth"


def _unreadable(t: Path, state: dict) -> Path:
    torch.save(state, t / "lite0.pth")
    (t / "lite0.pth").chmod(0)
    return t / "lite0.pth"


# weights file for Lite0 -> the phrase its refusal says; the file is named in every one
BAD_WEIGHTS_FILES = {
    "a text file": (_bytes(lambda s: b"hello, these are not weights\n"),
                    r"not a PyTorch weights file \(it starts with b'hello"),
    "an HTML page": (_bytes(lambda s: b"<!DOCTYPE html><html>404</html>"),
                     r"not a PyTorch weights file \(it starts with b'<!DOCTYPE"),
    "an empty file": (_bytes(lambda s: b""), r"it is empty \(0 bytes\)"),
    "torch.save's file cut in half": (_bytes(lambda s: _torch_file(s)[: len(_torch_file(s)) // 2]),
                                      "it is truncated or damaged"),
    "a zip that is no torch file": (_bytes(_zip_of_text), "a zip archive, but not one torch.save wrote"),
    "a pickle of a list": (_saved(lambda s: [1, 2]), r"it holds a list, not a state dict \(a dict of tensors\)"),
    "a pickle of an int": (_saved(lambda s: 3), "it holds an int, not a state dict"),
    "a dict of non-tensors": (_saved(lambda s: {"a": 1, "b": "x"}),
                              "it holds no state dict of tensors: 'a' is an int, not a tensor"),
    "a checkpoint with an optimizer": (_saved(lambda s: {"model": s, "optimizer": {}}),
                                       "a checkpoint, not a state dict: 'model' is a dict; if it holds the weights"),
    "wrong shapes": (_saved(lambda s: {**s, "_fc.weight": s["_fc.weight"][:10]}),
                     r"does not fit this architecture \(EfficientNet\): wrong shape: _fc.weight"),
    "missing keys": (_saved(lambda s: {k: v for k, v in s.items() if k != "_fc.bias"}),
                     "does not fit this architecture .*: missing: _fc.bias$"),
    "NaN in a tensor": (_saved(_with_values(("_blocks.3._depthwise_conv.weight", (0, 0, 0, 0), math.nan),
                                            ("_fc.weight", (0, 0), math.inf))),
                        r"_blocks.3._depthwise_conv.weight holds NaN \(the first such tensor\)"),
    "inf in a tensor": (_saved(_with_values(("_fc.bias", 7, -math.inf))), "_fc.bias holds infinite values"),
    "integer weights": (_saved(lambda s: {**s, "_conv_stem.weight": s["_conv_stem.weight"].round().long()}),
                        "int64 tensors where the network's are dense floating point, in _conv_stem.weight;"),
    "a sparse tensor": (_saved(lambda s: {**s, "_fc.bias": s["_fc.bias"].to_sparse()}),
                        "sparse_coo tensors where the network's are dense floating point, in _fc.bias;"),
    "a directory": (_directory, "is a directory, not a weights file"),
    "a symlink loop": (_symlink_loop, "cannot read weights file .*: Too many levels of symbolic links"),
    "a character device": (lambda t, s: Path("/dev/zero"), "is a character device, not a weights file"),
    "a file without read permission": (_unreadable, "cannot read weights file .*: permission denied"),
}


@pytest.mark.parametrize("case", BAD_WEIGHTS_FILES)
def test_a_bad_weights_file_is_refused_naming_it_and_what_is_wrong(lite0, tmp_path, case):
    if case == "a file without read permission" and os.geteuid() == 0:
        pytest.skip("root reads any file")
    make, phrase = BAD_WEIGHTS_FILES[case]
    path = make(tmp_path, lite0.state_dict())
    with pytest.raises(DreamError) as refused:
        load_state_dict_file(lite0, str(path))
    message = str(refused.value)
    assert str(path) in message and re.search(phrase, message), message
    assert "\n" not in message


def test_a_half_precision_state_dict_loads_as_floats(lite0, tmp_path):
    half = {k: v.half() if v.is_floating_point() else v for k, v in lite0.state_dict().items()}
    torch.save(half, tmp_path / "lite0.pth")
    load_state_dict_file(lite0, str(tmp_path / "lite0.pth"))
    assert lite0._fc.weight.dtype == torch.float32 and torch.equal(lite0._fc.weight, half["_fc.weight"].float())


def test_a_weights_path_with_tilde_is_in_the_home_dir(lite0, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    torch.save({k: torch.zeros_like(v) for k, v in lite0.state_dict().items()}, tmp_path / "lite0.pth")
    load_state_dict_file(lite0, "~/lite0.pth")
    assert all(not v.any() for v in lite0.state_dict().values())  # the file in $HOME was loaded


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
    assert "offline, model=efficientnet_lite0 dreams" in message  # a network that needs no download


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
    presets = list(fitting_target_presets(list(cfg.model.layers)))
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
    result = solo_dream(cfg, image)
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
    assert torch.allclose(first_conv_input(net, image), image * 2 - 1, atol=1e-5)


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


def test_a_torchvision_built_for_another_torch_is_one_line(tmp_path):
    """pip can leave a torchvision whose compiled ops do not match torch: its import fails deep inside."""
    fake = tmp_path / "torchvision"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    proc = run_cli("model=inception_v3", "model.weights=null", "input.size=160", "octaves=1", "steps=1", "device=cpu",
                   f"hydra.run.dir={tmp_path / 'run'}", env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("dreamrun: error:")]
    assert "does not work with the installed torch" in line and "operator torchvision::nms" in line
    assert "model=efficientnet_lite0" in line


def test_a_wrong_channel_number_is_refused_before_any_download(compose_cfg, monkeypatch, tmp_path):
    """A 104 MB download must not come before the check that needs only the network's shapes."""
    from dreamrun.jobs.dreamer import build_dreamer

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached: building would download
    downloads = []
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url",
                        lambda url, *args, **kwargs: downloads.append(url) or {})
    cfg = compose_cfg("target.Mixed_6c=[767,768]", "device=cpu")
    with pytest.raises(DreamError, match="channel 768 is out of range: Mixed_6c has 768 channels"):
        build_dreamer(cfg)
    assert downloads == []
