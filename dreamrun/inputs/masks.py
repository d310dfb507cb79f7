"""A mask: where a dream may change the image. White dreams, black keeps the input exactly, grey dreams
partly (its step scaled by the grey); in a mask with transparency, the opaque part dreams."""
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageFilter

from dreamrun.config.schema import MaskConfig
from dreamrun.inputs.files import input_file
from dreamrun.inputs.images import load_image


def load_mask(cfg: MaskConfig, size: tuple[int, int]) -> Optional[torch.Tensor]:
    """The mask cfg names as (1, 1, H, W) in [0, 1] for an image of size (H, W), or None without one:
    its grey (or, where it has transparency, its opacity: a mask painted on a transparent layer), resized
    to the image, feathered (a Gaussian blur of sigma feather / 2 px), inverted if asked."""
    if cfg.path is None:
        return None
    height, width = size
    mask = load_image(cfg.path).convert("L")  # refuses what is not an image, in one line
    with Image.open(input_file(cfg.path, "image file")) as raw:
        if raw.mode in ("RGBA", "LA", "PA") or "transparency" in raw.info:
            mask = raw.convert("RGBA").getchannel("A")
    mask = mask.resize((width, height), Image.BILINEAR)
    if cfg.feather > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(cfg.feather / 2))
    weights = torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255)[None, None]  # (1, 1, H, W)
    return 1 - weights if cfg.invert else weights
