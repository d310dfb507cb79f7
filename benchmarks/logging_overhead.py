"""What TensorBoard logging costs: the same dream with and without it, interleaved.

    python benchmarks/logging_overhead.py                      # Inception-v3 defaults (random weights)
    python benchmarks/logging_overhead.py model=efficientnet_lite0 --repeats 5

Extra arguments are dreamrun config overrides. Random weights time exactly like real ones,
so this runs offline. Prints the median job time with and without logging and the ratio.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dreamrun.config.compose import compose_config
from dreamrun.jobs.dream import DreamJob
from dreamrun.jobs.skeleton import run_job


def job_seconds(overrides: list[str], log: str, workdir: Path) -> float:
    cfg = compose_config(*overrides, f"log={log}")
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    start = time.perf_counter()
    run_job(DreamJob(cfg, run_dir, progress=False))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args, overrides = parser.parse_known_args()
    overrides = overrides or ["model.weights=null"]
    if not any(o.startswith("model.weights") or o.startswith("model=") for o in overrides):
        overrides.append("model.weights=null")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, overrides: {' '.join(overrides)}", flush=True)
    times = {"none": [], "tensorboard": []}
    with tempfile.TemporaryDirectory() as workdir:
        job_seconds(overrides, "none", Path(workdir))  # warm-up: imports, allocator, caches
        for _ in range(args.repeats):
            for log in times:  # interleaved, so drift in machine load hits both alike
                times[log].append(job_seconds(overrides, log, Path(workdir)))
    plain, logged = statistics.median(times["none"]), statistics.median(times["tensorboard"])
    print(f"without logging: {plain:.2f} s   with TensorBoard logging: {logged:.2f} s (median of {args.repeats})", flush=True)
    print(f"logging overhead: {logged / plain:.3f}x ({(logged - plain) / plain:+.1%})", flush=True)


if __name__ == "__main__":
    main()
