from collections import Counter

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.utils._python_dispatch import TorchDispatchMode

from dreamrun.nets.build import build_model
from dreamrun.nets.feature_net import feature_net
from dreamrun.nets.rewrites import BoxFilter, cast_autocast_weights, speed_up


def test_box_filter_is_the_average_pool():
    x = torch.randn(2, 5, 17, 19)
    for kernel, stride, padding in [(3, 1, 1), (3, 2, 1), (5, 1, 2), (2, 2, 0)]:
        expected = F.avg_pool2d(x, kernel, stride, padding)
        assert torch.allclose(BoxFilter(kernel, stride, padding)(x), expected, atol=1e-6)


class PoolNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1) + F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


def test_rewritten_graph_computes_the_same_function():
    torch.manual_seed(0)
    net = PoolNet().eval()
    net.bn.running_mean.normal_()
    net.bn.running_var.uniform_(0.5, 2)
    x = torch.randn(1, 3, 20, 20)
    expected = net(x)
    fast = speed_up(fx.symbolic_trace(net))
    assert torch.allclose(fast(x), expected, atol=1e-5)
    kinds = [type(m).__name__ for m in fast.modules()]
    assert "BatchNorm2d" not in kinds and kinds.count("BoxFilter") == 1  # count_include_pad=False stays a pool


def test_inception_feature_net_has_no_batchnorm_or_avg_pool_left(compose_cfg):
    cfg = compose_cfg("model.weights=null")
    net = feature_net(build_model(cfg.model), cfg.model, ["Mixed_6e"])
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert not any(n.target is F.avg_pool2d for n in net.body.graph.nodes)


class OpCounter(TorchDispatchMode):
    """Every aten op a block runs, as a GPU would launch them one by one."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket).removeprefix("aten.")] += 1
        return func(*args, **(kwargs or {}))


def dreamer_step_ops(compose_cfg, *overrides: str) -> Counter:
    from dreamrun.core.engine import ascent_step
    from dreamrun.jobs.dream import prepare

    cfg = compose_cfg("model.weights=null", "log=none", "octaves=1", "device=cpu", *overrides)
    dreamer = prepare(cfg, 96, 96)
    image = torch.rand(1, 3, 96, 96)
    ascent_step(image, dreamer, 0.01, (3, 4))  # first call: kernels and caches made once
    with OpCounter() as counter:
        ascent_step(image, dreamer, 0.01, (3, 4))
    return counter.ops


def test_a_bf16_step_casts_no_weights_and_builds_no_kernels(compose_cfg):
    """autocast re-casts frozen fp32 weights at every forward (it caches only weights that require grad),
    one op per weight and bias; box filters built their kernel at every call. Both are done once now:
    a bf16 step casts the image in and the activations out, nothing else."""
    ops = dreamer_step_ops(compose_cfg, "target=mixed_6c", "precision=bf16")
    assert ops["_to_copy"] <= 4 and ops["full"] + ops["new_full"] == 0
    assert ops["convolution"] == ops["convolution_backward"] == 55


def test_inceptions_input_transform_is_folded_into_the_normalisation(compose_cfg):
    """transform_input rescales each channel apart (select, mul, add, unsqueeze, cat): gone from the step."""
    ops = dreamer_step_ops(compose_cfg, "target=mixed_6c", "precision=fp32")
    assert ops["select"] == ops["unsqueeze"] == 0 and ops["cat"] == 6  # the inception blocks' own


def test_weights_cast_once_compute_what_autocast_computes(compose_cfg):
    """The same arithmetic: bit for bit the activations and gradient autocast gives the fp32 weights."""
    cfg = compose_cfg("model=efficientnet_lite0", "model.weights=null")
    torch.manual_seed(0)
    model = build_model(cfg.model)
    image = torch.rand(1, 3, 96, 96)
    results = []
    for cast in (True, False):
        net = feature_net(model, cfg.model, ["block_5"])
        net.autocast_dtype = torch.bfloat16  # configure() would also cast the weights
        if cast:
            cast_autocast_weights(net.body, torch.bfloat16)
        x = image.clone().requires_grad_(True)
        act = net(x)["block_5"]
        (grad,) = torch.autograd.grad(act.float().pow(2).mean(), x)
        results.append((act, grad))
    assert next(net.body.parameters()).dtype == torch.float32  # the last net: autocast cast its weights
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
