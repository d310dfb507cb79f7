"""Activation heat-maps: where in the image a layer responds, colour-mapped at the image's size."""
import torch
import torch.nn.functional as F

# anchor colours of a perceptually ordered dark-to-bright map (black, purple, red, orange, pale yellow)
_ANCHORS = torch.tensor([
    [0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99],
    [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164],
], dtype=torch.float32) / 255.0


def colour_map(values: torch.Tensor) -> torch.Tensor:
    """(H, W) in [0, 1] -> (3, H, W) RGB, by linear interpolation between the anchor colours."""
    anchors = _ANCHORS.to(values.device)
    position = values.clamp(0, 1) * (len(anchors) - 1)  # (H, W)
    low = position.floor().long().clamp(max=len(anchors) - 2)
    frac = (position - low).unsqueeze(-1)  # (H, W, 1)
    rgb = anchors[low] * (1 - frac) + anchors[low + 1] * frac  # (H, W, 3)
    return rgb.permute(2, 0, 1)


def heatmap(activation: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(1, C, h, w) activation -> (3, H, W) colour-mapped channel mean of its square (the objective's density)."""
    energy = activation.float().pow(2).mean(dim=1, keepdim=True)  # (1, 1, h, w)
    energy = F.interpolate(energy, size=size, mode="bilinear", align_corners=False)[0, 0]  # (H, W)
    energy = energy - energy.min()
    return colour_map(energy / energy.max().clamp_min(1e-30))
