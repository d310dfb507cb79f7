"""Video dreams: each frame of a video dreamed, starting from the previous dream carried along the motion.

Pure like the engine: frames (tensors) and plain parameters in, dreamed frames reported to observers
(`on_frames_start`, `on_flow`, `on_frame`, `on_frames_end`) beside the engine's own per-step hooks.
"""
from typing import Callable, Iterable, Optional, Sequence

import torch

from dreamrun.core.engine import dream
from dreamrun.core.flow import blend_only, carry
from dreamrun.core.frames import FrameSettings
from dreamrun.core.observers import Observer
from dreamrun.core.zoom import quantize


def frame_start(previous_dream: Optional[torch.Tensor], previous_frame: Optional[torch.Tensor],
                frame: torch.Tensor, *, blend: float,
                flow: Optional[str]) -> tuple[torch.Tensor, Optional[torch.Tensor], Optional[dict]]:
    """Where a frame's dream starts, where the previous dream was carried into it ((1, 1, H, W) in
    {0, 1}, None: nowhere) and the flow's figures (None without flow). The frame itself for the first
    frame or blend 0; else the previous dream blended in, moved along the flow unless flow is None."""
    if previous_dream is None or blend == 0:
        return frame, None, None
    if flow is None:
        return blend_only(previous_dream, frame, blend), torch.ones_like(frame[:, :1]), None
    return carry(previous_dream, previous_frame, frame, blend, flow)


def hold_carried(start: torch.Tensor, dreamed: torch.Tensor, carried: Optional[torch.Tensor],
                 hold: float) -> torch.Tensor:
    """The dream with its new steps scaled by 1 - hold where the previous dream was carried: there
    the picture already holds its dream, and each frame's steps point a little elsewhere (a network
    is not shift-equivariant, so the same content moved dreams differently); pixels that came into
    view take the whole of their steps."""
    if carried is None or hold == 0:
        return dreamed
    return start + (1 - hold * carried) * (dreamed - start)


def video_dream(
    frames: Iterable[torch.Tensor],
    frame_settings: Callable[[int], FrameSettings],
    *,
    blend: float,
    hold: float,
    flow: Optional[str],
    generator: torch.Generator,
    start: int = 0,
    previous: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
    total: Optional[int] = None,
    observers: Sequence[Observer] = (),
    mask: Optional[torch.Tensor] = None,
) -> Optional[torch.Tensor]:
    """Dream frames start, start+1, … of a video; returns the last dream (None if there was no frame).

    frames: the video's frames from frame `start` on, each (1, 3, H, W) in [0, 1] on the dream's device.
    previous: (frame start-1, its dream) when resuming. Frame k is dreamed with frame_settings(k)'s objective
    and ascent (frame 0 as a normal dream, each next one with fewer octaves and steps), from frame_start, its
    steps held back by `hold` where the previous dream was carried (hold_carried). flow: an OpenCV flow method (dis, farneback) or
    None for the plain blend. total: how many frames there will be, for the observers (None: unknown).
    mask (1, 1, H, W): where frames are dreamed; where it is 0 each frame is the video's own.
    """
    previous_frame, previous_dream = previous if previous else (None, None)
    for obs in observers:
        obs.on_frames_start(frames=total, start=start)
    index = start
    for index, frame in enumerate(frames, start=start):
        settings = frame_settings(index)
        for obs in observers:
            obs.on_frame_settings(frame=index, values=settings.logged)
        image, carried, figures = frame_start(previous_dream, previous_frame, frame, blend=blend, flow=flow)
        if figures is not None:
            for obs in observers:
                obs.on_flow(frame=index, magnitude=figures["magnitude"], occluded=figures["occluded"])
        dreamed = dream(image, settings.objective, settings.ascent, generator=generator, observers=observers,
                        mask=mask)
        # quantized as its PNG holds it: a resumed video goes on from exactly these pixels
        dreamed = hold_carried(image, dreamed, carried, hold)
        if mask is not None:  # the frame itself: the dream carried from the last frame stops at the mask too
            dreamed = torch.where(mask > 0, dreamed, frame)
        dreamed = quantize(dreamed)
        for obs in observers:
            obs.on_frame(frame=index, image=dreamed, rng_state=generator.get_state())
        previous_frame, previous_dream = frame, dreamed
    for obs in observers:
        obs.on_frames_end(image=previous_dream)
    return previous_dream
