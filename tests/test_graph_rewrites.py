import torch
import torch.nn.functional as F
from torch import fx, nn

from dreamrun.nets.build import build_model
from dreamrun.nets.feature_net import feature_net
from dreamrun.nets.rewrites import BoxFilter, speed_up


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
