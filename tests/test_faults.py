"""Numerical faults and running out of memory: a clear message, and the last good image kept."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, run_cli
from dreamrun.core import engine
from dreamrun.core.engine import Ascent
from dreamrun.errors import DreamError
from dreamrun.jobs.dream import DreamJob
from dreamrun.jobs.skeleton import run_job


def _dream(objective, steps: int) -> torch.Tensor:
    return engine.dream(torch.full((1, 3, 32, 32), 0.5), objective, Ascent(octaves=1, steps=steps, max_shift=0),
                        generator=torch.Generator().manual_seed(0))


def test_a_nan_step_is_not_taken_and_stops_the_dream_at_the_octave_end():
    calls = {"n": 0}

    def objective(image):
        calls["n"] += 1
        loss = image.pow(2).mean() * torch.linspace(0, 1, 3).view(1, 3, 1, 1).mean()
        return loss * float("nan") if calls["n"] > 3 else loss

    with pytest.raises(engine.NonFiniteError) as error:
        _dream(objective, steps=6)
    assert error.value.global_step == 3 and error.value.octave == 0
    calls["n"] = 0
    assert torch.equal(error.value.image, _dream(objective, steps=3))  # the image after the 3 good steps


def test_a_nan_objective_stops_the_job_with_a_message_and_keeps_the_last_good_image(tmp_path):
    # a network whose activations are NaN (NaN weights files are refused when they are read)
    run_dir = tmp_path / "run"
    proc = run_cli(*[o for o in TINY if not o.startswith("model=")], "octaves=1", "model=custom",
                   "model._target_=tiny_net.build_nan", "+model.layers={features: '4'}", "+target.features=all",
                   "model.weights=null", f"hydra.run.dir={run_dir}", env={"PYTHONPATH": str(Path(__file__).parent)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "the objective became NaN or infinite at step 0" in proc.stderr and "last_good.png" in proc.stderr
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "failed" and result["paths"]["last_good"] == "last_good.png"
    with Image.open(run_dir / "last_good.png") as good, Image.open(run_dir / "input.png") as source:
        assert np.array_equal(np.asarray(good), np.asarray(source))  # no step was good: the input
    assert not (run_dir / "dream.png").exists()


def test_out_of_memory_names_the_size_that_fit_and_what_to_change(compose_cfg, tmp_path, monkeypatch):
    step = engine.ascent_step

    def ascent_step_with_little_memory(image, *args, **kwargs):
        if image.shape[-1] > 80:  # octave 0 (69 px wide) fits, octave 1 (96 px) does not
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return step(image, *args, **kwargs)

    monkeypatch.setattr(engine, "ascent_step", ascent_step_with_little_memory)
    with pytest.raises(DreamError) as error:
        run_job(DreamJob(compose_cfg(*TINY), tmp_path, progress=False))
    message = str(error.value)
    assert message.startswith("out of memory dreaming a 96x64 px image on cpu "
                              "(the largest size that fit was 69x46 px): use a smaller input.size")
    assert "fewer octaves" in message and "tile.size" in message
