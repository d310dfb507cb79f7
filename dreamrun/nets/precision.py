"""Which floating-point type the network runs in: fp32, or bf16/fp16 under autocast.

The image, the objective and the gradient normalisation always stay in fp32; only the
network's forward and backward run in the lower precision.
"""
from pathlib import Path
from typing import Optional

import torch

from dreamrun.errors import DreamError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
FAST_CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_has_fast_bf16() -> bool:
    """True where the CPU has bf16 dot-product instructions (x86 AVX512-BF16 or AMX), Linux only."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return bool(FAST_CPU_BF16_FLAGS & set(flags))


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for precision (auto|fp32|bf16|fp16) on device; None means plain fp32."""
    if precision in DTYPES:
        return DTYPES[precision]
    if precision != "auto":
        raise DreamError(f"unknown precision '{precision}': use auto, fp32, bf16 or fp16")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None
