"""Jobs dreaming together (dreamrun.sweeps.batching, hydra/launcher=batched): each job's pixels and run
dir are those it makes alone, through the job skeleton, as the basic launcher runs it."""
import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import logged_progress_images, run_cli, start_cli
from dreamrun.jobs.dream import DreamJob
from dreamrun.jobs.skeleton import run_job
from dreamrun.sweeps import batching
from dreamrun.sweeps.batching import Job, Models, dream_together, group_key
from helpers.dreams import solo_dream

BASE = ["model=efficientnet_lite0", "input.size=96", "octaves=2", "device=cpu", "precision=fp32"]
# what may differ between jobs dreaming together: target, steps, step size, jitter, seed
DIFFERENT = [
    ["target=block_12", "steps=3", "step_size=0.01", "jitter.max_shift=8", "seed=0"],
    ["+target.block_3=[1,5]", "~target.block_12", "steps=1", "step_size=0.05", "jitter.max_shift=0", "seed=1"],
    ["target=block_8", "steps=2", "step_size=0.02", "jitter.max_shift=31", "seed=2"],
]


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.int16)


def _jobs(compose_cfg, root: Path, overrides: list[list[str]]) -> list[Job]:
    return [Job(compose_cfg(*BASE, *o), root / str(i), [*BASE, *o]) for i, o in enumerate(overrides)]


def test_jobs_that_differ_in_target_steps_step_size_jitter_and_seed_share_a_group(compose_cfg):
    keys = {group_key(compose_cfg(*BASE, *o)) for o in DIFFERENT}
    assert len(keys) == 1 and None not in keys
    # and what a batch cannot share splits them
    for other in (["input.size=128"], ["octaves=3"], ["model=resnet50"], ["precision=bf16"], ["mode=zoom"],
                  ["tile.size=64"]):
        assert group_key(compose_cfg(*BASE, *other)) not in keys, other


def test_random_weights_are_drawn_from_the_seed_so_it_is_shared_there(compose_cfg):
    random = ["model=resnet50", "model.weights=null", *BASE[1:]]
    assert group_key(compose_cfg(*random, "seed=0")) != group_key(compose_cfg(*random, "seed=1"))
    assert group_key(compose_cfg(*BASE, "seed=0")) == group_key(compose_cfg(*BASE, "seed=1"))


@pytest.fixture
def passes(monkeypatch) -> list[int]:
    """How many images each pass of the shared network took."""
    taken = []
    batch = batching.Rendezvous._batch

    def counted(self, size, members, asked):
        taken.append(len(members))
        return batch(self, size, members, asked)

    monkeypatch.setattr(batching.Rendezvous, "_batch", counted)
    return taken


def test_each_jobs_pixels_and_files_are_those_of_its_solo_run(compose_cfg, tmp_path, passes):
    together = _jobs(compose_cfg, tmp_path / "together", DIFFERENT)
    dream_together(together)
    assert passes  # the jobs' gradients came from the shared network
    for job, overrides in zip(together, DIFFERENT):
        solo = tmp_path / "solo" / job.run_dir.name
        run_job(DreamJob(compose_cfg(*BASE, *overrides), solo, progress=False))
        assert job.error is None and job.result is not None
        # within 1/255 of the solo dream: the same steps, up to the rounding of batched arithmetic
        assert np.abs(_pixels(job.run_dir / "dream.png") - _pixels(solo / "dream.png")).max() <= 1
        assert sorted(p.name for p in job.run_dir.iterdir() if not p.name.startswith("events")) == \
            sorted(p.name for p in solo.iterdir() if not p.name.startswith("events"))
        record = json.loads((job.run_dir / "result.json").read_text())
        assert record["status"] == "completed" and record["overrides"] == [*BASE, *overrides]
        alone = json.loads((solo / "metrics.json").read_text())
        metrics = json.loads((job.run_dir / "metrics.json").read_text())
        assert metrics["targets"].keys() == alone["targets"].keys()
        # the group inspects its common input once: each job's objective before is still its own
        assert metrics["objective_before"] == alone["objective_before"]
        assert [t["before"] for t in metrics["targets"].values()] == [t["before"] for t in alone["targets"].values()]
        assert metrics["objective_after"] == pytest.approx(alone["objective_after"], rel=1e-3)
        steps = 2 * int(next(o for o in overrides if o.startswith("steps=")).split("=")[1])
        board = EventAccumulator(str(job.run_dir), size_guidance={"scalars": 0}).Reload()
        assert len(board.Scalars("dream/loss")) == steps  # its own TensorBoard run, every step


