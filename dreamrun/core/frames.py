"""What one frame of a zoom or a video dreams with: its objective and ascent, and for a zoom its motion.
The jobs make one per frame from the config, constants and keyframes alike (jobs.frame_plan)."""
from dataclasses import dataclass, field
from typing import Mapping

from dreamrun.core.engine import Ascent
from dreamrun.core.tiles import ObjectiveFn


@dataclass(frozen=True)
class FrameSettings:
    objective: ObjectiveFn
    ascent: Ascent
    factor: float = 0.0  # zoom: the part of each side cropped away before this frame
    rotation: float = 0.0  # zoom: degrees, counter-clockwise
    shift: tuple[float, float] = (0.0, 0.0)  # zoom: px (x, y) the view moves by
    logged: Mapping[str, float] = field(default_factory=dict)  # the keyframed values, for the observers
