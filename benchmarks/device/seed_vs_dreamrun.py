"""The seed's own DeepDream code (../shared/seed/run_seed.py) against dreamrun, the same job: the sample photo at
512 px, 3 octaves of 10 steps, Inception-v3's Mixed_6e, random weights in both (neither can download here). Each
runs as a whole process; the seed prints its dream() seconds, dreamrun's metrics.json has its own.

    python benchmarks/device/seed_vs_dreamrun.py OUT_DIR [--device cuda] [--side 512]

Writes OUT_DIR/seed.json (gpu.json's keys: seed_job_seconds, dreamrun_job_seconds, seed_process_seconds,
dreamrun_process_seconds); the seed's absence is written there too. The seed stays in ../shared, which does not
travel to the device machine: fetch_wheels.sh copies it into .seed/ (git-ignored, never committed) for the call
to carry.
"""
import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEED = next((path for path in (REPO / ".seed" / "run_seed.py", REPO.parent / "shared" / "seed" / "run_seed.py")
             if path.is_file()), REPO.parent / "shared" / "seed" / "run_seed.py")


def timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--side", type=int, default=512)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not SEED.is_file():
        result = {"error": f"{SEED} is not on this machine"}
    else:
        from dreamrun.inputs.images import sample_image

        photo = args.out / "seed_photo.png"
        sample = sample_image()
        sample.resize((args.side, round(args.side * sample.height / sample.width))).save(photo)
        seed_seconds, seed = timed([sys.executable, str(SEED), str(photo), str(args.out / "seed_dream.png"),
                                    "--target", "Mixed_6e", "--octaves", "3", "--steps", "10",
                                    "--device", args.device])
        run_dir = args.out / "seed_dreamrun_run"
        ours_seconds, ours = timed([sys.executable, "-m", "dreamrun", f"input.path={photo}", "model.weights=null",
                                    "target=mixed_6e", "octaves=3", "steps=10", f"device={args.device}",
                                    "log=none", f"hydra.run.dir={run_dir}", "overwrite=true"])
        seed_job = re.search(r"seed dream seconds ([\d.]+)", seed.stderr)
        metrics = run_dir / "metrics.json"
        result = {"seed_job_seconds": float(seed_job[1]) if seed_job else None,
                  "dreamrun_job_seconds": json.loads(metrics.read_text())["seconds"] if metrics.is_file() else None,
                  "seed_process_seconds": seed_seconds, "dreamrun_process_seconds": ours_seconds,
                  "seed_status": seed.returncode, "dreamrun_status": ours.returncode,
                  "seed_stderr_tail": seed.stderr[-2000:], "dreamrun_stderr_tail": ours.stderr[-2000:]}
    (args.out / "seed.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("_tail")}))


if __name__ == "__main__":
    main()
