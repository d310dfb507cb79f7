"""The CUDA backend settings a job runs under: cuDNN autotuning, TF32, deterministic algorithms.

They are process-wide switches, so a job sets them for its own run and puts them back afterwards:
a notebook's other work keeps its own settings.
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

import torch

# cudnn.benchmark times every algorithm of a convolution set-up (its shapes, dtype and layout) the first
# time it meets it. A dream meets each set-up only `steps` times per octave before the next octave's size
# replaces it, so the tuning is paid for only where one image size is dreamed for many steps in a row.
AUTOTUNE_MIN_STEPS = 100


def autotune(device: torch.device, steps_per_size: int) -> bool:
    """Whether cuDNN should time its algorithms for a job that dreams each image size this many steps in a row."""
    return device.type == "cuda" and steps_per_size >= AUTOTUNE_MIN_STEPS


@dataclass(frozen=True)
class BackendSettings:
    autotune: bool = False  # cudnn.benchmark
    tf32: bool = False  # fp32 convolutions and matmuls on TF32 tensor cores (10-bit mantissa)
    deterministic: bool = False  # cuDNN's deterministic algorithms only, no autotuning


def _switches(settings: BackendSettings) -> dict[tuple[object, str], object]:
    """(module, flag) -> the value settings give it: cuDNN's, and TF32's for convolutions and matmuls."""
    cudnn = torch.backends.cudnn
    flags = {(cudnn, "benchmark"): settings.autotune and not settings.deterministic,
             (cudnn, "deterministic"): settings.deterministic}
    if hasattr(cudnn, "conv"):  # torch >= 2.9's API; mixing the old flags with it raises
        mode = "tf32" if settings.tf32 else "ieee"
        return {**flags, (cudnn.conv, "fp32_precision"): mode, (torch.backends.cuda.matmul, "fp32_precision"): mode}
    return {**flags, (cudnn, "allow_tf32"): settings.tf32, (torch.backends.cuda.matmul, "allow_tf32"): settings.tf32}


@contextmanager
def backend_settings(settings: Optional[BackendSettings]) -> Iterator[None]:
    """settings while the block runs, then the process's own again; None changes nothing."""
    if settings is None:
        yield
        return
    switches = _switches(settings)
    saved = {(owner, flag): getattr(owner, flag) for owner, flag in switches}
    for (owner, flag), value in switches.items():
        setattr(owner, flag, value)
    try:
        yield
    finally:
        for (owner, flag), value in saved.items():
            setattr(owner, flag, value)
