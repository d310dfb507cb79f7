"""A finished run read back the way TensorBoard reads it."""
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from dreamrun.core import engine
from dreamrun.core.engine import Ascent
from dreamrun.core.octaves import octave_sizes
from dreamrun.jobs.dream import DreamJob
from dreamrun.jobs.skeleton import run_job

from conftest import TINY, interrupt_at_step

STEPS, OCTAVES = 3, 2
RUN = [*TINY, f"octaves={OCTAVES}", f"steps={STEPS}", "input.size=120", "log.image_every=2",
       "target=block_12", "target.block_12=[1,2]", "+target.block_6=all"]
TERMS = ["block_12[1,2]", "block_6"]


def read_run(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"images": 0, "histograms": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    from dreamrun.config.compose import compose_config
    cfg = compose_config(*RUN)
    run_dir = tmp_path_factory.mktemp("run")
    run_job(DreamJob(cfg, run_dir, progress=False))
    return run_dir, read_run(run_dir)


def test_one_value_per_step_for_every_target_and_the_loss(finished_run):
    _, events = finished_run
    total = STEPS * OCTAVES
    for tag in [*(f"act/{t}" for t in TERMS), "dream/loss", "dream/grad_norm", "dream/step_seconds"]:
        assert [e.step for e in events.Scalars(tag)] == list(range(total)), tag
    assert all(e.value > 0 for e in events.Scalars("dream/step_seconds"))


def test_octave_and_image_size_are_scalars_per_step(finished_run):
    _, events = finished_run
    sizes = octave_sizes(80, 120, OCTAVES, 1.4)
    assert [e.value for e in events.Scalars("dream/octave")] == [o for o in range(OCTAVES) for _ in range(STEPS)]
    assert [e.value for e in events.Scalars("dream/height")] == [h for h, _ in sizes for _ in range(STEPS)]
    assert [e.value for e in events.Scalars("dream/width")] == [w for _, w in sizes for _ in range(STEPS)]


def test_images_at_octave_ends_every_n_steps_input_and_final(finished_run):
    _, events = finished_run
    sizes = octave_sizes(80, 120, OCTAVES, 1.4)
    octave_ends = events.Images("dream/octave_end")
    assert [e.step for e in octave_ends] == [STEPS - 1, 2 * STEPS - 1]
    assert [(e.height, e.width) for e in octave_ends] == sizes
    # every 2nd step, except where an octave ends (that one is dream/octave_end)
    assert [e.step for e in events.Images("dream/progress")] == [1, 3]
    assert [(e.height, e.width) for e in events.Images("dream/input")] == [(80, 120)]
    assert [(e.height, e.width) for e in events.Images("dream/final")] == [(80, 120)]


def test_heatmaps_and_histograms_per_target_at_each_octave_end(finished_run):
    _, events = finished_run
    sizes = octave_sizes(80, 120, OCTAVES, 1.4)
    for term in TERMS:
        heatmaps = events.Images(f"heatmap/{term}")
        assert [(e.height, e.width) for e in heatmaps] == sizes
        assert len(events.Histograms(f"hist/{term}")) == OCTAVES


def test_config_text_custom_layout_and_hparams_session(finished_run):
    run_dir, events = finished_run
    config = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "block_12" in config and "octaves: 2" in config
    assert "custom_scalars__config__" in events.Tags()["tensors"]
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["octaves"].number_value == OCTAVES
    assert hparams["model.name"].string_value == "efficientnet_lite0"
    assert json.loads(hparams["target"].string_value) == {"block_12": [1, 2], "block_6": "all"}
    gain = json.loads((run_dir / "metrics.json").read_text())["gain"]
    assert [e.value for e in events.Scalars("hparams/gain")] == [pytest.approx(gain)]


def test_one_run_per_job_without_sub_runs(finished_run):
    run_dir, _ = finished_run
    event_files = list(run_dir.rglob("events.out.tfevents.*"))
    assert [f.parent for f in event_files] == [run_dir]


def test_an_interrupted_run_keeps_what_it_logged(compose_cfg, tmp_path, monkeypatch):
    interrupt_at_step(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run_job(DreamJob(compose_cfg(*RUN), tmp_path, progress=False))
    events = read_run(tmp_path)
    assert [e.step for e in events.Scalars("dream/loss")] == [0, 1, 2, 3]
    assert "config/text_summary" in events.Tags()["tensors"]


def test_tensorboard_logging_can_be_turned_off(compose_cfg, tmp_path):
    run_job(DreamJob(compose_cfg(*TINY, "log=none"), tmp_path, progress=False))
    assert not list(tmp_path.glob("events.out.tfevents.*"))
    assert (tmp_path / "dream.png").is_file()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


@pytest.mark.slow
def test_a_real_tensorboard_serves_the_run(finished_run):
    run_dir, _ = finished_run
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(run_dir.parent), "--host", "127.0.0.1",
         "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        runs = []
        while run_dir.name not in runs and time.monotonic() < deadline:
            try:
                runs = get_json(f"{base}/data/runs")
            except OSError:
                time.sleep(0.5)
        assert run_dir.name in runs
        scalars = get_json(f"{base}/data/plugin/scalars/tags")[run_dir.name]
        assert {"dream/loss", "act/block_6", "act/block_12[1,2]"} <= set(scalars)
        images = get_json(f"{base}/data/plugin/images/tags")[run_dir.name]
        assert {"dream/octave_end", "heatmap/block_6"} <= set(images)
    finally:
        server.terminate()  # by its PID
        server.wait(timeout=30)


def test_logged_images_can_be_shrunk(compose_cfg, tmp_path):
    run_job(DreamJob(compose_cfg(*RUN, "log.image_max_side=40"), tmp_path, progress=False))
    events = read_run(tmp_path)
    for tag in ["dream/input", "dream/octave_end", "dream/progress", "dream/final", "heatmap/block_6"]:
        assert all(max(e.height, e.width) == 40 for e in events.Images(tag)), tag
    with Image.open(tmp_path / "dream.png") as dream:
        assert dream.size == (120, 80)  # the run dir keeps full size


class FakeCudaEvent:
    """A CUDA event on a GPU whose every step takes 0.25 s, however soon the host has queued it."""

    gpu_seconds = 0.0

    def __init__(self, enable_timing=False):
        assert enable_timing
        self.at = None

    def record(self, stream):
        assert stream == ("stream of", torch.device("cuda:1"))  # the job's card, not the current one
        FakeCudaEvent.gpu_seconds += 0.25
        self.at = FakeCudaEvent.gpu_seconds

    def synchronize(self):
        pass

    def elapsed_time(self, end):  # milliseconds, as torch.cuda.Event's
        return (end.at - self.at) * 1000


def test_step_seconds_on_cuda_are_the_gpus_time_not_the_hosts(tmp_path, monkeypatch):
    """On CUDA the host only queues a step and returns: its clock would time the queueing."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    from dreamrun.outputs.tensorboard import TensorBoardLogger

    monkeypatch.setattr(torch.cuda, "Event", FakeCudaEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device: ("stream of", device))
    writer = SummaryWriter(str(tmp_path))
    logger = TensorBoardLogger(writer, device=torch.device("cuda:1"))
    engine.dream(torch.full((1, 3, 32, 32), 0.5), lambda x: x.pow(2).mean(), Ascent(octaves=2, steps=3, max_shift=0),
                 generator=torch.Generator(), observers=[logger])
    logger.close()
    seconds = [e.value for e in read_run(tmp_path).Scalars("dream/step_seconds")]
    assert seconds == [pytest.approx(0.25)] * 6
