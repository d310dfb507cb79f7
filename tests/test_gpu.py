"""What a GPU user meets, on the card (issue #32): `pytest -m gpu`, skipped without CUDA so CI stays green.

DREAMRUN_GPU_STAND_IN=1 runs them on the CPU at the same sizes (the card's own checks, out of memory and CPU
against CUDA, skip there): it checks the tests themselves before the card's minutes are spent on them.
DREAMRUN_REQUIRE_GPU=1 (benchmarks/device/gpu.sh on the card) makes a missing CUDA a failure, not a skip.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

import dreamrun
from conftest import REPO, logged_progress_images, run_cli, start_cli
from dreamrun.core import engine

STAND_IN = os.environ.get("DREAMRUN_GPU_STAND_IN") == "1"
DEVICE = "cpu" if STAND_IN else "cuda"
REQUIRED = os.environ.get("DREAMRUN_REQUIRE_GPU") == "1"
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not STAND_IN and not REQUIRED and not torch.cuda.is_available(),
                                                  reason="needs a CUDA GPU (DREAMRUN_GPU_STAND_IN=1: on the CPU)")]
card_only = pytest.mark.skipif(STAND_IN, reason="the card's own behaviour")
INCEPTION = ["model.weights=null", "input.size=256", "octaves=2", "steps=3", f"device={DEVICE}", "log=none"]
LITE0 = ["model=efficientnet_lite0", "input.size=256", "octaves=2", "steps=4", f"device={DEVICE}", "log=none"]


def pixels(path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB")).astype(int)


def dream_cli(run_dir, *overrides):
    proc = run_cli(*overrides, f"hydra.run.dir={run_dir}", timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.parametrize("preset", [INCEPTION, LITE0], ids=["inception_v3 random", "lite0 pretrained"])
def test_the_cli_dreams_on_the_card(tmp_path, preset):
    metrics = dream_cli(tmp_path, *preset)
    assert metrics["device"].startswith(DEVICE)
    assert (tmp_path / "dream.png").is_file()
    if "model=efficientnet_lite0" in preset:
        assert metrics["gain"] > 1.0


def test_the_python_api_dreams_on_the_card():
    photo = Image.fromarray((np.random.default_rng(0).random((128, 160, 3)) * 255).astype(np.uint8))
    dreamed = dreamrun.dream(photo, model="efficientnet_lite0", octaves=2, steps=3, device=DEVICE, progress=False)
    assert dreamed.size == (160, 128) and dreamed.info["dreamrun"]["device"].startswith(DEVICE)


def test_a_stopped_zoom_resumes_to_the_frames_of_one_that_never_stopped(tmp_path):
    zoom = ["mode=zoom", "model=efficientnet_lite0", "input=noise", "input.size=128", "zoom.steps_per_frame=3",
            f"device={DEVICE}", "log=none"]
    dream_cli(tmp_path / "whole", *zoom, "zoom.frames=4")
    dream_cli(tmp_path / "resumed", *zoom, "zoom.frames=2")
    dream_cli(tmp_path / "resumed", *zoom, "zoom.frames=4", "resume=true")
    for k in range(4):
        name = f"frames/{k:06d}.png"
        np.testing.assert_array_equal(pixels(tmp_path / "resumed" / name), pixels(tmp_path / "whole" / name))


def test_a_short_video_is_dreamed_on_the_card(tmp_path):
    pytest.importorskip("av")
    from helpers.clips import dream_frames, panning_clip

    clip = tmp_path / "clip.mp4"
    panning_clip(clip, frames=4, width=128, height=96)
    dream_cli(tmp_path / "run", "mode=video", "input=video", f"input.path={clip}", "model=efficientnet_lite0",
              "input.size=null", f"device={DEVICE}", "log=none")
    assert len(dream_frames(tmp_path / "run")) == 4


def test_a_batched_sweep_gives_each_job_its_solo_pixels(tmp_path):
    """Bit for bit on the CPU. On CUDA the batched launcher (exact=true) picks cuDNN's deterministic algorithms and
    a solo run its fastest, which sum in other orders: one octave of three 0.01 steps keeps that within a
    fifth of a level of 255 on average (a wrong gradient moves pixels by levels)."""
    sweep = ["-m", "model=efficientnet_lite0", "input.size=128", "octaves=1", "steps=3", f"device={DEVICE}",
             "log=none", "target=block_6,block_10", "seed=0,1"]
    for launcher in ("batched", "basic"):
        proc = run_cli(*sweep, f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path / launcher}", timeout=600)
        assert proc.returncode == 0, proc.stderr
    dreams = sorted(p.relative_to(tmp_path / "basic") for p in (tmp_path / "basic").glob("*/dream.png"))
    assert len(dreams) == 4
    for dream in dreams:
        batched, basic = pixels(tmp_path / "batched" / dream), pixels(tmp_path / "basic" / dream)
        if STAND_IN:
            np.testing.assert_array_equal(batched, basic)
        else:
            assert np.abs(batched - basic).mean() <= 0.2, dream


def test_a_big_dream_is_tiled_by_auto(tmp_path):
    side = 2048 if STAND_IN else 8192
    metrics = dream_cli(tmp_path, "model=efficientnet_lite0", "input=noise", f"input.size={side}", "octaves=1",
                        "steps=1", "tile.size=auto", f"device={DEVICE}", "log=none")
    assert metrics["tile_size"] is not None and metrics["tile_size"] < side
    assert Image.open(tmp_path / "dream.png").size == (side, side)


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_midway_stops_the_dream_with_its_last_image(tmp_path, sig, status):
    run_dir = tmp_path / "run"
    proc = start_cli("model=efficientnet_lite0", "input.size=128", "octaves=1", "steps=100000", f"device={DEVICE}",
                     "log.image_every=1", "log.image_max_side=16", f"hydra.run.dir={run_dir}",
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 300
    while logged_progress_images(run_dir) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == status and "Traceback" not in err, err
    assert json.loads((run_dir / "result.json").read_text())["status"] == "interrupted"
    assert (run_dir / "interrupted.png").is_file()


@card_only
def test_a_real_out_of_memory_is_one_line(tmp_path):
    """Another process holds all but 4 GiB of the card (room for the job's CUDA context, weights and cuDNN/cuBLAS
    set-up); a 4096 px untiled dream then runs out."""
    holder = subprocess.Popen([sys.executable, "-c",
                               "import torch, time, sys\n"
                               "free = torch.cuda.mem_get_info()[0]\n"
                               "block = torch.empty(free - 4 * 2**30, dtype=torch.uint8, device='cuda')\n"
                               "print('holding', flush=True); time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        proc = run_cli("model.weights=null", "input=noise", "input.size=4096", "octaves=1", "steps=1",
                       "tile.size=null", "device=cuda", "log=none", f"hydra.run.dir={tmp_path}", timeout=600)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "out of memory" in lines[-1] and "Traceback" not in proc.stderr


def test_a_nan_objective_on_the_card_stops_with_the_last_good_image():
    image = torch.full((1, 3, 64, 64), 0.5, device=DEVICE)
    climb = engine.Ascent(octaves=1, steps=3, max_shift=0)
    with pytest.raises(engine.NonFiniteError) as stopped:
        engine.dream(image, lambda x: x.mean() * float("nan"), climb, generator=torch.Generator())
    assert stopped.value.global_step == 0 and torch.equal(stopped.value.image, image)


def test_bf16_dreams_as_well_as_fp32_over_seeds(tmp_path):
    gains = {}
    for precision in ("fp32", "bf16"):
        gains[precision] = [dream_cli(tmp_path / f"{precision}{seed}", *LITE0, f"precision={precision}",
                                      f"seed={seed}")["gain"] for seed in range(3)]
    assert abs(np.mean(gains["bf16"]) / np.mean(gains["fp32"]) - 1) <= 0.05, gains


@card_only
def test_cpu_and_cuda_dream_the_same_picture(tmp_path):
    """fp32, one octave of one step: the sums of the two devices differ in their last bits, and one step moves a
    pixel by step_size (0.01, 2.5 levels of 255) on average: the pictures agree to a fifth of a level on average,
    which a gradient wrong by a tenth would exceed."""
    one_step = ["model=efficientnet_lite0", "input.size=128", "octaves=1", "steps=1", "precision=fp32", "log=none"]
    for device in ("cpu", "cuda"):
        dream_cli(tmp_path / device, *one_step, f"device={device}")
    assert np.abs(pixels(tmp_path / "cpu" / "dream.png") - pixels(tmp_path / "cuda" / "dream.png")).mean() <= 0.2


def test_the_same_seed_dreams_the_same_pixels(tmp_path):
    for run in ("a", "b"):
        dream_cli(tmp_path / run, *LITE0, "seed=3")
    np.testing.assert_array_equal(pixels(tmp_path / "a" / "dream.png"), pixels(tmp_path / "b" / "dream.png"))
