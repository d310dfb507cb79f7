"""The CUDA backend flags a job runs under (cuDNN autotuning, TF32, determinism): decided from the job,
set for its run only. The flags are plain switches, so their policy is tested here without a GPU."""
import pytest
import torch

from dreamrun.jobs.dreamer import backend_settings_for, steps_per_size
from dreamrun.nets.backends import AUTOTUNE_MIN_STEPS, BackendSettings, autotune, backend_settings

CUDA = torch.device("cuda:0")


def flags() -> tuple:
    return (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
            torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)


def test_a_default_dream_is_not_autotuned_on_cuda(compose_cfg):
    """Each octave size meets each convolution only `steps` times: timing every algorithm first costs more."""
    cfg = compose_cfg("model.weights=null")
    assert steps_per_size(cfg) == 10
    assert backend_settings_for(cfg, CUDA).autotune is False


def test_a_long_zoom_is_autotuned_on_cuda_only(compose_cfg):
    """A zoom dreams one size frame after frame: 60 frames x 5 steps reuse every set-up 300 times."""
    cfg = compose_cfg("model.weights=null", "mode=zoom", "zoom.frames=60", "zoom.steps_per_frame=5")
    assert steps_per_size(cfg) == 300 >= AUTOTUNE_MIN_STEPS
    assert backend_settings_for(cfg, CUDA).autotune is True
    assert backend_settings_for(cfg, torch.device("cpu")).autotune is False
    assert autotune(CUDA, AUTOTUNE_MIN_STEPS - 1) is False


@pytest.mark.parametrize("precision, tf32", [("fp32", False), ("auto", False), ("bf16", False), ("tf32", True)])
def test_fp32_is_fp32_on_cuda_unless_tf32_is_asked_for(compose_cfg, precision, tf32):
    assert backend_settings_for(compose_cfg(f"precision={precision}"), CUDA).tf32 is tf32


def test_a_jobs_settings_hold_while_it_runs_then_the_processes_own_come_back():
    """PyTorch's own default is TF32 convolutions; a notebook's other work keeps whatever it had."""
    before = flags()
    with backend_settings(BackendSettings(autotune=True, tf32=False)):
        assert flags()[0] is True and flags()[2:] == ("ieee", "ieee")
    assert flags() == before
    with backend_settings(BackendSettings(tf32=True, deterministic=True)):
        # deterministic algorithms are chosen the same way every time: no timing races
        assert flags() == (False, True, "tf32", "tf32")
    assert flags() == before


def test_settings_come_back_after_an_error():
    before = flags()
    with pytest.raises(RuntimeError):
        with backend_settings(BackendSettings(autotune=True, deterministic=True)):
            raise RuntimeError("out of memory")
    assert flags() == before


def test_no_settings_change_nothing():
    """Jobs dreaming together: their launcher sets the flags for the group."""
    before = flags()
    with backend_settings(None):
        assert flags() == before
