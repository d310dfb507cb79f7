"""Images out: a tensor (1, 3, H, W) in [0, 1] as a Pillow image, to save or show."""
import torch
from PIL import Image


def to_pil(image: torch.Tensor) -> Image.Image:
    pixels = (image.detach()[0].clamp(0, 1) * 255.0).round().to(torch.uint8)  # (3, H, W)
    return Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy())
