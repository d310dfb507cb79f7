"""Does a long-lived process leak? Many tiny jobs, one process: its memory, open files and threads.

    python benchmarks/soak.py                    # all three at full size: under 3 minutes on 2 idle cores
    python benchmarks/soak.py api --jobs 200     # dreamrun.dream() in a loop, as a notebook calls it
    python benchmarks/soak.py files --jobs 200   # run_job in a loop: every file, a TensorBoard writer each
    python benchmarks/soak.py sweep --jobs 50    # python -m dreamrun -m seed=range(0,50): the basic launcher
    python benchmarks/soak.py sweep --samples    # ... and every sample of the sweep process

Every job is tiny: efficientnet_lite0 (offline weights) on a 64 px image, 1 octave of 1 step, on the CPU.
In process, RSS (VmRSS of /proc/self/status, after gc.collect()) is read before the first job, after a
warm-up of --warmup jobs (allocator pools, lazy imports, caches filled) and after the last; so are the
open file descriptors (/proc/self/fd) and Python threads (threading.active_count()). A sweep runs as a
process of its own: its VmRSS, open fds and OS threads are sampled every 0.1 s beside the count of
result.json files written so far, which says which job each sample fell in; VmHWM is its peak. Growth
is the RSS after the last job minus the RSS after the warm-up. tests/test_soak.py runs these soaks at CI
sizes and bounds what they may grow.
"""
import argparse
import json
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers.soak import soak_in_process, soak_sweep  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kinds", nargs="*", help="api, files, sweep (default: all three)")
    parser.add_argument("--jobs", type=int, help="jobs per soak (default: 200 in process, 50 in a sweep)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--samples", action="store_true", help="print every sample of a sweep")
    args = parser.parse_args()
    kinds = args.kinds or ["api", "files", "sweep"]
    if set(kinds) - {"api", "files", "sweep"}:
        parser.error(f"unknown soak {sorted(set(kinds) - {'api', 'files', 'sweep'})}: choose api, files or sweep")
    import torch

    print(f"torch {torch.__version__}, {min(2, torch.get_num_threads())} threads, {os.cpu_count()} CPUs", flush=True)
    figures = []
    for kind in kinds:
        with tempfile.TemporaryDirectory() as workdir:
            if kind == "sweep":
                soak, samples = soak_sweep(args.jobs or 50, args.warmup, Path(workdir) / "sweep")
                if args.samples:
                    print("\n".join(f"  {s.seconds:6.1f} s  {s.done:3d} done  RSS {s.rss:7.1f} MB  "
                                     f"fds {s.fds}  threads {s.threads}" for s in samples), flush=True)
            else:
                soak = soak_in_process(kind, args.jobs or 200, args.warmup, Path(workdir))
        print(soak.report(), flush=True)
        figures.append({**asdict(soak), "growth": soak.growth, "growth_per_job_kb": soak.growth_per_job_kb})
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
