"""Rewrites of the traced network that compute the same function, faster.

- BatchNorm folded into the convolution before it (eval mode: BN is a fixed affine map), whether
  the graph calls the convolution as a module (torchvision's nn.Conv2d) or as F.conv2d on its
  weights (what tracing leaves of EfficientNet-Lite's padded Conv2d subclass).
- avg_pool2d as a depthwise convolution with a box kernel: the same sums, but on CPU its
  backward runs several times faster (benchmarks/README.md).
- for autocast, the weights of the convolutions and linear layers cast once to its dtype: autocast
  would cast them again at every forward (it caches casts only of weights that require grad).
"""
import copy
from collections import Counter
from typing import Optional

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights


class BoxFilter(nn.Module):
    """avg_pool2d(kernel, stride, padding) with zero padding counted, as a depthwise convolution."""

    def __init__(self, kernel: int, stride: int, padding: int):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding
        self.kernels: dict[tuple, torch.Tensor] = {}  # (channels, dtype, device) -> (C, 1, k, k), made once

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        key = (channels, x.dtype, x.device)
        weight = self.kernels.get(key)
        if weight is None:
            weight = torch.full((channels, 1, self.kernel, self.kernel), 1.0 / self.kernel**2,
                                dtype=x.dtype, device=x.device)
            self.kernels[key] = weight
        return F.conv2d(x, weight, stride=self.stride, padding=self.padding, groups=channels)


def _pool_arguments(node: fx.Node):
    """(kernel, stride, padding) of an avg_pool2d call a box filter reproduces exactly, else None."""
    names = ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"]
    args = {**dict(zip(names, node.args)), **node.kwargs}
    kernel, stride, padding = args.get("kernel_size"), args.get("stride"), args.get("padding", 0)
    stride = kernel if stride in (None, []) else stride
    if args.get("ceil_mode", False) or not args.get("count_include_pad", True) or args.get("divisor_override"):
        return None
    if not all(isinstance(v, int) for v in (kernel, stride, padding)):
        return None  # tuples and computed sizes: leave them alone
    return kernel, stride, padding


def avg_pools_as_convolutions(module: fx.GraphModule) -> fx.GraphModule:
    for node in list(module.graph.nodes):
        if node.op == "call_function" and node.target is F.avg_pool2d:
            arguments = _pool_arguments(node)
            if arguments is None:
                continue
            name = f"box_filter_{node.name}"
            module.add_submodule(name, BoxFilter(*arguments))
            with module.graph.inserting_after(node):
                replacement = module.graph.call_module(name, (node.args[0],))
            node.replace_all_uses_with(replacement)
            module.graph.erase_node(node)
    module.recompile()
    return module


def _eval_batchnorm(module: fx.GraphModule, node: fx.Node, uses: Counter) -> Optional[nn.BatchNorm2d]:
    if node.op != "call_module" or uses[node.target] != 1 or not isinstance(node.args[0], fx.Node):
        return None
    norm = module.get_submodule(node.target)
    return norm if type(norm) is nn.BatchNorm2d and not norm.training and norm.track_running_stats else None


def _own_weight(arg, uses: Counter) -> bool:
    """A get_attr read by one node alone, so its tensor can be replaced."""
    return isinstance(arg, fx.Node) and arg.op == "get_attr" and uses[arg.target] == 1 and len(arg.users) == 1


def _set_parameter(module: fx.GraphModule, target: str, value: nn.Parameter) -> None:
    owner, _, name = target.rpartition(".")
    module.get_submodule(owner).register_parameter(name, value)


def _fold_into_module(module: fx.GraphModule, conv: fx.Node, norm: nn.BatchNorm2d, uses: Counter) -> bool:
    """conv is a call of a plain nn.Conv2d: swap in the folded module."""
    if conv.op != "call_module" or uses[conv.target] != 1:
        return False
    layer = module.get_submodule(conv.target)
    if type(layer) is not nn.Conv2d:  # a subclass's forward may do more than convolve
        return False
    owner, _, name = conv.target.rpartition(".")
    setattr(module.get_submodule(owner), name, fuse_conv_bn_eval(layer, norm))
    return True