def test_a_dream_turns_the_last_bit_of_a_gradient_into_a_different_dream(compose_cfg):
    """Why exactness is bit for bit: 1e-6 of noise on the input of a 3-octave fp32 dream moves its pixels
    by many levels of 255, so a batch whose arithmetic rounds otherwise makes another dream."""
    from dreamrun.jobs.skeleton import load_input

    cfg = compose_cfg(*BASE, "input.size=128", "octaves=3", "steps=10", "target=block_12")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    nudged = (image + 1e-6 * torch.randn(image.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    moved = (solo_dream(cfg, image).image - solo_dream(cfg, nudged).image).abs().mean() * 255
    assert moved > 1


class Doubling(torch.nn.Module):
    """A network whose batches compute each image as alone (skew=0), or not (skew: added to batches)."""

    def __init__(self, skew: float):
        super().__init__()
        self.skew = skew
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, images):
        return {"a": images * self.scale + (self.skew if len(images) > 1 else 0.0)}


@pytest.mark.parametrize("skew, invariant", [(0.0, True), (1e-6, False)])
def test_batch_invariant_says_whether_a_batch_computes_an_image_as_alone(compose_cfg, skew, invariant):
    assert batching.batch_invariant(Doubling(skew), compose_cfg(*BASE), torch.rand(1, 3, 64, 96)) is invariant


class SkewedAbove(Doubling):
    """Computes an image as alone in batches of up to `fine` images, otherwise not."""

    def __init__(self, fine: int):
        super().__init__(1e-6)
        self.fine = fine

    def forward(self, images):
        return {"a": images * self.scale + (self.skew if len(images) > self.fine else 0.0)}


def test_batch_invariance_is_checked_at_the_size_of_the_groups_batch(compose_cfg):
    """Kernels are chosen by batch size (cuDNN's heuristics, oneDNN's blocking): a batch of 3 that
    computes each image as alone says nothing about a batch of 5."""
    image = torch.rand(1, 3, 64, 96)
    assert batching.batch_invariant(SkewedAbove(3), compose_cfg(*BASE), image, batch=3)
    assert not batching.batch_invariant(SkewedAbove(3), compose_cfg(*BASE), image, batch=5)


def test_an_exact_group_that_cannot_batch_says_so_and_checks_as_it_dreams(compose_cfg, tmp_path, passes,
                                                                         monkeypatch, caplog):
    """The check and the dream run under the same flags (cuDNN's deterministic algorithms, no autotuning):
    what the check saw is what the dream gets. Where batches differ, the jobs dream one image at a time,
    and the log says why and how to batch them anyway."""
    seen = []

    def not_invariant(net, cfg, image, batch):
        seen.append((batch, torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark))
        return False

    monkeypatch.setattr(batching, "batch_invariant", not_invariant)
    jobs = _jobs(compose_cfg, tmp_path, DIFFERENT)
    dream_together(jobs)
    assert seen == [(3, True, False)]
    assert set(passes) == {1}
    assert any("exact=true" in r.getMessage() and "one image at a time" in r.getMessage()
               and "hydra.launcher.exact=false" in r.getMessage() for r in caplog.records)
    assert torch.backends.cudnn.deterministic is False  # the process's own setting is back
    for job in jobs:
        assert json.loads((job.run_dir / "result.json").read_text())["status"] == "completed"


def test_inexact_batches_serve_several_jobs_per_pass(compose_cfg, tmp_path, passes):
    jobs = _jobs(compose_cfg, tmp_path, DIFFERENT)
    dream_together(jobs, exact=False)
    assert max(passes) == 3  # the three jobs' first steps were one pass
    for job in jobs:
        assert json.loads((job.run_dir / "result.json").read_text())["status"] == "completed"
        assert (job.run_dir / "dream.png").is_file()


def test_a_job_fails_alone_in_its_group(compose_cfg, tmp_path, monkeypatch):
    """A channel the layer lacks fails before the job joins; a NaN objective fails inside the batch."""
    values = batching.TogetherDreamer.values

    def nan_for_member_1(self, acts, size):
        out = values(self, acts, size)
        return {**out, "loss": out["loss"] * float("nan")} if self.member == 1 else out

    monkeypatch.setattr(batching.TogetherDreamer, "values", nan_for_member_1)
    jobs = _jobs(compose_cfg, tmp_path, [DIFFERENT[0], DIFFERENT[2], ["target.block_12=[0,2000]", "steps=2"],
                                         ["target=block_12", "steps=2", "seed=5"]])
    dream_together(jobs, exact=False)  # in shared passes
    status = [json.loads((job.run_dir / "result.json").read_text()) for job in jobs]
    assert [s["status"] for s in status] == ["completed", "failed", "failed", "completed"]
    assert "NaN" in status[1]["error"] and "channel 2000 is out of range" in status[2]["error"]
    assert (jobs[1].run_dir / "last_good.png").is_file()


def test_an_interrupt_stops_every_job_with_its_last_image(compose_cfg, tmp_path, monkeypatch):
    batch = batching.Rendezvous._batch
    served = []

    def interrupted_after_two_rounds(self, size, members, asked):
        served.extend(members)
        if len(served) > 6:  # each job has had two steps: Ctrl-C, to the main thread, which serves them
            signal.raise_signal(signal.SIGINT)
        return batch(self, size, members, asked)

    monkeypatch.setattr(batching.Rendezvous, "_batch", interrupted_after_two_rounds)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        jobs = _jobs(compose_cfg, tmp_path, [["target=block_12", "steps=50", f"seed={s}"] for s in range(3)])
        with pytest.raises(KeyboardInterrupt):
            dream_together(jobs)
    finally:
        signal.signal(signal.SIGINT, previous)
    for job in jobs:
        record = json.loads((job.run_dir / "result.json").read_text())
        assert (record["status"], record["error"]) == ("interrupted", "Ctrl-C")
        assert (job.run_dir / "interrupted.png").is_file() and not (job.run_dir / "dream.png").exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("dreamrun-job")]  # every job thread ended


