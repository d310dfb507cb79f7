"""The DeepDream engine: gradient ascent on the image over a pyramid of octaves.

Pure: tensors and plain parameters in, a tensor out. No files, no logging; progress is
reported to observers (see dreamrun.observers), the way Lightning calls callbacks.
"""
from typing import Callable, Mapping, Sequence, Union

import torch

from dreamrun.observers import Observer
from dreamrun.octaves import octave_sizes, resize

# image (1, 3, H, W) in [0, 1] -> scalar objective to maximise, or a dict holding it under
# "loss" beside other named values that observers get to see (e.g. each target's activation)
ObjectiveFn = Callable[[torch.Tensor], Union[torch.Tensor, Mapping[str, torch.Tensor]]]


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
    image: torch.Tensor, objective: ObjectiveFn, step_size: float, shift: tuple[int, int]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One jittered, normalised gradient-ascent step.

    Returns the new image and the step's values: loss, grad_norm and whatever else the
    objective reported, all detached.
    """
    rolled = roll(image, shift).detach().requires_grad_(True)
    values = objective(rolled)
    values = dict(values) if isinstance(values, Mapping) else {"loss": values}
    (grad,) = torch.autograd.grad(values["loss"], rolled)
    grad = unroll(grad, shift)
    # normalise by the mean |g| so step_size is the mean pixel change, whatever the layer's scale
    # (a fixed epsilon like 1e-8 would swamp the tiny gradients of randomly initialised networks)
    grad_norm = grad.abs().mean()
    image = image + step_size * grad / grad_norm.clamp_min(1e-30)
    values = {name: value.detach() for name, value in values.items()}
    return image.clamp(0.0, 1.0), {**values, "grad_norm": grad_norm}


def dream(
    image: torch.Tensor,
    objective: ObjectiveFn,
    *,
    octaves: int,
    octave_scale: float,
    steps: int,
    step_size: float,
    max_shift: int,
    generator: torch.Generator,
    observers: Sequence[Observer] = (),
) -> torch.Tensor:
    """Dream on image (1, 3, H, W) in [0, 1]; returns a dream of the same shape."""
    height, width = image.shape[-2:]
    sizes = octave_sizes(height, width, octaves, octave_scale)
    for obs in observers:
        obs.on_dream_start(sizes=sizes, steps=steps)

    detail = torch.zeros_like(resize(image, sizes[0]))
    global_step = 0
    for octave, size in enumerate(sizes):
        base = resize(image, size)  # (1, 3, h, w)
        detail = resize(detail, size)  # carry the dreamed detail up to this octave
        dreamed = (base + detail).clamp(0.0, 1.0)
        for step in range(steps):
            shift = random_shift(max_shift, generator)
            dreamed, values = ascent_step(dreamed, objective, step_size, shift)
            for obs in observers:
                obs.on_step(octave=octave, step=step, global_step=global_step,
                            values=values, image=dreamed)
            global_step += 1
        detail = dreamed - base
        for obs in observers:
            obs.on_octave_end(octave=octave, global_step=global_step, image=dreamed)
    for obs in observers:
        obs.on_dream_end(image=dreamed)
    return dreamed.detach()
