"""Which floating-point type the network runs in: fp32, or bf16/fp16 under autocast.

The image, the objective and the gradient normalisation always stay in fp32; only the
network's forward and backward run in the lower precision.
"""
from pathlib import Path
from typing import Optional

import torch

from dreamrun.errors import DreamError

DTYPES = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# bf16 on tensor cores from Ampere (compute capability 8.0) on; earlier cards emulate it, slower than fp32
CUDA_BF16_CAPABILITY = (8, 0)
FAST_CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_has_fast_bf16() -> bool:
    """True where the CPU has bf16 dot-product instructions (x86 AVX512-BF16 or AMX), Linux only."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return bool(FAST_CPU_BF16_FLAGS & set(flags))


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for precision (auto|fp32|tf32|bf16|fp16) on device; None means fp32 (tf32: fp32 that
    CUDA may round to TF32 in convolutions and matmuls, see nets.backends)."""
    if precision in DTYPES:
        return DTYPES[precision]
    if precision != "auto":
        raise DreamError(f"unknown precision '{precision}': use auto, fp32, tf32, bf16 or fp16")
    if device.type == "cuda":
        # the job's own card, not the current one; is_bf16_supported() is also true where bf16 is emulated
        fast = torch.cuda.get_device_capability(device) >= CUDA_BF16_CAPABILITY
        return torch.bfloat16 if fast else None
    if device.type == "cpu" and cpu_has_fast_bf16():
        return torch.bfloat16
    return None
