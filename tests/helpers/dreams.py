"""A dream of a tensor on a dreamer of its own: what the job does between load_input and its files."""
import torch

from dreamrun.jobs.dream import DreamResult, prepare, run_dream


def solo_dream(cfg, image: torch.Tensor) -> DreamResult:
    return run_dream(cfg, image, prepare(cfg, *image.shape[-2:]))
