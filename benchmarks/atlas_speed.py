"""How long an 8-channel atlas takes, with the basic launcher (one job after another) and the batched one
(the jobs dream together, one pass of the network per step), each a whole `python -m dreamrun -m` process:

    python -m dreamrun -m +preset=atlas model=efficientnet_lite0 target=block_8 'target.block_8=range(0,8)'

    python benchmarks/atlas_speed.py     # prints the ratio; writes benchmarks/results/atlas_speed_cpu.json
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.gpu_readiness import machine  # noqa: E402


def atlas_seconds(launcher: str, side: int, steps: int, channels: int) -> float:
    with tempfile.TemporaryDirectory() as sweep_dir:
        command = [sys.executable, "-m", "dreamrun", "-m", "+preset=atlas", "model=efficientnet_lite0", "device=cpu",
                   "target=block_8", f"target.block_8=range(0,{channels})", f"input.size={side}", f"steps={steps}",
                   f"hydra/launcher={launcher}", f"hydra.sweep.dir={sweep_dir}"]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"basic": [], "batched": []}
    for _ in range(args.repeats):  # alternated, so a slow spell of the machine hits both
        for launcher in times:
            times[launcher].append(atlas_seconds(launcher, args.side, args.steps, args.channels))
            print(f"{launcher}: {times[launcher][-1]:.1f} s", flush=True)
    best = {launcher: min(seconds) for launcher, seconds in times.items()}
    result = {"machine": machine("cpu"), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
              "command": "python -m dreamrun -m +preset=atlas model=efficientnet_lite0 target=block_8 "
                         f"'target.block_8=range(0,{args.channels})' input.size={args.side} steps={args.steps}",
              "seconds": times, "best_seconds": best, "basic_over_batched": best["basic"] / best["batched"]}
    print(f"8-channel atlas at {args.side} px, {args.steps} steps: basic {best['basic']:.1f} s, batched "
          f"{best['batched']:.1f} s: batched is {result['basic_over_batched']:.2f}x as fast")
    if not args.no_save:
        (Path(__file__).parent / "results" / "atlas_speed_cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
