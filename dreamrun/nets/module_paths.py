"""Tracing a network with torch.fx, each node named by the module path it ran in.

A preset's layer is a module path ("Mixed_6c", "_blocks.6"); the network is cut after the last node
traced inside that module. Nodes are named as torchvision's feature extraction names them, so that a
path means what it means there: a module's own call is its path ("Mixed_6c.branch3x3.conv"), an
operation inside a module is the module's path and the operation ("Mixed_6c.cat"), and a name met again
is numbered within its module ("layer1.0.relu", "layer1.0.relu_1").

dreamrun traces here rather than with torchvision's NodePathTracer so that networks torchvision does not
build (EfficientNet-Lite0, your own) never import torchvision, whose detection ops pull in torch's
compiler stack at import time, a large part of every start-up (benchmarks/README.md, Start-up).
"""
import re
from collections import Counter
from typing import Any, Callable

from torch import fx, nn

_FX_NUMBER = re.compile(r"_\d+$")  # fx numbers a repeated name across the whole graph (add, add_1, ...)


class ModulePathTracer(fx.Tracer):
    """An fx.Tracer that records node_paths: {node: its path}, in the order the nodes were traced."""

    def __init__(self) -> None:
        super().__init__()
        self.node_paths: dict[fx.Node, str] = {}
        self._module_path = ""
        self._times_seen: Counter = Counter()

    def call_module(self, module: nn.Module, forward: Callable, args: tuple, kwargs: dict) -> Any:
        outer, self._module_path = self._module_path, self.path_of_module(module)
        try:
            if self.is_leaf_module(module, self._module_path):
                return self.create_proxy("call_module", self._module_path, args, kwargs)
            return forward(*args, **kwargs)
        finally:
            self._module_path = outer

    def create_proxy(self, kind: str, target: Any, args: tuple, kwargs: dict, *rest: Any, **more: Any) -> fx.Proxy:
        proxy = super().create_proxy(kind, target, args, kwargs, *rest, **more)
        self.node_paths[proxy.node] = self._path(proxy.node)
        return proxy

    def _path(self, node: fx.Node) -> str:
        path = self._module_path
        if node.op != "call_module":
            path = f"{path}.{node.name}" if path else node.name
        path = _FX_NUMBER.sub("", path)  # numbered again below, within its module
        seen = self._times_seen[path]
        self._times_seen[path] += 1
        return f"{path}_{seen}" if seen else path
