"""Objectives: what the dream maximises, as small values that compose.

    objective = Term("Mixed_6e") + 0.5 * Term("Mixed_5b", channels=(12, 45)) - Term("Mixed_7a")
    objective = Term("logits", channels=(207,), reduction="mean")  # a class's logit

Each term reduces a layer's activation (all channels or a chosen set) to a number. The default,
mean_square, is the original DeepDream's L2 objective divided by the element count, so its value
does not grow with image size and can be compared across octaves and images. A guided term
instead measures how well the layer's features match a guide image's (see guide_match).
"""
import difflib
import functools
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

from dreamrun.core.keyframes import Curve, curve
from dreamrun.errors import DreamError

Activations = Mapping[str, torch.Tensor]  # layer name -> (B, C, H, W), or (B, K) for logits

LOGITS = "logits"  # the reserved layer name of a network's class scores


def root_mean_square(x: torch.Tensor) -> torch.Tensor:
    """The L2 norm divided by the square root of the element count: an L2 norm that ignores image size."""
    return x.pow(2).mean().sqrt()


REDUCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean_square": lambda x: x.pow(2).mean(),
    "l2": root_mean_square,
    "mean": lambda x: x.mean(),
}


@functools.lru_cache(maxsize=256)
def channel_index(channels: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """channels as an index tensor on device, made once: a Python list as an index is copied to the
    device again at every use, a wait for the host in every step on a GPU."""
    return torch.tensor(channels, device=device)


def guide_match(features: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    """How well features (B, C, H, W) match guide features (C, M): for each position, the dot product
    with its best-matching guide feature vector, averaged over positions and divided by C.

    Its gradient at each position is that guide vector, as in Google's DeepDream notebook.
    """
    dots = torch.einsum("bcn,cm->bnm", features.float().flatten(2), guide)  # (B, H*W, M)
    return dots.max(dim=2).values.mean() / features.shape[1]


@dataclass(frozen=True)
class Term:
    layer: str
    channels: Optional[tuple[int, ...]] = None  # None = every channel
    weight: float = 1.0
    reduction: str = "mean_square"  # a key of REDUCTIONS
    guide: Optional[torch.Tensor] = field(default=None, compare=False)  # (C', M): replaces the reduction
    pick: Optional[tuple[str, int]] = None  # ("strongest" | "weakest", K): channels picked on the input (pick_channels)
    weight_curve: Optional[Curve] = field(default=None, compare=False)  # keyframes {frame: weight}: see at_frame

    def __post_init__(self):
        if self.channels is not None:  # a list from Python code: hashable and cached like parse_target's tuples
            object.__setattr__(self, "channels", tuple(self.channels))

    @property
    def name(self) -> str:
        if self.channels is None and self.pick is not None:
            return f"{self.layer}[{self.pick[0]} {self.pick[1]}]"
        name = self.layer if self.channels is None else f"{self.layer}[{','.join(map(str, self.channels))}]"
        return name if self.guide is None else f"{name}~guide"

    def select(self, activations: Activations) -> torch.Tensor:
        """The layer's activation, only this term's channels: (B, C', H, W)."""
        x = activations[self.layer]  # (B, C, H, W)
        if self.channels is None:
            return x
        first = self.channels[0]
        if self.channels == tuple(range(first, first + len(self.channels))):
            return x[:, first:first + len(self.channels)]  # a run of channels: a view
        return x.index_select(1, channel_index(self.channels, x.device))

    def activation(self, activations: Activations) -> torch.Tensor:
        selected = self.select(activations)
        if self.guide is not None:
            return guide_match(selected, self.guide)
        return REDUCTIONS[self.reduction](selected.float())

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

    @property
    def keyframed(self) -> bool:
        """Whether a term's weight changes from frame to frame (keyframes: a zoom's or a video's)."""
        return any(t.weight_curve is not None and not t.weight_curve.constant for t in self.terms)

    def at_frame(self, frame: int, easing: str = "linear") -> "Objective":
        """The objective at this frame: each keyframed weight at its value there."""
        if not self.keyframed:
            return self
        return Objective(tuple(replace(t, weight=float(t.weight_curve.at(frame, easing))) if t.weight_curve else t
                               for t in self.terms))

    @property
    def unpicked(self) -> bool:
        """Whether a term still waits for its channels to be picked on the input (pick_channels)."""
        return any(t.pick is not None and t.channels is None for t in self.terms)

    def picked(self) -> dict[str, dict[str, Any]]:
        """The channels picked on the input, by layer: {"Mixed_6c": {"strongest": 8, "channels": [...]}}."""
        return {t.layer: {t.pick[0]: t.pick[1], "channels": list(t.channels or ())}
                for t in self.terms if t.pick is not None}

    def tiling_obstacle(self) -> Optional[str]:
        """Why tiles (core.tiles.gradient) would not give this objective's gradient; None where they would.

        A tile's objective counts by its share of the image, which is exact for a mean over a feature map
        (mean_square, mean, a guide's match) but not for a norm over the whole map (l2: the square root of
        a sum over every tile), nor for class scores: the classifier scores the whole image (VGG's sees a
        7x7 grid of it), and squared scores (mean_square, l2) are not a tile's share even where it pools.
        """
        for term in self.terms:
            if term.layer == LOGITS:
                return f"target {term.name} scores classes from the whole image, which tiles do not split"
            if term.reduction == "l2" and term.guide is None:
                return (f"target {term.name} has reduction=l2, a norm over the whole feature map, "
                        f"which tiles do not split")
        return None

    def __add__(self, other: "Objective | Term") -> "Objective":
        return Objective(self.terms + as_objective(other).terms)

    def __sub__(self, other: "Objective | Term") -> "Objective":
        return self + -as_objective(other)

    def __mul__(self, factor: float) -> "Objective":
        return Objective(tuple(replace(t, weight=t.weight * factor, weight_curve=t.weight_curve and Curve(
            tuple((frame, value * factor) for frame, value in t.weight_curve.points))) for t in self.terms))

    __rmul__ = __mul__

    def __neg__(self) -> "Objective":
        return self * -1.0


def as_objective(x: "Objective | Term") -> Objective:
    return x if isinstance(x, Objective) else Objective((x,))


def guided(objective: Objective, guide_activations: Activations) -> Objective:
    """The objective with every term matching the guide image's features at its layer and channels."""
    terms = []
    for term in objective.terms:
        features = term.select(guide_activations)[0].float()  # (C', h, w)
        if features.dim() != 3:
            raise DreamError(f"guide.path: target {term.layer} has no feature map to match a guide with; "
                             f"guide only convolutional layers")
        terms.append(replace(term, guide=features.flatten(1)))  # (C', h*w)
    return Objective(tuple(terms))


def pick_channels(objective: Objective, activations: Activations) -> Objective:
    """The objective with each {strongest: K} ({weakest: K}) term's channels picked: the K channels whose
    mean activation on the input (activations: the network's on it) is highest (lowest), strongest first."""
    terms = []
    for term in objective.terms:
        if term.pick is not None and term.channels is None:
            kind, count = term.pick
            x = activations[term.layer].float()  # (B, C, H, W), or (B, K) for logits
            means = x.transpose(0, 1).flatten(1).mean(dim=1)  # (C,)
            chosen = means.topk(count, largest=kind == "strongest").indices.tolist()
            term = replace(term, channels=tuple(chosen))
        terms.append(term)
    return Objective(tuple(terms))


PICKS = ("strongest", "weakest")


def parse_target(target: Mapping[str, Any], layers: list[str],
                 class_names: Optional[Sequence[str]] = None, reduction: str = "mean_square") -> Objective:
    """Compile a target dictionary to an Objective. Each layer maps to "all" | [channels] |
    {channels, weight, reduction} | {strongest: K, weight, reduction} ({weakest: K}: see pick_channels),
    and logits to {classes: [index or name], weight, reduction}. reduction: a layer's where it names none
    (logits: mean).

    Layer names and class names are checked here; channel indices need the network, see check_channels.
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
        terms.append(_term(layer, spec if isinstance(spec, Mapping) else {"channels": spec}, class_names, reduction))
    return Objective(tuple(terms))


def _term(layer: str, spec: Mapping[str, Any], class_names: Optional[Sequence[str]], default_reduction: str) -> Term:
    keys = {"channels", "weight", "reduction", *PICKS} | ({"classes"} if layer == LOGITS else set())
    unknown = set(spec) - keys
    if unknown:
        raise DreamError(f"target.{layer}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                         f"use {', '.join(sorted(keys))}")
    picks = [key for key in ("classes", "channels", *PICKS) if key in spec]
    if len(picks) > 1:
        raise DreamError(f"target.{layer}: give {' or '.join(picks)}, not " + ("both" if len(picks) == 2 else "several"))
    pick = None
    if picks and picks[0] in PICKS:
        count = spec[picks[0]]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise DreamError(f"target.{layer}.{picks[0]} is how many channels to pick: a whole number of 1 "
                             f"or more, not {count!r}")
        pick = (picks[0], count)
    if "classes" in spec:
        channels = _classes(spec["classes"], class_names)
    else:
        channels = _channels(spec.get("channels", "all"), layer)
    # a class's logit is maximised as it is: squaring would also reward a strongly negative one
    reduction = spec.get("reduction", "mean" if "classes" in spec else default_reduction)
    if reduction not in REDUCTIONS:
        where = f"target.{layer}.reduction" if "reduction" in spec else "reduction"
        raise DreamError(f"{where}: unknown '{reduction}'; use {', '.join(REDUCTIONS)}")
    weight = spec.get("weight", 1.0)
    if isinstance(weight, Mapping):  # keyframes: a zoom's or a video's frames weigh the term differently
        weight_curve = curve(weight, f"target.{layer}.weight")
        for frame, value in weight_curve.points:
            _number(value, f"target.{layer}.weight[{frame}]")  # NaN, infinity
        return Term(layer, channels, float(weight_curve.at(0)), reduction, pick=pick, weight_curve=weight_curve)
    return Term(layer, channels, _number(weight, f"target.{layer}.weight"), reduction, pick=pick)


def _classes(spec: Any, class_names: Optional[Sequence[str]]) -> tuple[int, ...]:
    """Class indices from a list of indices and names (matched case-insensitively)."""
    indices = []
    for item in [spec] if isinstance(spec, (str, int)) else spec:
        if isinstance(item, int) and not isinstance(item, bool):
            indices.append(item)
            continue
        if class_names is None:
            raise DreamError(f"target.{LOGITS}.classes: '{item}' is a name, but this model has no class "
                             f"names (model.categories); give class indices")
        lowered = [name.lower() for name in class_names]
        if str(item).lower() not in lowered:
            close = difflib.get_close_matches(str(item).lower(), lowered, n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(class_names[lowered.index(c)] for c in close)}?" if close else ""
            raise DreamError(f"target.{LOGITS}.classes: unknown class '{item}'{hint} "
                             f"(or give a class index 0-{len(class_names) - 1})")
        indices.append(lowered.index(str(item).lower()))
    return _channels(indices, LOGITS)


def check_channels(objective: Objective, channel_counts: Mapping[str, int]) -> None:
    for term in objective.terms:
        count = channel_counts[term.layer]
        if term.pick is not None and term.pick[1] > count:
            raise DreamError(f"target.{term.layer}: {term.pick[0]}: {term.pick[1]} is more than {term.layer}'s "
                             f"{count} channels")
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
                         f"{{channels: ..., weight: ..., reduction: ...}}, not {spec!r}")
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
