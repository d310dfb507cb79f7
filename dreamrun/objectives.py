"""Objectives: what the dream maximises, as small values that compose.

    objective = Term("Mixed_6e") + 0.5 * Term("Mixed_5b", channels=(12, 45))

Each term is the mean square of a layer's activation (all channels or a chosen set):
the original DeepDream's L2 objective, divided by the element count so its value does not
grow with image size and can be compared across octaves and images.
"""
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch

from dreamrun.errors import DreamError

Activations = Mapping[str, torch.Tensor]  # layer name -> (B, C, H, W)


@dataclass(frozen=True)
class Term:
    layer: str
    channels: Optional[tuple[int, ...]] = None  # None = every channel
    weight: float = 1.0

    @property
    def name(self) -> str:
        if self.channels is None:
            return self.layer
        return f"{self.layer}[{','.join(map(str, self.channels))}]"

    def select(self, activations: Activations) -> torch.Tensor:
        """The layer's activation, only this term's channels: (B, C', H, W)."""
        x = activations[self.layer]  # (B, C, H, W)
        return x if self.channels is None else x[:, list(self.channels)]

    def activation(self, activations: Activations) -> torch.Tensor:
        return self.select(activations).float().pow(2).mean()

    def __add__(self, other: "Objective | Term") -> "Objective":
        return as_objective(self) + other

    def __sub__(self, other: "Objective | Term") -> "Objective":
        return as_objective(self) - other

    def __mul__(self, factor: float) -> "Objective":
        return as_objective(self) * factor

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return -as_objective(self)


@dataclass(frozen=True)
class Objective:
    terms: tuple[Term, ...]

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(t.layer for t in self.terms))

    def __call__(self, activations: Activations) -> torch.Tensor:
        return self.total(self.activations(activations))

    def total(self, parts: Mapping[str, Any]) -> Any:
        """The weighted sum of per-term values (tensors or floats), as given by activations()."""
        return sum(t.weight * parts[t.name] for t in self.terms)

    def activations(self, activations: Activations) -> dict[str, torch.Tensor]:
        """Each term's unweighted activation, by term name."""
        return {t.name: t.activation(activations) for t in self.terms}

    def __add__(self, other: "Objective | Term") -> "Objective":
        return Objective(self.terms + as_objective(other).terms)

    def __sub__(self, other: "Objective | Term") -> "Objective":
        return self + -as_objective(other)

    def __mul__(self, factor: float) -> "Objective":
        return Objective(tuple(Term(t.layer, t.channels, t.weight * factor) for t in self.terms))

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return self * -1.0


def as_objective(x: "Objective | Term") -> Objective:
    return x if isinstance(x, Objective) else Objective((x,))


def parse_target(target: Mapping[str, Any], layers: list[str]) -> Objective:
    """Compile a target dictionary (layer -> "all" | [channels] | {channels, weight}) to an Objective.

    Layer names are checked here; channel indices need the network, see check_channels.
    """
    if not target:
        raise DreamError(
            "the target dictionary is empty: pick a preset (target=mixed_6) or add a layer "
            "(+target.Mixed_6e=all)"
        )
    terms = []
    for layer, spec in target.items():
        if layer not in layers:
            raise DreamError(f"unknown layer '{layer}' for this model; valid layers: {', '.join(layers)}")
        weight = 1.0
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"channels", "weight"}
            if unknown:
                raise DreamError(
                    f"target.{layer}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                    f"use channels and weight"
                )
            weight = _number(spec.get("weight", 1.0), f"target.{layer}.weight")
            spec = spec.get("channels", "all")
        terms.append(Term(layer, _channels(spec, layer), weight))
    return Objective(tuple(terms))


def check_channels(objective: Objective, channel_counts: Mapping[str, int]) -> None:
    for term in objective.terms:
        count = channel_counts[term.layer]
        bad = [c for c in term.channels or () if c >= count]
        if bad:
            raise DreamError(
                f"target.{term.layer}: channel {bad[0]} is out of range: "
                f"{term.layer} has {count} channels (0-{count - 1})"
            )


def _channels(spec: Any, layer: str) -> Optional[tuple[int, ...]]:
    if spec is None or spec == "all":
        return None
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = [spec]
    if isinstance(spec, str) or not hasattr(spec, "__iter__"):
        raise DreamError(f"target.{layer} must be 'all', a list of channel indices or "
                         f"{{channels: ..., weight: ...}}, not {spec!r}")
    channels = list(spec)
    if not channels:
        raise DreamError(f"target.{layer}: the channel list is empty; use 'all' or list channels")
    for c in channels:
        if not isinstance(c, int) or isinstance(c, bool) or c < 0:
            raise DreamError(f"target.{layer}: channel {c!r} is not a non-negative integer")
    if len(set(channels)) != len(channels):
        raise DreamError(f"target.{layer}: channel list {channels} has duplicates")
    return tuple(channels)


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise DreamError(f"{key} must be a number, not {value!r}")
    return float(value)
