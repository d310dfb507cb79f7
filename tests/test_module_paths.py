"""Nodes are named by the module path they ran in, as torchvision's feature extraction names them: a
preset's layer path must cut the network where it cuts it there."""
import subprocess
import sys

import pytest
import torch
from torchvision.models.feature_extraction import NodePathTracer

from dreamrun.nets.build import build_architecture
from dreamrun.nets.module_paths import ModulePathTracer

PRESETS = ["inception_v3", "googlenet", "resnet50", "vgg16", "efficientnet_lite0"]


def traced_paths(tracer, model: torch.nn.Module) -> list[str]:
    tracer.trace(model.eval())
    paths = tracer.node_paths if isinstance(tracer, ModulePathTracer) else tracer.node_to_qualname
    return list(paths.values())


@pytest.mark.parametrize("preset", PRESETS)
def test_every_node_of_a_preset_is_named_as_torchvision_names_it(compose_cfg, preset):
    """resnet50 calls each block's relu three times (relu, relu_1, relu_2); Inception-v3 and GoogLeNet
    name modules branch3x3_1 and call functions in them; Lite0 is traced through its own modules."""
    model = build_architecture(compose_cfg(f"model={preset}").model)
    ours, reference = traced_paths(ModulePathTracer(), model), traced_paths(NodePathTracer(), model)
    assert len(set(ours)) == len(ours) > 20  # a name for each node, and not one for all
    assert ours == reference


def test_a_network_torchvision_does_not_build_never_imports_it(tmp_path):
    """torchvision's ops import torch's compiler stack at import time, a large part of start-up."""
    script = ("import sys\n"
              "import torch\n"
              "from dreamrun.config.compose import compose_config\n"
              "from dreamrun.jobs.dreamer import build_dreamer\n"
              "cfg = compose_config('model=efficientnet_lite0', 'model.weights=null', 'input.size=64')\n"
              "build_dreamer(cfg)\n"
              "print('torchvision' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
