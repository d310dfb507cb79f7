"""What the CUDA path's hazards cost, measured: the ops of a step, fp16, autotuning, step timing, PNG encoding.

    python benchmarks/gpu_readiness.py                                 # the CPU's part
    python benchmarks/gpu_readiness.py --device cuda --json benchmarks/results/gpu_readiness_gpu.json
    python benchmarks/gpu_readiness.py --stand-in                      # every section, tiny, on the CPU

On every device: the aten ops one bf16 step runs (Inception-v3 at Mixed_6c: a GPU launches them one by one),
the convolution set-ups of a default dream and how often each is used, the fp16 dream's gain against fp32,
and how long an octave PNG takes to encode against a step. On CUDA also: a default dream with cuDNN
autotuning off and on, the step time CUDA events measure against the host's clock, the free memory an
earlier job's cache would hide, and the precision auto picks. Offline: random weights time like real ones.
"""
import argparse
import io
import json
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dreamrun.config.compose import compose_config
from dreamrun.core import engine
from dreamrun.jobs.dream import prepare, run_dream
from dreamrun.jobs.skeleton import load_input
from dreamrun.outputs.images import to_pil


class Ops(TorchDispatchMode):
    """Counts every aten op, and the distinct convolution set-ups (shapes, stride, padding, dtype, layout)."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()
        self.convolutions = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket).removeprefix("aten.")
        self.ops[name] += 1
        if name in ("convolution", "convolution_backward"):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            self.convolutions.add((name, *((tuple(t.shape), t.dtype, t.is_contiguous()) for t in tensors[:3]),
                                   *(repr(a) for a in args if not isinstance(a, torch.Tensor))))
        return func(*args, **(kwargs or {}))


def config(device: str, *overrides: str):
    return compose_config("model.weights=null", "log=none", f"device={device}", *overrides)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_ops(device: str, side: int) -> dict:
    cfg = config(device, "target=mixed_6c", "octaves=1", "precision=bf16")
    dreamer = prepare(cfg, side, side)
    image = torch.rand(1, 3, side, side, device=dreamer.device)
    engine.ascent_step(image, dreamer, 0.01, (3, 4), dreamer.tile_size)  # caches and kernels made once
    with Ops() as counted:
        engine.ascent_step(image, dreamer, 0.01, (3, 4), dreamer.tile_size)
    return {"ops": sum(counted.ops.values()), "by_op": dict(counted.ops.most_common())}


def convolution_setups(device: str, side: int, octaves: int, steps: int) -> dict:
    """Each octave's first step meets every set-up the octave's other steps reuse."""
    cfg = config(device, "target=mixed_6c", f"octaves={octaves}", f"input.size={side}", "steps=1")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    dreamer = prepare(cfg, *image.shape[-2:])
    with Ops() as counted:
        run_dream(cfg, image, dreamer)
    setups = len(counted.convolutions)
    return {"setups": setups, "uses_each": steps, "octaves": octaves, "side": side}


def gains(device: str, side: int, octaves: int, steps: int) -> dict:
    out = {}
    for precision in ("fp32", "bf16", "fp16"):
        cfg = config(device, "target=mixed_6c", f"octaves={octaves}", f"steps={steps}", f"input.size={side}",
                     f"precision={precision}")
        image = load_input(cfg, torch.Generator().manual_seed(0))
        out[precision] = run_dream(cfg, image, prepare(cfg, *image.shape[-2:])).metrics["gain"]
    return out


def png_against_step(device: str, side: int) -> dict:
    cfg = config(device, "target=mixed_6c", "octaves=1", f"input.size={side}")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    dreamer = prepare(cfg, *image.shape[-2:])
    image = image.to(dreamer.device)
    step, encode = [], []
    for _ in range(4):
        sync(dreamer.device)
        start = time.perf_counter()
        image = engine.ascent_step(image, dreamer, 0.01, (1, 2), dreamer.tile_size)[0]
        sync(dreamer.device)
        step.append(time.perf_counter() - start)
        start = time.perf_counter()
        to_pil(image).save(io.BytesIO(), format="PNG")
        encode.append(time.perf_counter() - start)
    return {"size": list(image.shape[-2:]), "step_ms": 1000 * statistics.median(step[1:]),
            "png_ms": 1000 * statistics.median(encode[1:])}


def autotuning(device: str, side: int, octaves: int, steps: int) -> dict:
    """A whole dream with cudnn.benchmark off, then on (paying for the tuning), then on again (tuned)."""
    from dreamrun.nets.backends import BackendSettings, backend_settings

    cfg = config(device, "target=mixed_6c", f"octaves={octaves}", f"steps={steps}", f"input.size={side}")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    dreamer = prepare(cfg, *image.shape[-2:])
    run_dream(cfg, image, dreamer)  # warm-up: allocator, lazy CUDA initialisation
    seconds = {}
    for name, tuned in (("off", False), ("on_first", True), ("on_tuned", True)):
        with backend_settings(BackendSettings(autotune=tuned)):
            dreamer.backends = None  # the settings above, not the job's own
            start = time.perf_counter()
            run_dream(cfg, image, dreamer)
            sync(dreamer.device)
            seconds[name] = time.perf_counter() - start
    return seconds


def step_clocks(device: str, side: int, steps: int) -> dict:
    """Per step: what CUDA events time on the GPU, and the host's clock around the same calls."""
    from dreamrun.outputs.tensorboard import StepClock

    cfg = config(device, "target=mixed_6c", "octaves=1", f"input.size={side}")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    dreamer = prepare(cfg, *image.shape[-2:])
    image = image.to(dreamer.device)
    clock = StepClock(dreamer.device)
    gpu, host = [], []
    for _ in range(steps):
        mark, start = clock.mark(), time.perf_counter()
        image = engine.ascent_step(image, dreamer, 0.01, (1, 2), dreamer.tile_size)[0]
        host.append(time.perf_counter() - start)
        gpu.append((mark, clock.mark()))
    sync(dreamer.device)
    return {"gpu_ms": 1000 * statistics.median(clock.seconds(*m) for m in gpu[1:]),
            "host_ms": 1000 * statistics.median(host[1:])}


