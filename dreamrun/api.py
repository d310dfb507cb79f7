"""The Python API, for notebooks: the CLI's config vocabulary, the same engine.

    from dreamrun import dream
    dreamed = dream(Image.open("photo.jpg"), target={"Mixed_6e": [12, 45]}, octaves=4)   # at 512 px, as the CLI
    dreamed = dream("photo.jpg", size=None)                                                # at the photo's own size
"""
import os
from typing import Any, Mapping, Optional

from omegaconf import OmegaConf
from PIL import Image

from dreamrun.config.compose import compose_config
from dreamrun.jobs.dream import run_dream
from dreamrun.jobs.skeleton import validate
from dreamrun.outputs.images import load_image, resize_long_side, to_pil, to_rgb, to_tensor


class _FromConfig:
    """The default of a keyword the config supplies, so dream() and the CLI cannot drift apart."""

    def __repr__(self) -> str:
        return "<the CLI's default>"


_FROM_CONFIG = _FromConfig()


def dream(
    image: Image.Image | str | os.PathLike,
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
    smoothing: float = 0.0,
    laplacian_levels: int = 0,
    luminance_only: bool = False,
) -> Image.Image:
    """DeepDream one image and return the dream as a PIL image.

    target: layer -> "all" | [channel, ...] | {"channels": ..., "weight": ..., "reduction": ...};
    None takes the model preset's default target. weights: the preset's default unless given (a
    weights name, a state-dict path, or None for random). size: the long side in px the image is
    resized to first, up or down; by default the CLI's (input.size, 512 px as shipped), None
    keeps the image's own size. guide: an image to dream towards (guide.path). smoothing,
    laplacian_levels, luminance_only: the gradient options (gradient.*), all off by default.
    """
    cfg = compose_config(f"model={model}")
    cfg.octaves, cfg.octave_scale, cfg.steps, cfg.step_size = octaves, octave_scale, steps, step_size
    cfg.jitter.max_shift, cfg.seed, cfg.device = max_shift, seed, device
    if size is not _FROM_CONFIG:
        cfg.input.size = size
    if weights is not _FROM_CONFIG:
        cfg.model.weights = None if weights is None else str(weights)
    if target is not None:
        cfg.target = OmegaConf.create(dict(target))
    cfg.guide.path = None if guide is None else str(guide)
    cfg.gradient.smoothing, cfg.gradient.laplacian_levels = smoothing, laplacian_levels
    cfg.gradient.luminance_only = luminance_only
    validate(cfg)  # before the image is touched: a bad size would otherwise shrink it first
    pil = load_image(image) if isinstance(image, (str, os.PathLike)) else to_rgb(image)
    result = run_dream(cfg, to_tensor(resize_long_side(pil, cfg.input.size)))
    return to_pil(result.image)
