"""A mask: where a dream may change the image. White dreams, black keeps the input exactly, grey dreams
partly (its step scaled by the grey)."""
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageFilter

from dreamrun.config.schema import MaskConfig
from dreamrun.inputs.images import load_image


def load_mask(cfg: MaskConfig, size: tuple[int, int]) -> Optional[torch.Tensor]:
    """The mask cfg names as (1, 1, H, W) in [0, 1] for an image of size (H, W), or None without one:
    resized to the image, feathered (a Gaussian blur of sigma feather / 2 px), inverted if asked."""
    if cfg.path is None:
        return None
    height, width = size
    mask = load_image(cfg.path).convert("L").resize((width, height), Image.BILINEAR)
    if cfg.feather > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(cfg.feather / 2))
    weights = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255)[None, None]  # (1, 1, H, W)
    return 1 - weights if cfg.invert else weights
