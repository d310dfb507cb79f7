"""Each frame's settings of a zoom or a video, from its config: constants and keyframes alike.

    python -m dreamrun mode=zoom ... 'zoom.rotation={0: 0, 60: 2, 120: -1}' 'zoom.shift={0: [0, 0], 90: [3, 0]}'
    python -m dreamrun mode=zoom ... 'step_size={0: 0.01, 100: 0.03}' zoom.easing=smooth
    python -m dreamrun mode=zoom ... 'target.block_12={channels: all, weight: {0: 1, 60: 0}}'

A setting's value at a frame is a function of the frame alone, so a resumed run goes on along the same curves.
"""
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from omegaconf import OmegaConf

from dreamrun.config.schema import DreamConfig
from dreamrun.core.keyframes import Curve, Value, curve
from dreamrun.core.objectives import Objective
from dreamrun.errors import DreamError


@dataclass(frozen=True)
class FramePlan:
    curves: Mapping[str, Curve]  # setting -> its curve: factor, rotation, shift, step_size, steps_per_frame
    easing: str
    frames: Optional[int]  # how many frames there are (None: not known ahead, a video without max_frames)
    frames_key: str  # the key that sets frames, for messages

    def value(self, name: str, frame: int) -> Value:
        return self.curves[name].at(frame, self.easing)

    def steps(self, frame: int) -> int:
        return round(self.value("steps_per_frame", frame))

    def logged(self, frame: int, objective: Objective) -> dict[str, float]:
        """The keyframed settings' values at frame (a constant is not logged), with the keyframed weights."""
        values: dict[str, float] = {}
        for name, setting in self.curves.items():
            if setting.constant:
                continue
            value = setting.at(frame, self.easing)
            if isinstance(value, tuple):
                values.update({f"{name}_x": value[0], f"{name}_y": value[1]})
            else:
                values[name] = value
        values.update({f"weight/{term.name}": term.weight for term in objective.terms
                       if term.weight_curve is not None and not term.weight_curve.constant})
        return values

    def check_weights(self, objective: Objective) -> None:
        """A keyframed target weight past the last frame is refused, as every other keyframe is."""
        for term in objective.terms:
            if term.weight_curve is not None and self.frames is not None and term.weight_curve.points[-1][0] >= self.frames:
                raise DreamError(f"target.{term.layer}.weight: keyframe {term.weight_curve.points[-1][0]} is past the "
                                 f"last frame ({self.frames_key}={self.frames} makes frames 0-{self.frames - 1})")


def zoom_plan(cfg: DreamConfig) -> FramePlan:
    zoom = cfg.zoom
    settings = {
        "factor": (zoom.factor, "zoom.factor", False, lambda v: 0 <= v < 0.5,
                   "is the part of each side cropped per frame: 0 to 0.5 (e.g. 0.02)"),
        "rotation": (zoom.rotation, "zoom.rotation", False, lambda v: True, "must be a number of degrees"),
        "shift": ([0, 0] if zoom.shift is None else zoom.shift, "zoom.shift", True, lambda v: True, "must be [x, y] in px per frame"),
        "step_size": (cfg.step_size, "step_size", False, lambda v: v > 0, "must be a positive number"),
        "steps_per_frame": (zoom.steps_per_frame, "zoom.steps_per_frame", False,
                            lambda v: v >= 0 and float(v).is_integer(), "must be a whole number, 0 or more"),
    }
    return _plan(settings, _name(zoom.easing), zoom.frames, "zoom.frames")


def video_plan(cfg: DreamConfig) -> FramePlan:
    video = cfg.video
    settings = {
        "step_size": (cfg.step_size, "step_size", False, lambda v: v > 0, "must be a positive number"),
        "steps_per_frame": (video.steps_per_frame, "video.steps_per_frame", False,
                            lambda v: v >= 0 and float(v).is_integer(), "must be a whole number, 0 or more"),
    }
    return _plan(settings, _name(video.easing), video.max_frames, "video.max_frames")


def _plan(settings: Mapping[str, tuple[Any, str, bool, Callable[[float], bool], str]], easing: str,
          frames: Optional[int], frames_key: str) -> FramePlan:
    curves = {}
    for name, (value, key, pair, fits, rule) in settings.items():
        setting = curve(_plain(value), key, frames=frames, pair=pair, frames_key=frames_key)
        for frame, point in setting.points:
            if not all(math.isfinite(v) and fits(v) for v in (point if isinstance(point, tuple) else (point,))):
                where = key if setting.constant else f"{key}[{frame}]"
                raise DreamError(f"{where} {rule}, got {_shown(point)}")
        curves[name] = setting
    return FramePlan(curves, easing, frames, frames_key)


def _plain(value: Any) -> Any:
    """An OmegaConf container as plain dicts and lists."""
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def _shown(point: Value) -> str:
    return f"[{point[0]:g}, {point[1]:g}]" if isinstance(point, tuple) else f"{point:g}"


def _name(value: Any) -> str:
    return getattr(value, "value", str(value))
