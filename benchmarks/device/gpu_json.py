"""gpu.json from what a gpu.sh run left in OUT_DIR, under the keys issue #32 names; a step that did not run (or
failed) leaves its keys out and is listed under "missing", so a run cut short still says what it measured.

    python benchmarks/device/gpu_json.py OUT_DIR          # writes OUT_DIR/gpu.json and prints it
"""
import json
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path


def read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def gpu_tests(report: Path):
    """passed, failed, skipped from pytest's JUnit report."""
    try:
        suite = ElementTree.parse(report).getroot()
    except (OSError, ElementTree.ParseError):
        return None
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    count = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    failed = count["failures"] + count["errors"]
    return {"passed": count["tests"] - failed - count["skipped"], "failed": failed, "skipped": count["skipped"]}


def main(out: Path) -> dict:
    steps, seed, batched = read(out / "step_speed.json"), read(out / "seed.json"), read(out / "batched_sweep_gpu.json")
    mission, tests = read(out / "mission.json"), gpu_tests(out / "gpu_tests.xml")
    machine = read(out / "env.json") or steps or {}
    result: dict = {"date": time.strftime("%Y-%m-%d"), "device": machine.get("device"), "torch": machine.get("torch"),
                    "missing": []}
    if steps:
        result["step_ms"], result["peak_fraction"] = steps["step_ms"], steps["peak_fraction"]
    else:
        result["missing"].append("step_speed")
    if seed and "error" not in seed and seed.get("seed_status") == 0 and seed.get("dreamrun_status") == 0:
        result.update({key: seed[key] for key in ("seed_job_seconds", "dreamrun_job_seconds", "seed_process_seconds",
                                                  "dreamrun_process_seconds")})
    else:
        why = seed.get("error") or f"exit {seed.get('seed_status')} / {seed.get('dreamrun_status')}" if seed else ""
        result["missing"].append("seed" + (f": {why}" if why else ""))
    if batched and "batched" in batched.get("launchers", {}):
        result["batched_sweep"] = {"speedup": batched["launchers"]["batched"].get("speedup"),
                                   "largest_pixel_difference_from_basic":
                                       batched["launchers"]["batched"].get("largest_pixel_difference_from_basic")}
    else:
        result["missing"].append("batched_sweep")
    if tests:
        result["gpu_tests"] = tests
    else:
        result["missing"].append("gpu_tests")
    if mission:
        result["mission"] = {key: mission[key] for key in ("overrides", "status", "process_seconds")}
        result["mission"]["dreaming_seconds"] = (mission.get("metrics") or {}).get("seconds")
    else:
        result["missing"].append("mission")
    (out / "gpu.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1])), indent=2))
