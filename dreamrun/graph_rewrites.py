"""Rewrites of the traced network that compute the same function, faster.

- BatchNorm folded into the convolution before it (eval mode: BN is a fixed affine map).
- avg_pool2d as a depthwise convolution with a box kernel: the same sums, but on CPU its
  backward runs 10-16x faster (0.5 vs 7.9 ms for a 768x30x30 map in bf16 here).
"""
import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.experimental.optimization import fuse


class BoxFilter(nn.Module):
    """avg_pool2d(kernel, stride, padding) with zero padding counted, as a depthwise convolution."""

    def __init__(self, kernel: int, stride: int, padding: int):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        weight = x.new_full((1, 1, self.kernel, self.kernel), 1.0 / self.kernel**2).expand(channels, 1, -1, -1)
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


def speed_up(module: fx.GraphModule) -> fx.GraphModule:
    """The eval-mode graph with BatchNorm folded and average pools as convolutions."""
    return avg_pools_as_convolutions(fuse(module.eval(), inplace=True))
