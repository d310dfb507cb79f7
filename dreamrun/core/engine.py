"""The DeepDream engine: gradient ascent on the image over a pyramid of octaves.

Pure: tensors and plain parameters in, a tensor out. No files, no logging; progress is
reported to observers (see dreamrun.core.observers), the way Lightning calls callbacks.
"""
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from dreamrun.core.gradient_filters import GradientFilter, gradient_filter
from dreamrun.core.observers import Observer
from dreamrun.core.octaves import octave_sizes, resize
from dreamrun.core.parameterisations import parameterisation
from dreamrun.core.tiles import ObjectiveFn, gradient
from dreamrun.core.transforms import seen_through


class NonFiniteError(ArithmeticError):
    """The objective or its gradient became NaN or inf. image: the last good image, (1, 3, h, w)."""

    def __init__(self, global_step: int, octave: int, image: torch.Tensor):
        super().__init__(f"the objective became NaN or infinite at step {global_step} (octave {octave})")
        self.global_step, self.octave, self.image = global_step, octave, image


def random_shift(max_shift: int, generator: torch.Generator) -> tuple[int, int]:
    if max_shift <= 0:
        return 0, 0
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    return dy, dx


def roll(image: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    return torch.roll(image, shifts=shift, dims=(-2, -1))


def unroll(image: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
    return torch.roll(image, shifts=(-shift[0], -shift[1]), dims=(-2, -1))


def ascent_step(
    image: torch.Tensor, objective: ObjectiveFn, step_size: float, shift: tuple[int, int],
    tile_size: Optional[int] = None, gradient_filter: Optional[GradientFilter] = None,
    mask: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One jittered, normalised gradient-ascent step.

    Returns the new image and the step's values: loss, grad_norm and whatever else the
    objective reported, all detached. With tile_size the roll also moves the tile seams.
    gradient_filter (gradient -> ascent direction) runs on the unrolled gradient. mask (1, 1, h, w)
    in [0, 1] scales the step pixel by pixel (normalised over the whole image, so the step inside a
    mask is as large as an unmasked dream's there).
    """
    grad, values = gradient(roll(image, shift), objective, tile_size)
    grad = unroll(grad, shift)
    grad_norm = grad.abs().mean()
    direction = gradient_filter(grad) if gradient_filter else grad
    # normalise by the mean |direction| so step_size is the mean pixel change, whatever the layer's scale
    # (a fixed epsilon like 1e-8 would swamp the tiny gradients of randomly initialised networks)
    step = step_size * direction / direction.abs().mean().clamp_min(1e-30)
    image = image + (step if mask is None else step * mask)
    return image.clamp(0.0, 1.0), {**values, "grad_norm": grad_norm}


@dataclass(frozen=True)
class Ascent:
    """How a dream climbs: its octaves and their scale, the steps of each and their size (the mean pixel
    change), the jitter's largest roll in px, gradient tiles (None: the whole image) and the filters the
    gradient passes through before the step (dreamrun.core.gradient_filters; all off by default)."""

    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10
    step_size: float = 0.01
    max_shift: int = 32
    tile_size: Optional[int] = None
    smoothing: float = 0.0  # sigma in px of the gradient's Gaussian smoothing cascade
    luminance_only: bool = False  # the gradient's luminance alone, on every channel
    laplacian_levels: int = 0  # levels of Laplacian-pyramid normalisation
    seamless: bool = False  # the image is a tile of a periodic one: octaves resize it wrapping around
    # the space it climbs in (core.parameterisations): pixel, the image itself, by normalised steps; fft, a
    # scaled spectrum, by Adam with step_size as its learning rate (one octave: the spectrum holds every scale)
    param: str = "pixel"
    transforms: tuple = ()  # random moves the objective sees the image through, each step (core.transforms)


def dream(image: torch.Tensor, objective: ObjectiveFn, ascent: Ascent, *, generator: torch.Generator,
          observers: Sequence[Observer] = (), mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Dream on image (1, 3, H, W) in [0, 1] as ascent says, the jitter drawn from generator; returns a
    dream of the same shape. mask (1, 1, H, W) in [0, 1]: where it may dream, each step scaled by it;
    where it is 0 the dream is the image exactly."""
    height, width = image.shape[-2:]
    filter_gradient = gradient_filter(smoothing=ascent.smoothing, luminance=ascent.luminance_only,
                                      laplacian_levels=ascent.laplacian_levels)
    if ascent.transforms:
        objective = seen_through(ascent.transforms, objective, generator)
    if ascent.param != "pixel":
        if ascent.octaves != 1 or mask is not None:
            raise ValueError(f"param={ascent.param} climbs one octave of the whole image (no mask)")
        return _climb_parameters(image, objective, ascent, filter_gradient, generator, observers)
    sizes = octave_sizes(height, width, ascent.octaves, ascent.octave_scale)
    steps = ascent.steps
    for obs in observers:
        obs.on_dream_start(sizes=sizes, steps=steps)

    wrap = ascent.seamless
    detail = torch.zeros_like(resize(image, sizes[0], wrap))
    global_step = 0
    for octave, size in enumerate(sizes):
        base = resize(image, size, wrap)  # (1, 3, h, w)
        detail = resize(detail, size, wrap)  # carry the dreamed detail up to this octave
        dreamed = (base + detail).clamp(0.0, 1.0)
        octave_mask = None if mask is None else resize(mask, size, wrap)
        first_bad_step = torch.tensor(-1, device=image.device)
        for step in range(steps):
            shift = random_shift(ascent.max_shift, generator)
            stepped, values = ascent_step(dreamed, objective, ascent.step_size, shift, ascent.tile_size,
                                          filter_gradient, octave_mask)
            # a NaN or inf step is not taken; it is reported at the octave's end, so the loop
            # never waits on the GPU to look at the loss
            finite = torch.isfinite(values["loss"]) & torch.isfinite(values["grad_norm"])
            dreamed = torch.where(finite, stepped, dreamed)
            first_bad_step = torch.where(finite | (first_bad_step >= 0), first_bad_step, global_step)
            for obs in observers:
                obs.on_step(octave=octave, step=step, global_step=global_step,
                            values=values, image=dreamed, shift=shift)
            global_step += 1
        if first_bad_step.item() >= 0:
            raise NonFiniteError(first_bad_step.item(), octave, dreamed.detach())
        detail = dreamed - base
        for obs in observers:
            obs.on_octave_end(octave=octave, global_step=global_step, image=dreamed)
    if mask is not None:  # the detail carried up the octaves spreads past the mask's edge as it is resized
        dreamed = torch.where(mask > 0, dreamed, image)
    for obs in observers:
        obs.on_dream_end(image=dreamed)
    return dreamed.detach()


def _climb_parameters(image: torch.Tensor, objective: ObjectiveFn, ascent: Ascent,
                      filter_gradient: Optional[GradientFilter], generator: torch.Generator,
                      observers: Sequence[Observer]) -> torch.Tensor:
    """The dream of image in ascent.param's space: its parameters start where they make image, and Adam
    climbs them, the objective's gradient at the (jittered) image carried back to them by autograd."""
    height, width = image.shape[-2:]
    param = parameterisation(ascent.param, height, width)
    parameters = param.encode(image).requires_grad_(True)
    optimizer = torch.optim.Adam([parameters], lr=ascent.step_size, maximize=True)
    for obs in observers:
        obs.on_dream_start(sizes=[(height, width)], steps=ascent.steps)
    seen = param.decode(parameters)  # (1, 3, H, W), the image the parameters make now
    first_bad_step = torch.tensor(-1, device=image.device)
    for step in range(ascent.steps):
        shift = random_shift(ascent.max_shift, generator)
        grad, values = gradient(roll(seen.detach(), shift), objective, ascent.tile_size)
        direction = unroll(grad, shift)
        direction = filter_gradient(direction) if filter_gradient else direction
        finite = torch.isfinite(values["loss"]) & torch.isfinite(direction).all()
        # a NaN or inf step is not taken: Adam sees a zero gradient (its moments stay finite), its move is
        # undone, and the error at the end says so; the loop never waits on the GPU to look
        optimizer.zero_grad(set_to_none=True)
        seen.backward(torch.where(finite, direction, torch.zeros_like(direction)))
        before = parameters.detach().clone()
        optimizer.step()
        with torch.no_grad():
            parameters.copy_(torch.where(finite, parameters, before))
        seen = param.decode(parameters)
        first_bad_step = torch.where(finite | (first_bad_step >= 0), first_bad_step, step)
        for obs in observers:
            obs.on_step(octave=0, step=step, global_step=step, values={**values, "grad_norm": grad.abs().mean()},
                        image=seen.detach(), shift=shift)
    if first_bad_step.item() >= 0:
        raise NonFiniteError(first_bad_step.item(), 0, seen.detach())
    dreamed = seen.detach()
    for obs in observers:
        obs.on_octave_end(octave=0, global_step=ascent.steps, image=dreamed)
    for obs in observers:
        obs.on_dream_end(image=dreamed)
    return dreamed
