"""Runs that collide or die: a run dir belongs to one run at a time, and a dead run's dir says so.

Real CLI processes throughout: two terminals, a shell loop, a job array with a fixed dir, the OOM killer."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY, ZOOM, run_cli, start_cli
from dreamrun.jobs.claim import DIED, claim, is_live, release, run_status
from dreamrun.jobs.record import RUNNING
from dreamrun.errors import DreamError

LONG = [*TINY, "input.size=128", "steps=400", "log.image_every=0"]  # minutes of dreaming: stopped by the test


def wait_for(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def running(run_dir: Path) -> bool:
    try:
        return record(run_dir)["status"] == RUNNING
    except (FileNotFoundError, json.JSONDecodeError):
        return False


def files(run_dir: Path) -> dict[str, str]:
    """Every file under run_dir (lock file aside: it is only ever locked) -> a hash of its bytes."""
    return {str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != ".dreamrun.lock"}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("dreamrun: error:")]


def test_a_run_into_a_live_runs_dir_is_refused_and_touches_nothing(tmp_path):
    run_dir = tmp_path / "cc"
    first = start_cli(*LONG, "seed=1", f"hydra.run.dir={run_dir}", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (run_dir / "input.png").exists(), what="the first run's dream")
        second = run_cli(*TINY, "seed=2", f"hydra.run.dir={run_dir}")
        assert second.returncode == 2, second.stderr
        assert "Traceback" not in second.stderr
        assert error_lines(second.stderr) == [
            f"dreamrun: error: {run_dir} is in use by a run that is still going (pid {first.pid} on "
            f"{os.uname().nodename}, started {record(run_dir)['started']}): wait for it to end, or choose "
            "another hydra.run.dir"]
        assert second.stdout == ""
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    # everything in the dir is the first run's: its record, Hydra's record of it, one TensorBoard run
    assert record(run_dir)["overrides"][-1] == "seed=1" and record(run_dir)["status"] == "interrupted"
    hydra_record = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text())
    assert "seed=1" in hydra_record and "seed=2" not in hydra_record
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1


def test_two_runs_started_at_once_into_one_dir_make_one_run(tmp_path):
    run_dir = tmp_path / "cc"
    runs = [start_cli(*TINY, f"seed={seed}", f"hydra.run.dir={run_dir}", stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    outcomes = [(run.returncode, out, err) for run in runs for out, err in [run.communicate(timeout=300)]]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], [err for _, _, err in outcomes]
    (winner, out, _), = [(seed, out, err) for seed, (code, out, err) in zip((1, 2), outcomes) if code == 0]
    (loser_err,) = [err for code, _, err in outcomes if code == 2]
    assert len(error_lines(loser_err)) == 1 and "Traceback" not in loser_err
    assert out.strip() == str((run_dir / "dream.png").absolute())
    assert record(run_dir)["status"] == "completed" and f"seed={winner}" in record(run_dir)["overrides"]
    assert f"seed={3 - winner}" not in (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1


@pytest.mark.slow
def test_a_killed_run_leaves_a_mark_that_refuses_a_new_run_until_overwrite(tmp_path):
    run_dir = tmp_path / "cc"
    killed = start_cli(*LONG, "octaves=3", "steps=6", "input.size=256", "seed=1", f"hydra.run.dir={run_dir}",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (run_dir / "octave_0.png").exists(), what="the first octave")
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    mark = record(run_dir)
    assert (mark["status"], mark["pid"], mark["host"]) == (RUNNING, killed.pid, os.uname().nodename)
    assert run_status(run_dir) == DIED and not is_live(run_dir)
    before = files(run_dir)

    again = run_cli(*TINY, "seed=2", f"hydra.run.dir={run_dir}")
    assert again.returncode == 2 and "Traceback" not in again.stderr
    assert error_lines(again.stderr) == [
        f"dreamrun: error: {run_dir} holds the files of a run that died before it finished (pid {killed.pid} on "
        f"{os.uname().nodename}, started {mark['started']}): pass overwrite=true to replace them, or choose "
        "another hydra.run.dir"]
    assert files(run_dir) == before  # byte for byte

    replaced = run_cli(*TINY, "octaves=1", "seed=2", "overwrite=true", f"hydra.run.dir={run_dir}")
    assert replaced.returncode == 0, replaced.stderr
    assert record(run_dir)["status"] == "completed"
    assert sorted(p.name for p in run_dir.glob("*.png")) == ["dream.png", "input.png", "octave_0.png"]
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert not list(run_dir.glob(".*.part-*"))


@pytest.mark.slow
def test_a_sweep_job_killed_midway_is_called_died_while_the_others_go_on(tmp_path):
    """The out-of-memory killer takes one job of a sweep (each job in a process of its own): the sweep's
    summary, and dreamrun-summarize after it, call that job died, not completed or missing."""
    sweep_dir = tmp_path / "sweep"
    sweep = start_cli("-m", "hydra/launcher=local", *TINY, "steps=30", "seed=1,2", f"hydra.sweep.dir={sweep_dir}",
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job = sweep_dir / "0_seed=1"
    try:
        wait_for(lambda: running(job), what="the first job's claim")
        os.kill(record(job)["pid"], signal.SIGKILL)
    finally:
        _, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 1, err
    assert run_status(job) == DIED and record(sweep_dir / "1_seed=2")["status"] == "completed"
    assert f"  died {job.name}" in err
    again = subprocess.run([sys.executable, "-m", "dreamrun.sweeps.summary", str(sweep_dir), "--no-tensorboard"],
                           capture_output=True, text=True, timeout=300, cwd=REPO)
    assert "1 died" in again.stdout + again.stderr and "1 completed" in again.stdout + again.stderr


@pytest.mark.slow
def test_concurrent_runs_into_their_own_dirs_all_complete_beside_a_collision(tmp_path):
    dirs = [tmp_path / f"run{i}" for i in range(4)] + [tmp_path / "run0"]
    runs = [start_cli(*TINY, f"seed={i}", f"hydra.run.dir={d}", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                      text=True) for i, d in enumerate(dirs)]
    for run in runs:
        run.communicate(timeout=600)
    codes = [run.returncode for run in runs]
    assert codes[1:4] == [0, 0, 0]
    assert sorted([codes[0], codes[4]]) == [0, 2]
    for d in dirs[:4]:
        assert record(d)["status"] == "completed"


def test_a_second_sweep_into_a_running_sweeps_dir_is_refused(tmp_path):
    sweep_dir = tmp_path / "sweep"
    first = start_cli("-m", *LONG, "seed=1,2", f"hydra.sweep.dir={sweep_dir}", stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    try:
        wait_for(lambda: running(sweep_dir / "0_seed=1"), what="the first sweep's first job")
        second = run_cli("-m", *TINY, "seed=3,4", f"hydra.sweep.dir={sweep_dir}")
        assert second.returncode == 2
        assert error_lines(second.stderr) == [
            f"dreamrun: error: {sweep_dir} is in use by another run that is still going: wait for it to end, or "
            "choose another hydra.sweep.dir"]
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert "seed=3" not in (sweep_dir / "multirun.yaml").read_text()


def test_a_dir_is_one_jobs_even_within_one_process(tmp_path):
    claim(tmp_path, overrides=["seed=1"])
    try:
        assert is_live(tmp_path) and run_status(tmp_path) == RUNNING
        with pytest.raises(DreamError, match="in use by a run that is still going"):
            claim(tmp_path / ".." / tmp_path.name)  # another job of this process (a batched sweep's thread)
    finally:
        release(tmp_path)
    assert not is_live(tmp_path) and run_status(tmp_path) == DIED  # released without an outcome: as if killed
    with pytest.raises(DreamError, match="died before it finished"):
        claim(tmp_path)
    claim(tmp_path, overwrite=True, hand_over=True)  # the CLI's claim, before Hydra writes
    claim(tmp_path)  # the job takes it over, once
    with pytest.raises(DreamError, match="in use"):
        claim(tmp_path)
    release(tmp_path)


def test_without_file_locks_the_process_id_tells_a_live_run(tmp_path, monkeypatch):
    """Some network file systems refuse flock: a run is live while its process is (on this host)."""
    import errno

    import dreamrun.jobs.claim as claims

    def no_locks(fd, how):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(claims.fcntl, "flock", no_locks)
    claim(tmp_path)
    release(tmp_path)
    assert is_live(tmp_path)  # result.json says running, in this (live) process
    (tmp_path / "result.json").write_text(json.dumps({**record(tmp_path), "pid": _dead_pid()}))
    assert not is_live(tmp_path) and run_status(tmp_path) == DIED
    claim(tmp_path, overwrite=True)
    release(tmp_path)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_run_stopped_while_it_starts_says_interrupted(tmp_path):
    """Ctrl-C between the claim and the job (Hydra's set-up, torch importing): exit 130 and a record that
    says so, not a run that reads as died, and never a half-imported torch going on to dream."""
    for attempt in range(3):
        run_dir = tmp_path / str(attempt)
        run = start_cli(*LONG, f"hydra.run.dir={run_dir}", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_for(lambda: running(run_dir), what="the claim")
        time.sleep(0.2 * attempt)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
        assert run.returncode == 130, err.decode()
        assert record(run_dir)["status"] == "interrupted" and not is_live(run_dir)


def test_resuming_a_zoom_that_is_still_going_is_refused(tmp_path):
    run_dir = tmp_path / "zoom"
    settings = [*ZOOM, "zoom.frames=200", "zoom.steps_per_frame=25", f"hydra.run.dir={run_dir}"]
    zoom = start_cli(*settings, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (run_dir / "zoom_state.json").exists(), what="the zoom's first saved frame")
        again = run_cli(*settings, "resume=true")
        assert again.returncode == 2
        (line,) = error_lines(again.stderr)
        assert f"{run_dir} is in use by a run that is still going (pid {zoom.pid} " in line
    finally:
        zoom.send_signal(signal.SIGINT)
        zoom.communicate(timeout=120)
    assert record(run_dir)["status"] == "interrupted"
