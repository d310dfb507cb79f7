"""The Python API, for notebooks: the CLI's config vocabulary, the same engine.

    from dreamrun import dream
    dreamed = dream(Image.open("photo.jpg"), target={"Mixed_6e": [12, 45]}, octaves=4)   # at 512 px, as the CLI
    dreamed = dream("photo.jpg", size=None)                                                # at the photo's own size
    dreamed.info["dreamrun"]["gain"]                     # the metrics come with the image (metrics.json's keys)
"""
import os
import re
import sys
from typing import Any, Mapping, Optional

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from PIL import Image

from dreamrun.config.compose import compose_config
from dreamrun.config.hydra_errors import CONFIG_ERRORS, one_line
from dreamrun.config.schema import InputKind
from dreamrun.errors import DreamError
from dreamrun.inputs.images import fit_long_side, load_image, to_rgb, to_tensor
from dreamrun.inputs.masks import load_mask
from dreamrun.jobs.dream import prepare, run_dream
from dreamrun.jobs.skeleton import load_input, validate
from dreamrun.nets.backends import backend_settings
from dreamrun.outputs.images import to_pil
from dreamrun.outputs.progress import ProgressBar


class _FromConfig:
    """The default of a keyword the config supplies, so dream() and the CLI cannot drift apart."""

    def __repr__(self) -> str:
        return "<the CLI's default>"


_FROM_CONFIG = _FromConfig()


CONVERSIONS = {"ndarray": ": PIL.Image.fromarray(array) makes one (H x W x 3, uint8)",
               "Tensor": ": torchvision.transforms.functional.to_pil_image(tensor) makes one (3 x H x W, 0-1)"}

# dream()'s keywords -> the config keys they set (the CLI's names)
CONFIG_KEYS = {"octaves": "octaves", "octave_scale": "octave_scale", "steps": "steps", "step_size": "step_size",
               "max_shift": "jitter.max_shift", "seed": "seed", "device": "device",
               "smoothing": "gradient.smoothing", "laplacian_levels": "gradient.laplacian_levels",
               "luminance_only": "gradient.luminance_only", "guide": "guide.path", "size": "input.size",
               "weights": "model.weights", "target": "target", "upscale": "input.upscale",
               "mask": "mask.path", "mask_feather": "mask.feather", "mask_invert": "mask.invert",
               "param": "param", "transforms": "transforms", "reduction": "reduction"}


def dream(
    image: Optional[Image.Image | str | os.PathLike],
    *,
    target: Optional[Mapping[str, Any]] = None,
    model: str = "inception_v3",
    weights: Any = _FROM_CONFIG,
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps: int = 10,
    step_size: float = 0.01,
    max_shift: int = 32,
    size: Optional[int] | _FromConfig = _FROM_CONFIG,
    seed: int = 0,
    device: str = "auto",
    guide: Optional[str | os.PathLike] = None,
    mask: Optional[str | os.PathLike] = None,
    mask_feather: float = 0.0,
    mask_invert: bool = False,
    smoothing: float = 0.0,
    laplacian_levels: int = 0,
    luminance_only: bool = False,
    upscale: bool = False,
    param: str = "pixel",
    transforms: Any = "none",
    reduction: str = "mean_square",
    progress: Optional[bool] = None,
) -> Image.Image:
    """DeepDream one image and return the dream as a PIL image.

    target: layer -> "all" | [channel, ...] | {"channels": ..., "weight": ..., "reduction": ...};
    None takes the model preset's default target. weights: the preset's default unless given (a
    weights name, a state-dict path, or None for random). size: the long side's maximum in px, a larger
    image is shrunk to first; by default the CLI's (input.size, 512 px as shipped), None keeps the image's
    own size. upscale: enlarge a smaller image to size, too. guide: an image to dream towards (guide.path).
    mask: an image of where to dream (white: dream, black: keep exactly; mask.path), mask_feather its soft
    edge in px, mask_invert to dream where it is black. smoothing,
    laplacian_levels, luminance_only: the gradient options (gradient.*), all off by default.
    Feature visualisation: image=None starts from noise (size x size px; the CLI's input=noise); param="fft"
    climbs a decorrelated, 1/f-scaled spectrum (octaves=1; step_size is Adam's learning rate, 0.05 suits it);
    transforms="lucid" (or a list, as on the CLI) moves the image a little every step; reduction="mean" makes
    a target's mean activation the objective where it names no reduction.
    progress: a bar of the steps (True), nothing (False), or by default one wherever a person watches:
    a notebook (Jupyter) or a terminal.

    Returns the dream; its `info["dreamrun"]` holds the run's metrics, as metrics.json does for the CLI
    (gain, objective_before/after, seconds, device, precision, per-target activations).
    """
    try:
        return _dream(image, target, model, weights, octaves, octave_scale, steps, step_size, max_shift, size,
                      seed, device, guide, mask, mask_feather, mask_invert, smoothing, laplacian_levels,
                      luminance_only, upscale, param, transforms, reduction, progress)
    except DreamError as e:
        raise DreamError(in_api_terms(str(e))) from None