def test_the_batched_launcher_leaves_every_run_dir_and_summary_as_basic_does(tmp_path):
    sweep = ["-m", *BASE, "steps=2", "target=block_8,block_12", "jitter.max_shift=0,16"]
    basic = run_cli(*sweep, f"hydra.sweep.dir={tmp_path / 'basic'}")
    batched = run_cli(*sweep, "hydra/launcher=batched", f"hydra.sweep.dir={tmp_path / 'batched'}")
    assert basic.returncode == batched.returncode == 0, batched.stderr
    assert batched.stdout.splitlines() == [str(tmp_path / "batched" / "summary.png")]
    assert "dreaming 4 jobs: 4 together" in batched.stderr
    jobs = sorted(p.name for p in (tmp_path / "basic").iterdir() if p.is_dir())
    assert jobs == sorted(p.name for p in (tmp_path / "batched").iterdir() if p.is_dir()) and len(jobs) == 4
    for name in jobs:
        mine, theirs = tmp_path / "batched" / name, tmp_path / "basic" / name
        assert sorted(p.name for p in mine.rglob("*") if "events" not in p.name) == \
            sorted(p.name for p in theirs.rglob("*") if "events" not in p.name)
        assert np.abs(_pixels(mine / "dream.png") - _pixels(theirs / "dream.png")).max() <= 1
        assert "gain" in (mine / "dreamrun.log").read_text()  # its own log lines, in its own log
        assert (mine / "dreamrun.log").read_text().count("gain") == 1
        # the jobs end together, their lines mixed on the terminal: each says whose it is
        assert len([line for line in batched.stderr.splitlines() if f"{name}: gain " in line]) == 1
        for record in ("config.yaml", "overrides.yaml"):  # each job's config as basic composes it
            assert (mine / ".hydra" / record).read_text() == (theirs / ".hydra" / record).read_text()
    for name in ("summary.png", "summary.csv", "summary.md"):
        assert (tmp_path / "batched" / name).is_file()


