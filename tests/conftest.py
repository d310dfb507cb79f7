import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from dreamrun.config.compose import compose_config as _compose_config
from helpers.cli_server import CliServer

REPO = Path(__file__).resolve().parent.parent

# tiny and fast: a 96 px sample photo, 2 octaves of 2 steps, the offline network
TINY = ["model=efficientnet_lite0", "input.size=96", "octaves=2", "steps=2", "device=cpu"]
# a tiny zoom from noise: 4 frames of one step
ZOOM = ["mode=zoom", "model=efficientnet_lite0", "input=noise", "input.size=64", "device=cpu",
        "zoom.steps_per_frame=1", "zoom.frames=4"]


@pytest.fixture(scope="session", autouse=True)
def _cpu_threads():
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session", autouse=True)
def _no_user_presets(tmp_path_factory):
    """The tests compose dreamrun's presets only, whatever a developer keeps in ~/.config/dreamrun."""
    previous = os.environ.get("DREAMRUN_CONFIG_DIR")
    os.environ["DREAMRUN_CONFIG_DIR"] = str(tmp_path_factory.mktemp("no_user_configs") / "absent")
    yield
    if previous is None:
        del os.environ["DREAMRUN_CONFIG_DIR"]
    else:
        os.environ["DREAMRUN_CONFIG_DIR"] = previous


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory):
    """dreamrun's notes-said-once markers (no MP4 writer here) go to a temp dir, never the user's ~/.cache."""
    cache = tmp_path_factory.mktemp("xdg_cache")
    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture
def compose_cfg():
    """Compose dreamrun's config the way the CLI does, with command-line style overrides."""
    return _compose_config


_cli_server: CliServer | None = None


@pytest.fixture(scope="session", autouse=True)
def _close_cli_server():
    yield
    if _cli_server is not None:
        _cli_server.close()


def run_cli(*args: str, cwd: Path = REPO, env: dict | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """python -m dreamrun ARGS: in a child of the CLI server where that runs the same (tests/helpers/cli_server.py),
    else in a new interpreter (joblib's launcher too: a forked child waits forever for its loky workers to end)."""
    global _cli_server
    env = {**os.environ, **(env or {})}
    if os.environ.get("DREAMRUN_TESTS_FRESH") != "1":
        if _cli_server is None:
            _cli_server = CliServer()
        if _cli_server.forkable(env) and "hydra/launcher=parallel" not in args:
            return _cli_server.run(list(args), cwd=Path(cwd), env=env, timeout=timeout)
    return subprocess.run([sys.executable, "-m", "dreamrun", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def default_signals() -> None:
    # a shell without job control starts `pytest &` with SIGINT ignored, and children inherit that;
    # dreamrun rightly keeps an ignored SIGINT ignored, so give the child the default to test with
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(*args: str, cwd: Path = REPO, **popen) -> subprocess.Popen:
    """python -m dreamrun ARGS, started to be interrupted (SIGINT and SIGTERM as a terminal would send them)."""
    return subprocess.Popen([sys.executable, "-m", "dreamrun", *args], cwd=cwd, preexec_fn=default_signals, **popen)


def logged_progress_images(run_dir: Path) -> int:
    """Progress images a run (log.image_every=1) has flushed to its TensorBoard file: steps finished."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not list(Path(run_dir).glob("events.out.tfevents.*")):
        return 0
    board = EventAccumulator(str(run_dir), size_guidance={"images": 0}).Reload()
    return len(board.Images("dream/progress")) if "dream/progress" in board.Tags()["images"] else 0


def fake_sweep_job(sweep_dir: Path, num: int, overrides: list[str], status: str | None, color=(200, 30, 30)) -> Path:
    """A sweep job's run dir as a finished (or still running: status None) job leaves it, without running one."""
    job = sweep_dir / f"{num}_job"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"job": {"num": num}}}))
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if status:
        paths = {}
        if status == "completed":
            Image.new("RGB", (60, 40), color).save(job / "dream.png")
            paths = {"dream": "dream.png"}
        (job / "result.json").write_text(json.dumps({
            "overrides": overrides, "status": status, "error": "boom" if status == "failed" else None,
            "metrics": {"gain": 2.0 + num, "seconds": 1.5 * (num + 1)} if status == "completed" else {},
            "paths": paths, "started": "", "finished": ""}))
    return job


# a user's Hydra callback, written where a sweep's jobs import it from: what each job's start and end told it
_RECORDER = """
import json, os
from pathlib import Path
from hydra.experimental.callback import Callback

class Recorder(Callback):
    def _write(self, **row):
        with open(os.environ["RECORDER_FILE"], "a") as f:
            f.write(json.dumps(row) + "\\n")

    def on_job_start(self, config, **kwargs):
        self._write(event="start", run_dir=config.hydra.runtime.output_dir)

    def on_job_end(self, config, job_return, **kwargs):
        run_dir = Path(job_return.hydra_cfg.hydra.runtime.output_dir)
        result = run_dir / "result.json"
        self._write(event="end", run_dir=str(run_dir), status=job_return.status.name,
                    recorded=json.loads(result.read_text())["status"] if result.is_file() else None)
"""


def recorder_env(tmp_path: Path) -> tuple[dict, str]:
    """The environment and the override that attach the recording callback to a sweep."""
    (tmp_path / "recorder.py").write_text(_RECORDER)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "RECORDER_FILE": str(tmp_path / "events.jsonl")}
    return env, "+hydra.callbacks.recorder._target_=recorder.Recorder"


def recorded_job_ends(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(job number, JobReturn status, result.json status) of each job's end, by job number; asserts that
    every job started and ended once."""
    rows = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    ends = {row["run_dir"]: row for row in rows if row["event"] == "end"}
    starts = [row["run_dir"] for row in rows if row["event"] == "start"]
    assert sorted(starts) == sorted(ends), rows
    return sorted((Path(d).name.split("_")[0], row["status"], row["recorded"]) for d, row in ends.items())


def interrupt_at_step(monkeypatch, step: int) -> None:
    """Ctrl-C as the engine starts its step-th ascent step (1-based), in this process."""
    from dreamrun.core import engine

    real_step, calls = engine.ascent_step, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(engine, "ascent_step", interrupted)