def _fold_into_weights(module: fx.GraphModule, conv: fx.Node, norm: nn.BatchNorm2d, uses: Counter) -> bool:
    """conv is F.conv2d(x, weight, bias, ...) on weights no other node reads: fold into them."""
    if conv.op != "call_function" or conv.target not in (torch.conv2d, F.conv2d) or conv.kwargs:
        return False
    weight = conv.args[1]
    bias = conv.args[2] if len(conv.args) > 2 else None
    if not _own_weight(weight, uses) or not (bias is None or _own_weight(bias, uses)):
        return False
    folded_weight, folded_bias = fuse_conv_bn_weights(
        module.get_parameter(weight.target), None if bias is None else module.get_parameter(bias.target),
        norm.running_mean, norm.running_var, norm.eps, norm.weight, norm.bias)
    _set_parameter(module, weight.target, folded_weight)
    bias_target = f"{weight.target}_folded_bias" if bias is None else bias.target
    _set_parameter(module, bias_target, folded_bias)
    if bias is None:
        with module.graph.inserting_before(conv):
            conv.args = (*conv.args[:2], module.graph.get_attr(bias_target), *conv.args[3:])
    return True


def fold_batchnorm(module: fx.GraphModule) -> fx.GraphModule:
    """Fold each eval-mode BatchNorm2d into the convolution that feeds it and nothing else."""
    uses = Counter(n.target for n in module.graph.nodes if n.op in ("call_module", "get_attr"))
    for node in list(module.graph.nodes):
        norm = _eval_batchnorm(module, node, uses)
        if norm is None:
            continue
        conv = node.args[0]
        if len(conv.users) == 1 and (_fold_into_module(module, conv, norm, uses)
                                     or _fold_into_weights(module, conv, norm, uses)):
            node.replace_all_uses_with(conv)
            module.graph.erase_node(node)
    module.delete_all_unused_submodules()
    module.recompile()
    return module


def _attribute(module: nn.Module, target: str) -> torch.Tensor:
    """The tensor a get_attr node reads: a parameter, or a buffer (a custom network's fixed weights)."""
    owner, _, name = target.rpartition(".")
    return getattr(module.get_submodule(owner), name)


def cast_autocast_weights(module: fx.GraphModule, dtype: torch.dtype) -> fx.GraphModule:
    """The weights and biases of every convolution and linear layer the graph calls, cast to dtype: what
    autocast casts them to at every forward, so the arithmetic is the same, done once."""
    tensors = []
    for node in module.graph.nodes:
        if node.op == "call_module" and isinstance(module.get_submodule(node.target), (nn.Conv2d, nn.Linear)):
            layer = module.get_submodule(node.target)
            tensors += [layer.weight, layer.bias]
        elif node.op == "call_function" and node.target in (torch.conv2d, F.conv2d, F.linear):
            tensors += [_attribute(module, arg.target) for arg in node.args[1:3]
                        if isinstance(arg, fx.Node) and arg.op == "get_attr"]
    with torch.no_grad():
        for tensor in tensors:
            if tensor is not None and tensor.is_floating_point():
                tensor.data = tensor.data.to(dtype)
    return module


def speed_up(module: fx.GraphModule, *, in_place: bool = False) -> fx.GraphModule:
    """The eval-mode graph with BatchNorm folded and average pools as convolutions.

    A traced graph shares its submodules with the model it came from, so unless that model is
    yours to change (in_place), the rewrites change a copy of the modules the graph calls (and
    only those: the layers past the cut are not copied).
    """
    own = module if in_place else copy.deepcopy(fx.GraphModule(module, module.graph))
    return avg_pools_as_convolutions(fold_batchnorm(own.eval()))
