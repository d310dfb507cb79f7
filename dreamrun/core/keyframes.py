"""Keyframes: a setting that changes over a zoom's or a video's frames.

    'zoom.rotation={0: 0, 60: 2, 120: -1}'   # frame -> value, interpolated between; a number is a constant
    'zoom.shift={0: [0, 0], 90: [3, -1]}'    # pairs (x, y) interpolate element by element

Before the first keyframe a curve holds its first value, after the last its last. Easing: `linear`, or
`smooth` (smoothstep: each segment starts and ends at rest).
"""
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from dreamrun.errors import DreamError

Value = float | tuple[float, ...]


@dataclass(frozen=True)
class Curve:
    points: tuple[tuple[int, Value], ...]  # (frame, value), frames increasing; one point: a constant

    @property
    def constant(self) -> bool:
        return len(self.points) == 1

    @property
    def values(self) -> list[Value]:
        return [value for _, value in self.points]

    def at(self, frame: int, easing: str = "linear") -> Value:
        first, last = self.points[0], self.points[-1]
        if frame <= first[0]:
            return first[1]
        if frame >= last[0]:
            return last[1]
        for (start, before), (end, after) in zip(self.points, self.points[1:]):
            if start <= frame <= end:
                t = (frame - start) / (end - start)
                if easing == "smooth":  # else linear (config.schema.Easing holds the choices)
                    t = t * t * (3 - 2 * t)
                if isinstance(before, tuple):
                    return tuple(b + t * (a - b) for b, a in zip(before, after))
                return before + t * (after - before)
        raise AssertionError("frames are increasing")


def curve(value: Any, key: str, *, frames: Optional[int] = None, pair: bool = False,
          frames_key: str = "zoom.frames") -> Curve:
    """value (a number, [x, y] where pair, or keyframes {frame: value}) as a Curve; a DreamError naming key
    where it is none of these, where frames are not increasing whole numbers (0 or more), or past `frames`."""
    if not isinstance(value, Mapping):
        return Curve(((0, _value(value, key, pair)),))
    if not value:
        raise DreamError(f"{key}: no keyframes; give a value, or {{frame: value, ...}}")
    points = []
    for frame, point in value.items():
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise DreamError(f"{key}: keyframe {frame!r} is not a frame number (0, 1, 2, ...)")
        if points and frame <= points[-1][0]:
            raise DreamError(f"{key}: keyframes must go forward in time: frame {frame} comes after frame "
                             f"{points[-1][0]}")
        if frames is not None and frame >= frames:
            raise DreamError(f"{key}: keyframe {frame} is past the last frame ({frames_key}={frames} makes frames "
                             f"0-{frames - 1})")
        points.append((frame, _value(point, f"{key}[{frame}]", pair)))
    return Curve(tuple(points))


def _value(value: Any, key: str, pair: bool) -> Value:
    numbers = list(value) if pair and isinstance(value, Sequence) and not isinstance(value, str) else [value]
    if (pair and len(numbers) != 2) or not all(_is_number(n) for n in numbers):
        shape = "[x, y] in px" if pair else "a number"
        raise DreamError(f"{key} must be {shape} or keyframes {{frame: value, ...}}, not {value!r}")
    return tuple(float(n) for n in numbers) if pair else float(numbers[0])


def _is_number(value: Any) -> bool:
    """A real number (NaN and infinity too: what range each setting takes is its owner's to check)."""
    return not isinstance(value, bool) and isinstance(value, (int, float))
