"""The job skeleton: every job kind lives the same life, fails the same way and leaves the same record."""
import json
import signal

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, ZOOM
from dreamrun.core import engine
from dreamrun.errors import DreamError
from dreamrun.jobs.dream import DreamJob
from dreamrun.jobs.skeleton import run_job
from dreamrun.jobs.zoom import ZoomJob

KINDS = [pytest.param(DreamJob, TINY, id="dream"), pytest.param(ZoomJob, ZOOM, id="zoom")]


@pytest.mark.parametrize("kind, overrides", KINDS)
def test_a_finished_job_records_its_metrics_and_every_file(compose_cfg, tmp_path, kind, overrides):
    result = run_job(kind(compose_cfg(*overrides), tmp_path, progress=False), overrides=overrides)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "completed" and record["error"] is None and record["overrides"] == overrides
    assert record["metrics"] == json.loads((tmp_path / "metrics.json").read_text()) == result.metrics
    assert result.output.is_file() and record["paths"]["dream"] == "dream.png"
    assert record["metrics"]["model"] == "efficientnet_lite0" and record["metrics"]["device"] == "cpu"


@pytest.mark.parametrize("kind, overrides", KINDS)
def test_every_job_kind_stops_at_a_nan_objective_with_one_line(compose_cfg, tmp_path, kind, overrides):
    # a network whose activations are NaN (NaN weights files are refused when they are read)
    poisoned = ["model=custom", "model._target_=tiny_net.build_nan", "+model.layers={features: '4'}",
                "+target.features=all", "model.weights=null"]
    keep = [o for o in overrides if not o.startswith("model=")]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(DreamError, match="the objective became NaN or infinite at step 0"):
        run_job(kind(compose_cfg(*keep, *poisoned), run_dir, progress=False))
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "failed" and "NaN" in record["error"]
    with Image.open(run_dir / "last_good.png") as good, Image.open(run_dir / "input.png") as source:
        assert good.size[0] <= source.size[0]  # the first octave's image: the input, shrunk
        assert np.asarray(good).std() > 0


@pytest.mark.parametrize("kind, overrides", KINDS)
def test_every_job_kind_says_what_to_change_when_memory_runs_out(compose_cfg, tmp_path, monkeypatch, kind,
                                                                 overrides):
    def no_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(engine, "ascent_step", no_memory)
    with pytest.raises(DreamError, match=r"^out of memory dreaming a \d+x\d+ px image on cpu: .*tile.size"):
        run_job(kind(compose_cfg(*overrides), tmp_path, progress=False))
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith("out of memory")


def test_a_job_gives_the_host_its_signal_handlers_back(compose_cfg, tmp_path):
    """The Python API in a notebook: dreamrun's SIGINT handler lives only as long as the job."""
    host = lambda signum, frame: None  # noqa: E731
    saved = {s: signal.signal(s, host) for s in (signal.SIGINT, signal.SIGTERM)}
    seen = {}

    def record_handler(*args, **kwargs):
        seen["handler"] = signal.getsignal(signal.SIGINT)
        return step(*args, **kwargs)

    step = engine.ascent_step
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(engine, "ascent_step", record_handler)
            run_job(DreamJob(compose_cfg(*TINY, "octaves=1", "steps=1"), tmp_path, progress=False))
        assert seen["handler"] is not host  # dreamrun's own while dreaming
        assert all(signal.getsignal(s) is host for s in saved)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_a_bug_is_recorded_as_failed_and_keeps_its_traceback(compose_cfg, tmp_path, monkeypatch):
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(engine, "ascent_step", bug)
    with pytest.raises(ZeroDivisionError):
        run_job(DreamJob(compose_cfg(*TINY), tmp_path, progress=False))
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "failed" and record["error"] == "ZeroDivisionError: a bug"


@pytest.fixture
def time_limit_warning():
    """handle_time_limit_warning(SIGUSR2) in this process, as in a SLURM job; undone afterwards."""
    from dreamrun.jobs import interrupts

    previous = signal.getsignal(signal.SIGUSR2)
    interrupts.handle_time_limit_warning(signal.SIGUSR2)
    yield interrupts
    signal.signal(signal.SIGUSR2, previous)
    interrupts._time_limit_signal = interrupts._pending = None


def test_a_time_limit_warning_before_the_job_runs_stops_it_as_it_starts(compose_cfg, tmp_path, time_limit_warning):
    """SLURM may warn while the job's process is still starting (imports, Hydra): the warning comes once,
    so the job must not miss it, nor be torn down outside the skeleton without a record."""
    signal.raise_signal(signal.SIGUSR2)  # no job yet: remembered
    with pytest.raises(time_limit_warning.TimeLimitNear):
        run_job(DreamJob(compose_cfg(*TINY), tmp_path, progress=False))
    record = json.loads((tmp_path / "result.json").read_text())
    assert (record["status"], record["error"]) == ("interrupted", "SIGUSR2: the cluster job's time limit is near")
    # consumed: the next job in this process runs
    run_job(DreamJob(compose_cfg(*TINY), tmp_path / "next", progress=False))
    assert json.loads((tmp_path / "next" / "result.json").read_text())["status"] == "completed"


def test_a_time_limit_warning_while_dreaming_keeps_the_last_step(compose_cfg, tmp_path, time_limit_warning,
                                                                 monkeypatch):
    steps = []
    step = engine.ascent_step

    def warned_on_the_third_step(*args, **kwargs):
        steps.append(1)
        if len(steps) == 3:
            signal.raise_signal(signal.SIGUSR2)
        return step(*args, **kwargs)

    monkeypatch.setattr(engine, "ascent_step", warned_on_the_third_step)
    with pytest.raises(time_limit_warning.TimeLimitNear):
        run_job(DreamJob(compose_cfg(*TINY, "steps=50"), tmp_path, progress=False))
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["status"] == "interrupted" and record["paths"]["interrupted"] == "interrupted.png"
    assert len(steps) == 3  # stopped at the warning, not at the end


def test_a_jobs_config_is_validated_once(compose_cfg, tmp_path, monkeypatch):
    """Alone, in a group dreaming together, and through dream(): one validation a job, in one place."""
    import sys

    from dreamrun import api
    from dreamrun.jobs import skeleton
    from dreamrun.sweeps.batching import Job, dream_together

    validated = []
    real = skeleton.validate
    for module in [m for name, m in list(sys.modules.items()) if name.startswith("dreamrun")]:
        if getattr(module, "validate", None) is real:  # wherever it was imported to
            monkeypatch.setattr(module, "validate", lambda cfg: validated.append(cfg.seed) or real(cfg))
    run_job(DreamJob(compose_cfg(*TINY, "seed=7"), tmp_path / "alone", progress=False))
    assert validated == [7]
    validated.clear()
    dream_together([Job(compose_cfg(*TINY, f"seed={seed}", "precision=fp32"), tmp_path / str(seed))
                    for seed in (1, 2)])
    assert sorted(validated) == [1, 2]
    validated.clear()
    api.dream(tmp_path / "alone" / "input.png", model="efficientnet_lite0", octaves=1, steps=1, seed=3)
    assert validated == [3]
