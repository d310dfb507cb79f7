"""Where a CLI job's wall time goes, phase by phase: the mission command by default.

    python benchmarks/job_phases.py                                  # target=mixed_6 octaves=4, random weights
    python benchmarks/job_phases.py --runs 5 model=efficientnet_lite0 target=block_12

Each run is a fresh `python -m dreamrun` process, as a user starts it, with timers wrapped around
the job's phases from inside (the wrappers add a few microseconds). The wall time is taken from
outside, start to exit. "Everything else" is the wall time minus the imports and the dreaming: the
interpreter, Hydra, the run dir, the input, building the network, measuring the objective, writing
the results and exiting. Prints the median of each phase; --json writes them all.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MISSION = ["target=mixed_6", "octaves=4", "model.weights=null", "device=cpu"]

# runs inside the dreamrun process: times the phases by wrapping the functions that make them
PROBE = r"""
import json, sys, time
marks = {"python": time.time() - float(sys.argv[1])}
t0 = time.perf_counter()
spans = {}

import torch, torchvision, hydra, omegaconf
from torch.utils import tensorboard
import dreamrun.cli as cli
from dreamrun.core import engine
from dreamrun.jobs import dream, dreamer, skeleton, record
marks["imports"] = time.perf_counter() - t0

def timed(owner, name, phase):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spans[phase] = spans.get(phase, 0.0) + time.perf_counter() - start
    setattr(owner, name, wrapper)

timed(cli, "_run_job", "job")
timed(skeleton.JobKind, "load_input", "input")
timed(dream, "prepare", "network")
timed(dream.DreamJob, "observers", "observers")
timed(dream.DreamJob, "run", "run")
timed(engine, "dream", "dreaming")
timed(dreamer.Dreamer, "activations", "objective before/after")
timed(record.JobRecord, "finish", "result.json")
timed(skeleton, "SummaryWriter", "tensorboard open")

exit_ = cli._exit

def report_then_exit(status):  # main's last call: the process ends inside it
    spans["main"] = time.perf_counter() - main_start
    print("PHASES " + json.dumps({**marks, **spans, "status": status}), file=sys.stderr)
    exit_(status)

cli._exit = report_then_exit
sys.argv = ["dreamrun", *sys.argv[2:]]
main_start = time.perf_counter()
cli.main()
"""


def one_run(overrides: list[str], workdir: Path) -> dict[str, float]:
    run_dir = Path(tempfile.mkdtemp(dir=workdir)) / "run"
    start_wall = time.time()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE, repr(start_wall), *overrides, f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    line = next((l for l in proc.stderr.splitlines() if l.startswith("PHASES ")), None)
    if proc.returncode != 0 or line is None:
        sys.exit(f"the job failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    p = json.loads(line.removeprefix("PHASES "))
    tensorboard = p["observers"] + p.get("tensorboard open", 0.0)
    results = p["run"] - p["dreaming"] - p["objective before/after"]
    in_job = p["input"] + p["network"] + tensorboard + p["run"] + p["result.json"]
    phases = {
        "python start-up": p["python"],
        "imports (torch, torchvision, hydra, dreamrun)": p["imports"],
        "Hydra: compose, callbacks, run dir, logging": p["main"] - p["job"],
        "input image": p["input"],
        "network: build, cut, fold, configure": p["network"],
        "TensorBoard writer, input logged": tensorboard,
        "dreaming (engine.dream)": p["dreaming"],
        "objective before/after": p["objective before/after"],
        "results: dream.png, metrics, TensorBoard": results,
        "result.json": p["result.json"],
        "rest of the job (skeleton, closing TensorBoard)": p["job"] - in_job,
        "exit (threads, interpreter teardown)": wall - p["python"] - p["imports"] - p["main"],
    }
    phases["wall"] = wall
    phases["everything else (wall - imports - dreaming)"] = (
        wall - phases["imports (torch, torchvision, hydra, dreamrun)"] - phases["dreaming (engine.dream)"])
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every run's phases here")
    parser.add_argument("overrides", nargs="*", help=f"dreamrun overrides (default: {' '.join(MISSION)})")
    args = parser.parse_args()
    overrides = args.overrides or MISSION
    with tempfile.TemporaryDirectory() as workdir:
        one_run(overrides, Path(workdir))  # warm-up: the page cache, not counted
        runs = [one_run(overrides, Path(workdir)) for _ in range(args.runs)]
    print(f"python -m dreamrun {' '.join(overrides)}: median of {args.runs} runs", flush=True)
    for phase in runs[0]:
        print(f"  {phase:<50} {statistics.median(r[phase] for r in runs):7.3f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"overrides": overrides, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
