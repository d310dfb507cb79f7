"""Images in: any Pillow-readable file, the sample photo or noise, as an RGB tensor (1, 3, H, W) in [0, 1]."""
import os
import warnings
from importlib import resources
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from dreamrun.errors import DreamError
from dreamrun.inputs.files import input_file

SAMPLE_IMAGE = "coffee.jpg"
MIN_SIDE = 16  # px: smaller is an icon or a mistake, not a picture to upscale and dream on


def sample_image() -> Image.Image:
    with resources.files("dreamrun.assets").joinpath(SAMPLE_IMAGE).open("rb") as f:
        return to_rgb(Image.open(f))


def load_image(path: str | os.PathLike) -> Image.Image:
    path = input_file(path, "image file")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its pixel limit and twice it; refuse those too. Image.open
            # reads just the header, so a bomb is refused before any of it is decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.seek(0)  # animated formats: the first frame
                image.load()
                image = to_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DreamError(f"refusing {path} unread: {e}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DreamError(f"cannot read image {path}: {e}") from None
    if min(image.size) < MIN_SIDE:
        raise DreamError(f"{path} is {image.width}x{image.height} px: too small to dream on "
                         f"(at least {MIN_SIDE} px a side)")
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; grayscale, 16-bit, float, CMYK, palette and alpha images to 8-bit RGB."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "F" and pixels.max() > 255 else 255.0
        if image.mode == "F":
            top = max(float(pixels.max()), 1e-12)
        image = Image.fromarray(np.clip(pixels / top * 255.0, 0, 255).round().astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # transparent pixels carry arbitrary colours: show them over white, as viewers do
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def fit_long_side(image: Image.Image, max_side: Optional[int], upscale: bool = False) -> Image.Image:
    """image with its long side at most max_side (None: as it is); a smaller one is enlarged to it only
    with upscale: a dream of a blurred enlargement shows the blur, and costs the pixels it added."""
    if max_side is None or (max(image.size) < max_side and not upscale):
        return image
    return resize_long_side(image, max_side)


def size_note(before: tuple[int, int], after: tuple[int, int], max_side: Optional[int], what: str = "input") -> str:
    """The line that says how the input's size was set: resized, or kept though smaller than input.size."""
    if before != after:
        return f"{what}: {before[0]}x{before[1]} px, dreamed at {after[0]}x{after[1]} px (input.size={max_side})"
    if max_side is not None and max(before) < max_side:
        return (f"{what}: {before[0]}x{before[1]} px, dreamed at that size (smaller than input.size={max_side}; "
                "input.upscale=true enlarges it)")
    return ""


def resize_long_side(image: Image.Image, size: Optional[int]) -> Image.Image:
    if size is None or max(image.size) == size:
        return image
    scale = size / max(image.size)
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(new_size, Image.Resampling.LANCZOS)


def to_tensor(image: Image.Image) -> torch.Tensor:
    pixels = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy())  # (H, W, 3)
    return pixels.permute(2, 0, 1).unsqueeze(0).float() / 255.0  # (1, 3, H, W)


def noise(size: int, generator: torch.Generator) -> torch.Tensor:
    """Mid-grey uniform noise, drawn on the CPU so the same seed gives the same noise on any device."""
    return 0.5 + 0.2 * (torch.rand(1, 3, size, size, generator=generator) - 0.5)
