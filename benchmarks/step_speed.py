"""Speed and memory of dreamrun's gradient-ascent step against the naive DeepDream step.

    python benchmarks/step_speed.py                  # ms/step: Mixed_5b/6e/7c at 512x512 and 1024x768
    python benchmarks/step_speed.py --mode dream     # a whole default dream, optimised vs plain fp32
    python benchmarks/step_speed.py --mode memory    # peak memory of a tiled 4096x4096 (GPU: 8192x8192) dream

The naive step is DeepDream as it is usually written: the whole Inception-v3 through fc, a
forward hook on the target layer, fp32, NCHW. Both steps run in the same process, interleaved,
on random weights (which time exactly like the real ones), so this runs offline.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from dreamrun.config.compose import compose_config
from dreamrun.config.schema import IMAGENET_MEAN, IMAGENET_STD
from dreamrun.core import engine
from dreamrun.core.tiles import saved_tensor_bytes
from dreamrun.jobs.dream import prepare, run_dream
from dreamrun.jobs.skeleton import load_input

LAYERS = ["Mixed_5b", "Mixed_6e", "Mixed_7c"]
SIZES = [(512, 512), (768, 1024)]  # (H, W)
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense tensor-core peaks
STEP_SIZE = 0.01


def config(*overrides: str):
    return compose_config("model.weights=null", "log=none", *overrides)


class NaiveStep:
    """The usual DeepDream step: full network, forward hook, fp32, NCHW, no truncation."""

    def __init__(self, layer: str, device: torch.device):
        torch.manual_seed(0)
        self.model = torchvision.models.inception_v3(
            weights=None, init_weights=False, aux_logits=True, transform_input=True).eval().to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.captured: dict[str, torch.Tensor] = {}
        getattr(self.model, layer).register_forward_hook(lambda m, i, out: self.captured.update(out=out))
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    def __call__(self, image: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
        rolled = engine.roll(image, shift).detach().requires_grad_(True)
        self.model((rolled - self.mean) / self.std)  # runs on through Mixed_7c, pooling and fc
        self.captured["out"].pow(2).mean().backward()
        grad = engine.unroll(rolled.grad, shift)
        return (image + STEP_SIZE * grad / grad.abs().mean()).clamp(0, 1)


class EngineStep:
    """dreamrun's step at its default settings: truncated network, channels_last, autocast."""

    def __init__(self, layer: str, device: torch.device, height: int, width: int):
        cfg = config(f"target={layer.lower()}", "octaves=1", f"device={device}")
        self.dreamer = prepare(cfg, height, width)

    def __call__(self, image: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
        return engine.ascent_step(image, self.dreamer, STEP_SIZE, shift, self.dreamer.tile_size)[0]

    def forward_backward(self, image: torch.Tensor) -> None:
        # FlopCounterMode's module hooks cannot follow autograd.grad: count the same work via backward()
        image = image.detach().requires_grad_(True)
        self.dreamer(image)["loss"].backward()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step: Callable, image: torch.Tensor, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    step(image, (5, -7))
    sync(device)
    return time.perf_counter() - start


def peak_memory_mb(step: Callable, image: torch.Tensor, device: torch.device) -> float:
    """CUDA: peak allocated. CPU: the tensors autograd saves for the backward pass (the bulk)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        step(image, (0, 0))
        sync(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return saved_tensor_bytes(lambda: step(image, (0, 0))) / 2**20


def flops(step: Callable, image: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter:
        if isinstance(step, EngineStep):
            step.forward_backward(image)
        else:
            step(image, (0, 0))
    return counter.get_total_flops()


def bench_steps(device: torch.device, repeats: int, sizes=SIZES, layers=LAYERS) -> dict:
    """The table, printed row by row; returns its figures under gpu.json's keys (step_ms.LAYER_SIDE.naive and
    .dreamrun, peak_fraction.LAYER_SIDE where the card's bf16 peak is known), sides of square sizes only."""
    figures: dict = {"step_ms": {}, "peak_fraction": {}}
    peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if device.type == "cuda" and k in torch.cuda.get_device_name(device)), None)
    print("| target | size | naive ms/step | dreamrun ms/step | speed-up | naive peak MB | dreamrun peak MB "
          "| naive GFLOP/s | dreamrun GFLOP/s |" + (" dreamrun % of bf16 peak |" if peak else ""), flush=True)
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if peak else ""), flush=True)
    for height, width in sizes:
        image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)).to(device)
        for layer in layers:
            steps = {"naive": NaiveStep(layer, device), "dreamrun": EngineStep(layer, device, height, width)}
            for step in steps.values():  # warm-up: allocator, cudnn autotuning, lazy inits
                timed(step, image, device), timed(step, image, device)
            times = {name: [] for name in steps}
            for _ in range(repeats):
                for name, step in steps.items():  # interleaved
                    times[name].append(timed(step, image, device))
            ms = {name: 1000 * statistics.median(t) for name, t in times.items()}
            mem = {name: peak_memory_mb(step, image, device) for name, step in steps.items()}
            gflops = {name: flops(step, image) / (ms[name] / 1000) / 1e9 for name, step in steps.items()}
            row = (f"| {layer} | {width}x{height} | {ms['naive']:.1f} | {ms['dreamrun']:.1f} | "
                   f"**{ms['naive'] / ms['dreamrun']:.2f}x** | {mem['naive']:.0f} | {mem['dreamrun']:.0f} | "
                   f"{gflops['naive']:.0f} | {gflops['dreamrun']:.0f} |")
            key = f"{layer}_{width}" if width == height else f"{layer}_{width}x{height}"
            figures["step_ms"][key] = {"naive": ms["naive"], "dreamrun": ms["dreamrun"]}
            if peak:
                row += f" {100 * gflops['dreamrun'] / (peak * 1000):.1f}% |"
                figures["peak_fraction"][key] = gflops["dreamrun"] / (peak * 1000)
            print(row, flush=True)
    return figures


