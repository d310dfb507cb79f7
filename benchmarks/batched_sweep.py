"""A sweep with hydra/launcher=batched against the same sweep with basic: whole processes, as a user runs them.

    python benchmarks/batched_sweep.py                      # CPU: 6 Lite0 jobs at 256 px, 5 interleaved rounds
    python benchmarks/batched_sweep.py --gpu                # GPU: the 16-job mission sweep (see below), one round
    python benchmarks/batched_sweep.py --smoke              # that sweep shrunk to 30 s on a CPU: the script works
    python benchmarks/batched_sweep.py --seeds 4 --rounds 1      # the same sweep over 4 seeds: 24 jobs
    python benchmarks/batched_sweep.py --json results/batched_sweep_cpu.json

CPU: `model=efficientnet_lite0 input.size=256 target=block_6,block_10,block_14 jitter.max_shift=8,32`
(the sweep issue #15 timed at 9.4 s of wall time for 2.9 s of dreaming). GPU: the mission command as
a 16-job sweep: Inception-v3 with random weights, 512 px, 4 octaves x 10 steps, 4 targets x 4 jitters,
with batched in both of its modes (exact=true passes images one at a time where the GPU's kernels
would sum a batch in another order; exact=false always batches).

Dreaming is what the jobs' metrics.json say they spent in the engine: with basic the jobs dream one
after another, so their seconds add up; jobs dreaming together report the same span, so a group
counts once (its longest). Per-job overhead = (wall - dreaming) / jobs. The pixels of each batched
job are compared with its basic twin (the largest difference in levels of 255).
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent

CPU_SWEEP = ["model=efficientnet_lite0", "input.size=256", "target=block_6,block_10,block_14",
             "jitter.max_shift=8,32", "device=cpu"]
GPU_SWEEP = ["model.weights=null", "input.size=512", "octaves=4", "steps=10", "device=cuda",
             "target=mixed_5b,mixed_6,mixed_6c,mixed_7", "jitter.max_shift=0,8,16,32"]
LAUNCHERS = {"basic": [], "batched": ["hydra/launcher=batched"],
             "batched_inexact": ["hydra/launcher=batched", "hydra.launcher.exact=false"]}


def run_sweep(sweep: list[str], launcher: list[str], sweep_dir: Path) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dreamrun", "-m", *launcher, *sweep, f"hydra.sweep.dir={sweep_dir}"],
                          cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the sweep failed:\n{proc.stderr[-3000:]}")
    jobs = sorted(path.parent for path in sweep_dir.glob("*/metrics.json"))
    seconds = [json.loads((job / "metrics.json").read_text())["seconds"] for job in jobs]
    together = bool(launcher)
    dreaming = max(seconds) if together else sum(seconds)
    return {"wall": wall, "dreaming": dreaming, "jobs": len(jobs), "overhead_per_job": (wall - dreaming) / len(jobs),
            "dreams": {job.name: job / "dream.png" for job in jobs}}


def largest_difference(one: dict, other: dict) -> int:
    """The largest difference between twin jobs' dream.png, in levels of 255."""
    worst = 0
    for name, path in one["dreams"].items():
        with Image.open(path) as a, Image.open(other["dreams"][name]) as b:
            worst = max(worst, int(np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max()))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="the 16-job mission sweep on CUDA")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: 5 on the CPU, 1 on a GPU)")
    parser.add_argument("--smoke", action="store_true",
                        help="the --gpu sweep shrunk to seconds on this machine's CPU: checks the script, measures nothing")
    parser.add_argument("--seeds", type=int, default=1, help="seed=range(0,N) on top: N times the jobs")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    sweep = (GPU_SWEEP if args.gpu else CPU_SWEEP) + ([f"seed=range(0,{args.seeds})"] if args.seeds > 1 else [])
    if args.smoke:
        sweep = [*GPU_SWEEP, "device=cpu", "input.size=160", "octaves=1", "steps=1"]
    launchers = LAUNCHERS
    rounds = args.rounds or (1 if args.gpu or args.smoke else 5)
    runs: dict[str, list[dict]] = {name: [] for name in launchers}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(rounds):
            for name, launcher in launchers.items():
                runs[name].append(run_sweep(sweep, launcher, Path(tmp) / f"{name}_{round_}"))
                print(f"round {round_ + 1}/{rounds} {name}: {runs[name][-1]['wall']:.2f} s", file=sys.stderr, flush=True)
        differences = {name: largest_difference(runs[name][-1], runs["basic"][-1]) for name in launchers
                       if name != "basic"}
    import torch

    device = torch.cuda.get_device_name() if args.gpu and not args.smoke else f"CPU, {torch.get_num_threads()} threads"
    figures = {"device": device, "torch": torch.__version__, "sweep": sweep, "rounds": rounds, "launchers": {}}
    print(f"{device}, torch {torch.__version__}: `python -m dreamrun -m {' '.join(sweep)}`, medians of {rounds}", flush=True)
    for name, results in runs.items():
        median = {key: statistics.median(r[key] for r in results) for key in ("wall", "dreaming", "overhead_per_job")}
        figures["launchers"][name] = {**median, "walls": [r["wall"] for r in results],
                                      "largest_pixel_difference_from_basic": differences.get(name, 0)}
        print(f"  {name:16s} wall {median['wall']:6.2f} s   dreaming {median['dreaming']:6.2f} s   "
              f"per-job overhead {median['overhead_per_job']:.2f} s   "
              f"pixels vs basic: {differences.get(name, 0)}/255 at most", flush=True)
    for name in launchers:
        if name != "basic":
            ratio = figures["launchers"]["basic"]["wall"] / figures["launchers"][name]["wall"]
            figures["launchers"][name]["speedup"] = ratio
            print(f"  {name} / basic: {ratio:.2f}x as fast", flush=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
