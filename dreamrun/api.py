"""The Python API, for notebooks: the CLI's config vocabulary, the same engine.

    from dreamrun import dream
    dreamed = dream(Image.open("photo.jpg"), target={"Mixed_6e": [12, 45]}, octaves=4)
"""
import os
from typing import Any, Mapping, Optional

from omegaconf import OmegaConf
from PIL import Image

from dreamrun.config.compose import compose_config
from dreamrun.jobs.dream import run_dream
from dreamrun.jobs.skeleton import validate
from dreamrun.outputs.images import load_image, resize_long_side, to_pil, to_rgb, to_tensor

_UNSET = object()


def dream(
    image: Image.Image | str | os.PathLike,
    *,
    target: Optional[Mapping[str, Any]] = None,
    model: str = "inception_v3",
    weights: Any = _UNSET,
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps: int = 10,
    step_size: float = 0.01,
    max_shift: int = 32,
    size: Optional[int] = None,
    seed: int = 0,
    device: str = "auto",
    guide: Optional[str | os.PathLike] = None,
    smoothing: float = 0.0,
    laplacian_levels: int = 0,
    luminance_only: bool = False,
) -> Image.Image:
    """DeepDream one image and return the dream as a PIL image.

    target: layer -> "all" | [channel, ...] | {"channels": ..., "weight": ..., "reduction": ...};
    None takes the model preset's default target. weights: the preset's default unless given (a
    weights name, a state-dict path, or None for random). size: resize the long side first (None
    keeps it). guide: an image to dream towards (guide.path). smoothing, laplacian_levels,
    luminance_only: the gradient options (gradient.*), all off by default.
    """
    cfg = compose_config(f"model={model}")
    cfg.octaves, cfg.octave_scale, cfg.steps, cfg.step_size = octaves, octave_scale, steps, step_size
    cfg.jitter.max_shift, cfg.seed, cfg.device, cfg.input.size = max_shift, seed, device, size
    if weights is not _UNSET:
        cfg.model.weights = None if weights is None else str(weights)
    if target is not None:
        cfg.target = OmegaConf.create(dict(target))
    cfg.guide.path = None if guide is None else str(guide)
    cfg.gradient.smoothing, cfg.gradient.laplacian_levels = smoothing, laplacian_levels
    cfg.gradient.luminance_only = luminance_only
    validate(cfg)  # before the image is touched: a bad size would otherwise shrink it first
    pil = load_image(image) if isinstance(image, (str, os.PathLike)) else to_rgb(image)
    result = run_dream(cfg, to_tensor(resize_long_side(pil, size)))
    return to_pil(result.image)