def _dream(image, target, model, weights, octaves, octave_scale, steps, step_size, max_shift, size, seed, device,
           guide, mask, mask_feather, mask_invert, smoothing, laplacian_levels, luminance_only, upscale,
           param, transforms, reduction, progress) -> Image.Image:
    settings = {"octaves": octaves, "octave_scale": octave_scale, "steps": steps, "step_size": step_size,
                "max_shift": max_shift, "seed": seed, "device": device, "smoothing": smoothing,
                "laplacian_levels": laplacian_levels, "luminance_only": luminance_only, "upscale": upscale,
                "guide": None if guide is None else str(guide), "mask": None if mask is None else str(mask),
                "mask_feather": mask_feather, "mask_invert": mask_invert, "param": param,
                "transforms": transforms, "reduction": reduction}
    if size is not _FROM_CONFIG:
        settings["size"] = size
    if weights is not _FROM_CONFIG:
        settings["weights"] = None if weights is None else str(weights)
    if target is not None:
        if not isinstance(target, Mapping):
            raise DreamError(f"target must map layers to channels, like {{'Mixed_6c': 'all'}}, "
                             f"not a {type(target).__name__}")
        settings["target"] = dict(target)
    cfg = _config(model, settings)
    if image is None:
        cfg.input.kind = InputKind.noise
    validate(cfg)  # before the image is touched: a bad size would otherwise shrink it first
    image = _input(image, cfg)
    where = load_mask(cfg.mask, tuple(image.shape[-2:]))
    dreamer = prepare(cfg, *image.shape[-2:], image=image)
    watched = in_notebook() or sys.stderr.isatty()
    bar = ProgressBar(watched if progress is None else progress, notebook=in_notebook())
    with backend_settings(dreamer.backends):  # as a job's skeleton sets them
        try:
            result = run_dream(cfg, image, dreamer, observers=[bar], mask=where)
        finally:
            bar.close()
    dreamed = to_pil(result.image)
    dreamed.info["dreamrun"] = result.metrics
    return dreamed


def _input(image: Optional[Image.Image | str | os.PathLike], cfg: DictConfig) -> "torch.Tensor":
    """dream()'s image as (1, 3, H, W) in [0, 1], fitted to cfg.input.size; None: cfg's noise."""
    if image is None:
        return load_input(cfg, torch.Generator().manual_seed(cfg.seed))
    if isinstance(image, (str, os.PathLike)):
        pil = load_image(image)
    elif isinstance(image, Image.Image):
        pil = to_rgb(image)
    else:
        raise DreamError(f"image must be a PIL image or a path to one, not a {type(image).__name__}"
                         + CONVERSIONS.get(type(image).__name__, ""))
    return to_tensor(fit_long_side(pil, cfg.input.size, cfg.input.upscale))


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel, where a person watches though stderr is no terminal."""
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def in_api_terms(message: str) -> str:
    """A message of the shared checks with the CLI's keys as dream()'s keywords (model.weights= as weights=)."""
    for keyword, key in CONFIG_KEYS.items():
        if keyword != key:
            message = re.sub(rf"(?<![\w./-]){re.escape(key)}(?=[=\s,:;)]|$)", keyword, message)
    return message


def _config(model: str, settings: dict[str, Any]) -> DictConfig:
    """The CLI's config for this model preset, with dream()'s keywords set: a value of the wrong type is
    a DreamError naming the keyword, as a wrong override is a one-line config error on the command line."""
    try:
        cfg = compose_config(f"model={model}")
    except CONFIG_ERRORS as e:
        raise DreamError(one_line(e, [f"model={model}"])) from None
    for keyword, value in settings.items():
        try:
            if keyword == "target":
                cfg.target = OmegaConf.create(value)
            else:
                OmegaConf.update(cfg, CONFIG_KEYS[keyword], value, merge=False)
        except OmegaConfBaseException as e:
            raise DreamError(f"{keyword}={value!r}: {str(e).splitlines()[0]}") from None
    return cfg