def cached_memory(device: str, side: int) -> dict:
    """After one dream, what the card says is free and what dreamrun counts (the cache is reusable)."""
    from dreamrun.core.tiles import free_memory

    cfg = config(device, "target=mixed_6c", "octaves=2", "steps=2", f"input.size={side}")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    run_dream(cfg, image, prepare(cfg, *image.shape[-2:]))
    dev = torch.device(device)
    return {"card_free_gib": torch.cuda.mem_get_info(dev)[0] / 2**30, "counted_free_gib": free_memory(dev) / 2**30,
            "cached_gib": (torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)) / 2**30}


def precision_pick(device: str) -> dict:
    from dreamrun.nets.precision import autocast_dtype

    dev = torch.device(device)
    return {"capability": list(torch.cuda.get_device_capability(dev)),
            "is_bf16_supported": torch.cuda.is_bf16_supported(), "auto": str(autocast_dtype("auto", dev))}


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads"
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="write the results here as well, after every section")
    parser.add_argument("--stand-in", action="store_true",
                        help="the CUDA sections too, at tiny sizes on this device: checks the script end to end")
    args = parser.parse_args()
    cuda, small = args.device.startswith("cuda"), args.stand_in
    side = 512 if cuda else 224
    dream = (192, 2, 2) if small else (512, 4, 10)  # side, octaves, steps
    results = {"device": machine(args.device), "torch": torch.__version__, "python": sys.version.split()[0]}
    sections = [
        ("step_ops", lambda: step_ops(args.device, 128)),
        ("convolution_setups", lambda: convolution_setups(args.device, 512, 4, 10)),
        ("gains", lambda: gains(args.device, dream[0] if small else side, 2, 5)),
        ("png_against_step", lambda: png_against_step(args.device, dream[0])),
    ]
    if cuda or small:
        sections += [
            ("precision_pick", lambda: precision_pick(args.device)),
            ("autotuning", lambda: autotuning(args.device, *dream)),
            ("step_clocks", lambda: step_clocks(args.device, dream[0], 4 if small else 10)),
            ("cached_memory", lambda: cached_memory(args.device, dream[0])),
        ]
    for name, measure in sections:
        start = time.perf_counter()
        try:
            results[name] = measure()
        except Exception as e:  # one section failing on a new card still leaves the others' figures
            results[name] = {"error": f"{type(e).__name__}: {e}"}
        shown = {k: v for k, v in results[name].items() if k != "by_op"}
        print(f"{name} ({time.perf_counter() - start:.1f} s): {json.dumps(shown)}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
