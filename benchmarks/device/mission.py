"""The mission dream as a user runs it, time-boxed, leaving every thread's stack behind if it stalls:

    python benchmarks/device/mission.py OUT_DIR [--limit-s 240] -- target=mixed_6 octaves=4 model.weights=null

Runs `python -m dreamrun OVERRIDES` in a child process; a watchdog in that child (faulthandler) writes all its
threads' stacks to OUT_DIR/mission_stacks.txt every --stacks-every-s (30 s), so a run that prints nothing still
says where it waits. The child is killed at --limit-s. Writes OUT_DIR/mission.json: the exit status, the whole
process's seconds, and the job's own metrics (metrics.json: seconds dreaming, device, precision) when it got
that far.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

WATCHDOG = """
import faulthandler, runpy, sys
faulthandler.dump_traceback_later(float(sys.argv[2]), repeat=True, file=open(sys.argv[1], "w"))
sys.argv = ["dreamrun", *sys.argv[3:]]
runpy.run_module("dreamrun", run_name="__main__", alter_sys=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--limit-s", type=float, default=240)
    parser.add_argument("--stacks-every-s", type=float, default=30)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)  # dreamrun's overrides come after --
    args = parser.parse_args(argv[:cut])
    args.overrides = argv[cut + 1:]
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = args.out / "mission_run"
    command = [sys.executable, "-c", WATCHDOG, str(args.out / "mission_stacks.txt"), str(args.stacks_every_s),
               *args.overrides,
               f"hydra.run.dir={run_dir}", "overwrite=true"]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=args.limit_s)
        status, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as stopped:
        status, stdout, stderr = "timed out", stopped.stdout or "", stopped.stderr or ""
        stdout, stderr = (s.decode() if isinstance(s, bytes) else s for s in (stdout, stderr))
    seconds = time.perf_counter() - start
    (args.out / "mission_stderr.txt").write_text(stderr)
    metrics = run_dir / "metrics.json"
    result = {"overrides": args.overrides, "status": status, "process_seconds": round(seconds, 2),
              "stdout": stdout.strip(), "metrics": json.loads(metrics.read_text()) if metrics.is_file() else None}
    (args.out / "mission.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"mission: {status} in {seconds:.1f} s" + (f", dreaming {result['metrics']['seconds']} s on "
                                                       f"{result['metrics']['device']}" if result["metrics"] else ""))


if __name__ == "__main__":
    main()
