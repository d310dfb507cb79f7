"""Optical flow between two video frames, and carrying a dream along it (OpenCV's DIS or Farneback flow).

A flow from a to b is (2, H, W) in px, (dx, dy) per pixel: a's pixel p shows what b shows at p + flow(p).
Warping the previous frame's dream by the flow from this frame to the previous one puts its dreamed
detail where the picture moved. Pixels the flow cannot follow (they came into view, or the forward and
backward flows disagree) are marked occluded: there the new frame starts from itself.
"""
import numpy as np
import torch
import torch.nn.functional as F


def _gray(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> (H, W) uint8 luminance, what OpenCV's flows take."""
    luma = (image[0, 0] * 0.299 + image[0, 1] * 0.587 + image[0, 2] * 0.114).clamp(0, 1)
    return (luma * 255).round().to(torch.uint8).cpu().numpy()


def estimate_flow(a: torch.Tensor, b: torch.Tensor, method: str = "dis") -> torch.Tensor:
    """The flow from frame a to frame b, both (1, 3, H, W) in [0, 1]: (2, H, W) in px on the CPU.
    method: "dis" (OpenCV's Dense Inverse Search: fast, sharp at motion edges) or "farneback"."""
    return _flow(_gray(a), _gray(b), method)


def _flow(first: np.ndarray, second: np.ndarray, method: str) -> torch.Tensor:
    import cv2  # the video extra: dreamrun without it never gets here

    if method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(first, second, None)
    else:
        flow = cv2.calcOpticalFlowFarneback(first, second, None, pyr_scale=0.5, levels=4, winsize=15,
                                            iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
    return torch.from_numpy(np.ascontiguousarray(flow.transpose(2, 0, 1)))


def _sampling_grid(flow: torch.Tensor) -> torch.Tensor:
    """grid_sample's grid (1, H, W, 2) in [-1, 1] for the positions p + flow(p)."""
    _, height, width = flow.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=flow.dtype), torch.arange(width, dtype=flow.dtype),
                            indexing="ij")
    x = (xs + flow[0]) * 2 / width + 1 / width - 1  # pixel centres, as align_corners=False reads them
    y = (ys + flow[1]) * 2 / height + 1 / height - 1
    return torch.stack([x, y], dim=-1).unsqueeze(0)


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """image (1, C, H, W) sampled at p + flow(p): with the flow from frame b to frame a, a's image moved
    onto b. Bicubic, so detail carried over many frames stays sharp; edges repeat the border."""
    grid = _sampling_grid(flow).to(image.device, image.dtype)
    return F.grid_sample(image, grid, mode="bicubic", padding_mode="border", align_corners=False)


def occlusion(backward: torch.Tensor, forward: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: where this frame's pixels cannot be followed back to the previous frame.

    backward: the flow from this frame to the previous one; forward: from the previous one to this.
    A followed pixel goes back and forth to where it started (Sundaram, Brox & Keutzer 2010's test);
    one whose way back leaves the previous frame came into view."""
    way_back = _sampling_grid(backward)
    forward_there = F.grid_sample(forward.unsqueeze(0), way_back, mode="bilinear",
                                  padding_mode="border", align_corners=False)[0]
    round_trip = (backward + forward_there).pow(2).sum(0)
    scale = backward.pow(2).sum(0) + forward_there.pow(2).sum(0)
    disagree = round_trip > 0.01 * scale + 0.5
    outside = (way_back[0].abs() > 1).any(dim=-1)  # beyond the outer pixels' edges
    return disagree | outside


def carry(previous_dream: torch.Tensor, previous_frame: torch.Tensor, frame: torch.Tensor, blend: float,
          method: str = "dis") -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Where this frame's dream starts: blend · the previous dream moved along the flow + (1 - blend) ·
    frame, and the frame itself where the flow cannot follow. All (1, 3, H, W) in [0, 1], any device.
    Also returns where the dream was carried, (1, 1, H, W) 1.0 or 0.0 (occluded), and the flow's mean
    magnitude in px and the occluded fraction."""
    now, before = _gray(frame), _gray(previous_frame)
    backward, forward = _flow(now, before, method), _flow(before, now, method)
    occluded = occlusion(backward, forward).to(frame.device)
    start = blend * warp(previous_dream, backward) + (1 - blend) * frame
    start = torch.where(occluded, frame, start).clamp(0.0, 1.0)
    carried = (~occluded).to(frame.dtype)[None, None]
    return start, carried, {"magnitude": backward.pow(2).sum(0).sqrt().mean().item(),
                            "occluded": occluded.float().mean().item()}


def blend_only(previous_dream: torch.Tensor, frame: torch.Tensor, blend: float) -> torch.Tensor:
    """The plain linear blend, no flow: blend · the previous dream where it was + (1 - blend) · frame."""
    return (blend * previous_dream + (1 - blend) * frame).clamp(0.0, 1.0)