def bench_dream(device: torch.device, repeats: int) -> None:
    variants = {"dreamrun defaults": [], "plain fp32 NCHW": ["precision=fp32", "channels_last=false"]}
    seconds = {name: [] for name in variants}
    cfgs = {name: config(f"device={device}", *extra) for name, extra in variants.items()}
    image = load_input(cfgs["dreamrun defaults"], torch.Generator().manual_seed(0))
    for _ in range(repeats):
        for name, cfg in cfgs.items():
            seconds[name].append(run_dream(cfg, image, prepare(cfg, *image.shape[-2:])).metrics["seconds"])
    cfg = cfgs["dreamrun defaults"]
    steps = cfg.octaves * cfg.steps
    print(f"default dream: Inception-v3 {cfg.target and list(cfg.target)}, {image.shape[-1]}x{image.shape[-2]} px, "
          f"{cfg.octaves} octaves x {cfg.steps} steps, median of {repeats}", flush=True)
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"  {name:18s} {median:6.2f} s  ({1000 * median / steps:.0f} ms/step)", flush=True)
    print(f"  speed-up: {statistics.median(seconds['plain fp32 NCHW']) / statistics.median(seconds['dreamrun defaults']):.2f}x", flush=True)


def bench_memory(device: torch.device, side: int, gpu_limit_gib: float) -> None:
    """A whole tiled dream of side x side noise in a child process; its peak RSS (and GPU memory).

    On CUDA the child behaves as if the card had gpu_limit_gib: PyTorch refuses more, and the
    automatic tile size sees only that much free.
    """
    script = (
        "import json, sys, torch;"
        "import dreamrun.core.tiles as tiling;"
        "from benchmarks.step_speed import config;"
        "from dreamrun.jobs.dream import prepare, run_dream; from dreamrun.jobs.skeleton import load_input;"
        f"limit = {gpu_limit_gib} * 2**30;"
        "cuda = torch.cuda.is_available();"
        "cuda and torch.cuda.set_per_process_memory_fraction(limit / torch.cuda.get_device_properties(0).total_memory);"
        "real_free = tiling.free_memory;"
        "tiling.free_memory = lambda d: min(real_free(d), limit - torch.cuda.memory_reserved(d)) if d.type == 'cuda' else real_free(d);"
        # Inception's tiled gradient is approximate (unpadded convolutions), so tile.size=auto no longer
        # tiles it: the tile sides the README's figures were measured with are given explicitly
        f"cfg = config('input=noise', 'input.size={side}', 'octaves=1', 'steps=2', 'device={device}', "
        f"'tile.size={1024 if device.type == 'cpu' else 2432}');"
        "image = load_input(cfg, torch.Generator().manual_seed(0));"
        "m = run_dream(cfg, image, prepare(cfg, *image.shape[-2:])).metrics;"
        "gpu = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None;"
        "print(json.dumps({'seconds': m['seconds'], 'tile_size': m['tile_size'], 'gpu_peak_gib': gpu}))"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    rss_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # ru_maxrss is in KiB
    limit = f" (as a {gpu_limit_gib:g} GiB card)" if device.type == "cuda" else ""
    print(f"{side}x{side} dream (1 octave, 2 steps, Mixed_6c, tile {result['tile_size']} px) on {device}{limit}: "
          f"{result['seconds']:.1f} s, peak RSS {rss_gib:.2f} GiB"
          + (f", peak GPU memory {result['gpu_peak_gib']:.2f} GiB" if result["gpu_peak_gib"] else ""), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["steps", "dream", "memory"], default="steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--side", type=int, help="memory mode: image side (default 4096 on CPU, 8192 on CUDA)")
    parser.add_argument("--gpu-limit-gib", type=float, default=24.0, help="memory mode: the card size to act as")
    parser.add_argument("--sizes", help="steps mode: square sides, e.g. 512,2048 (default: 512x512 and 1024x768)")
    parser.add_argument("--layers", help="steps mode: e.g. Mixed_6e (default: Mixed_5b,Mixed_6e,Mixed_7c)")
    parser.add_argument("--json", type=Path, help="steps mode: write the figures here too (gpu.json's keys)")
    args = parser.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}", flush=True)
    if args.mode == "steps":
        sizes = [(int(side), int(side)) for side in args.sizes.split(",")] if args.sizes else SIZES
        figures = bench_steps(device, args.repeats, sizes, args.layers.split(",") if args.layers else LAYERS)
        if args.json:
            args.json.write_text(json.dumps({"device": name, "torch": torch.__version__, **figures}, indent=2) + "\n")
    elif args.mode == "dream":
        bench_dream(device, args.repeats)
    else:
        bench_memory(device, args.side or (8192 if device.type == "cuda" else 4096), args.gpu_limit_gib)


if __name__ == "__main__":
    main()
