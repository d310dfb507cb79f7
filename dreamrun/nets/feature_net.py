"""The network dreamrun dreams with: the model cut after its deepest target layer, rewritten for speed
(BatchNorm folded, average pools as convolutions, an input transform folded into the normalisation,
weights cast once for autocast) and returning every target's activation."""
from contextlib import contextmanager
from typing import Iterator, Mapping, Optional

import torch
from torch import fx, nn

from dreamrun.config.schema import ModelConfig
from dreamrun.errors import DreamError
from dreamrun.nets.module_paths import ModulePathTracer
from dreamrun.nets.rewrites import cast_autocast_weights, speed_up


class FeatureNet(nn.Module):
    """Image (B, 3, H, W) in [0, 1] -> {layer: activation}, the network cut after the deepest layer.

    Speed settings (see configure): channels_last memory format and autocast to bf16/fp16;
    activations then come out in bf16 (fp16: in fp32, see forward), the input stays fp32.
    """

    def __init__(self, model: nn.Module, layers: Mapping[str, str], mean: list[float], std: list[float], *,
                 owns_model: bool = False):
        super().__init__()
        self.channels_last = False
        self.autocast_dtype: Optional[torch.dtype] = None
        self.channels: Optional[dict[str, int]] = None  # each layer's channel count, once probed
        with input_transform_folded(model, mean, std) as (mean, std):
            # the layers up to the cut, rewritten: a copy of them, unless the model was built for this net alone
            self.body = speed_up(cut(model, layers), in_place=owns_model)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def configure(self, *, channels_last: bool, autocast_dtype: Optional[torch.dtype], compile: bool) -> "FeatureNet":
        self.channels_last = channels_last
        self.autocast_dtype = autocast_dtype
        if autocast_dtype is not None:
            cast_autocast_weights(self.body, autocast_dtype)
        if channels_last:
            self.body = self.body.to(memory_format=torch.channels_last)
        if compile:
            # dynamic shapes: the octaves' different sizes reuse one compiled graph
            self.body = torch.compile(self.body, dynamic=True)
        return self

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (image - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        scaler = GradientScale() if self.autocast_dtype == torch.float16 else None
        if scaler is not None:
            x = UnscaledInputGradient.apply(x, scaler)
        with torch.autocast(x.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            acts = self.body(x)
        if scaler is None:
            return acts
        names = list(acts)
        return dict(zip(names, ScaledActivationGradients.apply(scaler, *(acts[name].float() for name in names))))


class GradientScale:
    """fp16's loss scale for one forward pass, a power of two chosen from the gradient it scales.

    An objective averages over feature maps, so its gradient there is a small fraction of the activation
    (a randomly initialised Inception-v3's is ~1e-10 at Mixed_6c): in fp16 (smallest number 6e-8) it would
    round to zero on its way back through the network, and the image would never move. Scaled so that its
    largest element is 2**LARGEST_EXPONENT, it keeps fp16's precision with room to grow through the layers
    below 65504. The scale is a tensor chosen on the device in the backward pass: no wait for the GPU.
    """

    LARGEST_EXPONENT = 8
    # the scale's own largest exponent: where the gradient is zero (a channel that never fires) the scale
    # would be infinite, and 0 * inf is NaN; 2**100 is finite in fp32 and beyond any real gradient's need
    MAX_SCALE_EXPONENT = 100

    def __init__(self):
        self.value: Optional[torch.Tensor] = None


class ScaledActivationGradients(torch.autograd.Function):
    """Identity on the activations (fp32); backward scales their gradients before autocast casts them to fp16."""

    @staticmethod
    def forward(ctx, scaler: GradientScale, *activations: torch.Tensor):
        ctx.scaler = scaler
        return tuple(act.view_as(act) for act in activations)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):
        largest = torch.stack([grad.abs().amax() for grad in grads]).amax().clamp_min(torch.finfo(torch.float32).tiny)
        exponent = GradientScale.LARGEST_EXPONENT - torch.ceil(torch.log2(largest))
        ctx.scaler.value = torch.exp2(exponent.clamp(max=GradientScale.MAX_SCALE_EXPONENT))
        return (None, *(grad * ctx.scaler.value for grad in grads))


class UnscaledInputGradient(torch.autograd.Function):
    """Identity on the normalised input; backward divides the scale out again, in fp32."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scaler: GradientScale) -> torch.Tensor:
        ctx.scaler = scaler
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad / ctx.scaler.value, None


@contextmanager
def input_transform_folded(model: nn.Module, mean: list[float], std: list[float]) -> Iterator[tuple[list, list]]:
    """For a torchvision model that rescales its input itself (Inception-v3's and GoogLeNet's
    transform_input: a per-channel a * x + b on the normalised image, as a dozen small ops every
    forward), the normalisation that gives that rescaled input in one step, while the model is traced
    without its transform. Other models: mean and std as they are."""
    if not getattr(model, "transform_input", False) or not hasattr(model, "_transform_input"):
        yield mean, std
        return
    with torch.no_grad():
        offset = model._transform_input(torch.zeros(1, 3, 1, 1)).flatten()  # b
        slope = model._transform_input(torch.ones(1, 3, 1, 1)).flatten() - offset  # a
    mean_t, std_t = torch.tensor(mean), torch.tensor(std)
    # a * (image - mean) / std + b == (image - (mean - b * std / a)) / (std / a)
    folded = (mean_t - offset * std_t / slope).tolist(), (std_t / slope).tolist()
    model.transform_input = False
    try:
        yield folded
    finally:
        model.transform_input = True


def cut(model: nn.Module, layers: Mapping[str, str]) -> fx.GraphModule:
    """The model's eval-mode graph returning {name: the output of the module at path} for layers
    {name: path}, with every operation after the deepest one dropped.

    Traced once, in eval mode: torchvision's create_feature_extractor traces the train-mode graph as
    well, which a dream never runs.
    """
    tracer = ModulePathTracer()  # names each node by the module path it ran in: Mixed_6c.branch3x3.conv
    graph = tracer.trace(model.eval())
    outputs = {}
    for name, path in layers.items():
        # a module's output is the last operation traced inside it
        inside = [node for node, node_path in tracer.node_paths.items()
                  if node_path == path or node_path.startswith(f"{path}.")]
        if not inside:
            top = ", ".join(child for child, _ in model.named_children())
            raise DreamError(f"model.layers.{name}={path}: {type(model).__name__} has no module or operation "
                             f"'{path}'; its top-level modules: {top} (dreamrun-layers lists what can be targeted)")
        outputs[name] = inside[-1]
    module = fx.GraphModule(tracer.root, graph, type(model).__name__)
    for node in [node for node in graph.nodes if node.op == "output"]:
        graph.erase_node(node)
    graph.output(outputs)
    graph.eliminate_dead_code()
    module.delete_all_unused_submodules()
    module.recompile()
    return module


def feature_net(model: nn.Module, cfg: ModelConfig, layers: list[str], *, owns_model: bool = False) -> FeatureNet:
    """owns_model: the model was built for this net and nothing else holds it, so the net may change
    its layers instead of copying them (saves a copy of the network's weights)."""
    return FeatureNet(model, {name: cfg.layers[name] for name in layers}, cfg.mean, cfg.std,
                      owns_model=owns_model).eval()


@torch.no_grad()
def channel_counts(net: FeatureNet, min_size: int, device: torch.device, model: str = "the network") -> dict[str, int]:
    """Each cut layer's channel count, probed once per net (jobs dreaming together share one) on the
    network's smallest input (model.min_size), which a DreamError names if the layers cannot take it."""
    if net.channels is None:
        probe = torch.zeros(1, 3, min_size, min_size, device=device)
        try:
            net.channels = {name: act.shape[1] for name, act in net(probe).items()}
        except RuntimeError as e:
            raise DreamError(f"{model} cannot take a {min_size} px input, its model.min_size "
                             f"({' '.join(str(e).split())[:160]}): raise model.min_size") from None
    return net.channels
