"""Image parameterisations: the space a dream climbs in, and the map from it to an image and back.

    param=pixel  the image's pixels themselves (the engine's own step: core.engine.ascent_step)
    param=fft    a spectrum scaled by 1/frequency, its colours decorrelated, squashed into [0, 1]

Feature visualisation (Olah et al., "Feature Visualization", Distill 2017) climbs in a space where a step
changes every frequency about as much as the natural images the network saw: in pixel space the gradient's
high frequencies win, and a visualisation from noise stays noise. Here an image is

    image = sigmoid(COLOURS @ (GAIN * irfft2(spectrum / frequency)))      # (1, 3, H, W)

so a step of the same size on every coefficient moves low frequencies far more than high ones, and the
three channels move along the principal axes of ImageNet's colours instead of red, green and blue.
"""
import functools
from dataclasses import dataclass
import torch

# The square root of ImageNet's RGB colour covariance (its principal axes, each scaled by the square root of
# its variance), as published with Lucid's decorrelated parameterisation: a data constant, measured on ImageNet.
IMAGENET_COLOUR_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                     [0.27, 0.00, -0.05],
                                     [0.27, -0.09, 0.03]])
# scaled so that no decorrelated channel moves a colour further than a unit step would
COLOURS = IMAGENET_COLOUR_SQRT / IMAGENET_COLOUR_SQRT.norm(dim=0).max()
GAIN = 0.25  # the linear image's scale before the sigmoid: an Adam step of lr on every coefficient stays gentle
NOISE_SD = 0.01  # the spread of a random starting spectrum: an almost grey image with every frequency present
EDGE = 0.01  # a photo's pixels are kept this far from 0 and 1, where the sigmoid's inverse is infinite

PARAMETERISATIONS = ("pixel", "fft")


@functools.lru_cache(maxsize=16)
def frequency_scale(height: int, width: int, device: torch.device = torch.device("cpu")) -> torch.Tensor:
    """(H, W // 2 + 1) on device: 1 / frequency for each coefficient of a real 2-d spectrum, the constant
    term capped at the lowest frequency's. Made once per size and device: a copy to a GPU in every step would
    make the step wait for the host."""
    fy = torch.fft.fftfreq(height)[:, None]
    fx = torch.fft.rfftfreq(width)[None, :]
    frequency = (fx ** 2 + fy ** 2).sqrt()
    return (1.0 / frequency.clamp_min(1.0 / max(height, width))).to(device)


@functools.lru_cache(maxsize=4)
def _colours(device: torch.device, inverse: bool = False) -> torch.Tensor:
    return (torch.linalg.inv(COLOURS) if inverse else COLOURS).to(device)


@dataclass(frozen=True)
class FourierImage:
    """param=fft: an image of (height, width) px as a scaled spectrum, (1, 3, H, W // 2 + 1, 2) real
    numbers (each complex coefficient's real and imaginary part)."""

    height: int
    width: int

    def decode(self, spectrum: torch.Tensor) -> torch.Tensor:
        """The image (1, 3, H, W) in (0, 1) of spectrum; differentiable."""
        scale = frequency_scale(self.height, self.width, spectrum.device)
        coefficients = torch.view_as_complex(spectrum.contiguous()) * scale  # (1, 3, H, W // 2 + 1)
        linear = GAIN * torch.fft.irfft2(coefficients, s=(self.height, self.width), norm="ortho")
        return torch.sigmoid(torch.einsum("ij,bjhw->bihw", _colours(spectrum.device), linear))

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """The spectrum whose decode is image (1, 3, H, W) in [0, 1] (kept EDGE from 0 and 1)."""
        linear = torch.logit(image.float().clamp(EDGE, 1 - EDGE))
        channels = torch.einsum("ij,bjhw->bihw", _colours(image.device, inverse=True), linear) / GAIN
        coefficients = torch.fft.rfft2(channels, norm="ortho")
        coefficients = coefficients / frequency_scale(self.height, self.width, image.device)
        return torch.view_as_real(coefficients).contiguous()

    def noise(self, generator: torch.Generator) -> torch.Tensor:
        """A random spectrum drawn on the CPU (the same seed, the same start on any device)."""
        return NOISE_SD * torch.randn(1, 3, self.height, self.width // 2 + 1, 2, generator=generator)


def fourier_noise(size: int, generator: torch.Generator) -> torch.Tensor:
    """input=noise for param=fft: the image (1, 3, size, size) of a random spectrum, where a feature
    visualisation starts (almost grey; a uniform pixel noise would start it with white noise's spectrum)."""
    image = FourierImage(size, size)
    with torch.no_grad():
        return image.decode(image.noise(generator))


def parameterisation(name: str, height: int, width: int) -> FourierImage:
    """The parameterisation called name for an image of (height, width) (pixel is the engine's own step)."""
    if name == "fft":
        return FourierImage(height, width)
    raise ValueError(f"no parameterisation object for '{name}'; the engine climbs {' or '.join(PARAMETERISATIONS)}")