def test_sigterm_stops_a_batched_sweep_with_every_job_recorded(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = start_cli("-m", "hydra/launcher=batched", *BASE, "steps=100000", "log.image_every=1",
                     "log.image_max_side=16", "target=block_8,block_12", "seed=0,1", f"hydra.sweep.dir={sweep_dir}",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not all(logged_progress_images(job) >= 2 for job in sweep_dir.glob("*_*")) or \
            len(list(sweep_dir.glob("*_*"))) < 4:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    jobs = sorted(path for path in sweep_dir.iterdir() if path.is_dir() and (path / ".hydra").is_dir())
    assert len(jobs) == 4
    for job in jobs:
        record = json.loads((job / "result.json").read_text())
        assert (record["status"], record["error"]) == ("interrupted", "SIGTERM")
        assert (job / "interrupted.png").is_file()
    assert (sweep_dir / "summary.md").read_text().count("| interrupted |") == 4
    assert out.splitlines() == [str(sweep_dir / "summary.png")]


def test_a_group_is_split_into_passes_that_fit_the_free_memory(compose_cfg, tmp_path, passes, monkeypatch):
    """As tile.size=auto reasons for one image: MEMORY_SHARE of the free memory over what autograd keeps
    per image. Free memory for two images and a half: passes of two."""
    from dreamrun.core.tiles import MEMORY_SHARE

    per_pixel = 1000.0
    monkeypatch.setattr(batching, "bytes_per_pixel", lambda objective, device: per_pixel)
    monkeypatch.setattr(batching, "free_memory", lambda device: int(2.5 * per_pixel * 64 * 96 / MEMORY_SHARE))
    builds = []
    build = batching.build_model
    monkeypatch.setattr(batching, "build_model", lambda *args: builds.append(1) or build(*args))
    jobs = _jobs(compose_cfg, tmp_path, [[f"seed={seed}", "steps=2"] for seed in range(5)])
    dream_together(jobs, exact=False)
    assert max(passes) == 2 and all(json.loads((j.run_dir / "result.json").read_text())["status"] == "completed"
                                    for j in jobs)
    assert builds == [1]  # one network for the five jobs


def test_the_groups_of_one_model_build_it_once_and_dream_as_alone(compose_cfg, tmp_path, monkeypatch):
    """A sweep over input sizes and memory formats is a group each, one model for all: it is built once,
    and every job still dreams as its solo run does."""
    builds = []
    build = batching.build_model
    monkeypatch.setattr(batching, "build_model", lambda *args: builds.append(1) or build(*args))
    base = [o for o in BASE if not o.startswith("input.size=")]
    settings = [("input.size=128", "channels_last=true"), ("input.size=96", "channels_last=false"),
                ("input.size=96", "channels_last=true")]
    groups = [[Job(compose_cfg(*base, *setting, *o), tmp_path / f"{g}_{i}") for i, o in enumerate(DIFFERENT[:2])]
              for g, setting in enumerate(settings)]
    models = Models(groups)
    for group in groups:
        dream_together(group, models=models)
    assert builds == [1]
    for job in [job for group in groups for job in group]:
        solo = tmp_path / "solo" / job.run_dir.name
        run_job(DreamJob(job.cfg, solo, progress=False))
        assert np.abs(_pixels(job.run_dir / "dream.png") - _pixels(solo / "dream.png")).max() <= 1


def test_a_groups_set_up_does_not_reach_the_next_groups_network(compose_cfg, tmp_path):
    """A network shares with its model the layers no rewrite replaces (VGG's convolutions: no BatchNorm to
    fold). channels_last for one group lays those out anew; the next group of the model (channels_last=
    false) must still get the network its solo run builds: the same weights, laid out the same way."""
    from dreamrun.jobs.dreamer import configure_network, setup_device
    from dreamrun.nets.build import build_model
    from dreamrun.nets.feature_net import feature_net

    vgg = ["model=vgg16", "model.weights=null", "device=cpu", "precision=fp32"]
    first, second = compose_cfg(*vgg, "channels_last=true"), compose_cfg(*vgg, "channels_last=false")
    models = Models([[Job(first, tmp_path / "0")], [Job(second, tmp_path / "1")]])
    layers = ["conv1_2", "conv2_2"]
    configure_network(models.network(first, layers, setup_device(first)), first, torch.device("cpu"))
    net = configure_network(models.network(second, layers, setup_device(second)), second, torch.device("cpu"))
    setup_device(second)  # seeds the random weights, as a solo run does before building
    solo = configure_network(feature_net(build_model(second.model), second.model, layers, owns_model=True),
                             second, torch.device("cpu"))
    assert list(net.state_dict()) == list(solo.state_dict())
    for ours, reference in zip(net.state_dict().values(), solo.state_dict().values()):
        assert torch.equal(ours, reference) and ours.is_contiguous() == reference.is_contiguous()


def test_jobs_that_cannot_share_run_as_with_basic(tmp_path):
    zoom = ["zoom.frames=2", "zoom.steps_per_frame=1", "zoom.octaves=1"]
    proc = run_cli("-m", "hydra/launcher=batched", *BASE, "steps=1", *zoom, "mode=dream,zoom", "seed=0,1",
                   f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert "dreaming 4 jobs: 2 together, 2 alone" in proc.stderr
    records = [json.loads(path.read_text()) for path in tmp_path.glob("*/result.json")]
    assert [r["status"] for r in records] == ["completed"] * 4
    assert len(list(tmp_path.glob("*mode=zoom*/zoom.gif"))) == 2


def test_the_batched_launchers_settings_are_typed(tmp_path):
    proc = run_cli("-m", "hydra/launcher=batched", "hydra.launcher.exact=maybe", *BASE, "seed=0,1",
                   f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert proc.returncode == 2 and not (tmp_path / "sweep").exists()
    assert proc.stderr.splitlines() == ["dreamrun: error: hydra.launcher.exact=maybe: Value 'maybe' is not a valid "
                                        "bool (type str)"]
