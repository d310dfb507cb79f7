import pytest
import torch

from dreamrun.jobs.dream import prepare, run_dream
from dreamrun.jobs.skeleton import load_input
from dreamrun.nets.precision import autocast_dtype, cpu_has_fast_bf16

from conftest import TINY


def test_precision_names_map_to_autocast_dtypes():
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    assert autocast_dtype("fp16", cpu) is torch.float16
    assert autocast_dtype("auto", cpu) is (torch.bfloat16 if cpu_has_fast_bf16() else None)


@pytest.mark.parametrize("precision, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_the_network_runs_in_the_chosen_precision_and_the_image_stays_fp32(compose_cfg, precision, dtype):
    cfg = compose_cfg(*TINY, f"precision={precision}")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    dreamer = prepare(cfg, *image.shape[-2:])
    assert dreamer.feature_maps(image)["block_12"].dtype == dtype
    result = run_dream(cfg, image, dreamer=dreamer)
    assert result.image.dtype == torch.float32
    assert result.metrics["precision"] == str(dtype).removeprefix("torch.")


def test_channels_last_changes_speed_not_results(compose_cfg):
    image = load_input(compose_cfg(*TINY), torch.Generator().manual_seed(0))
    acts = {}
    for flag in ("true", "false"):
        dreamer = prepare(compose_cfg(*TINY, "precision=fp32", f"channels_last={flag}"), *image.shape[-2:])
        acts[flag] = dreamer.feature_maps(image)["block_12"]
    assert torch.allclose(acts["true"], acts["false"], rtol=1e-4, atol=1e-4)


def mean_gain(compose_cfg, overrides, seeds=4):
    cfg = compose_cfg(*overrides)
    image = load_input(cfg, torch.Generator().manual_seed(0))
    dreamer = prepare(cfg, *image.shape[-2:])
    gains = []
    for seed in range(seeds):
        cfg.seed = seed
        gains.append(run_dream(cfg, image, dreamer=dreamer).metrics["gain"])
    return sum(gains) / len(gains)


@pytest.mark.parametrize("size", [256, pytest.param(512, marks=pytest.mark.slow)])
def test_bf16_dreams_as_well_as_fp32_on_the_pretrained_network(compose_cfg, size):
    """The quality check of benchmarks/bf16_quality.py: bf16's mean gain over 4 seeds >= 0.95x fp32's.

    One dream's gain is chaotic under any rounding change: fp32 in NCHW instead of NHWC alone moves
    it by up to 4% (so a single-dream 5% bound fails on some CPUs by chance), hence the mean over
    seeds. Measured on this project's CI CPU (AMD EPYC, AVX512-BF16): bf16/fp32 1.015 at 256 px,
    1.009 at 512 px (mean gains 2.25x and 3.34x in fp32).
    """
    base = ["model=efficientnet_lite0", "target=block_12", "octaves=3", "device=cpu", f"input.size={size}"]
    gain = {p: mean_gain(compose_cfg, [*base, f"precision={p}"]) for p in ("fp32", "bf16")}
    assert gain["bf16"] >= 0.95 * gain["fp32"]


@pytest.mark.slow
def test_compiled_network_dreams_the_same(compose_cfg):
    base = ["model=efficientnet_lite0", "target=block_1", "input.size=96", "octaves=2", "steps=2",
            "device=cpu", "precision=fp32"]
    image = load_input(compose_cfg(*base), torch.Generator().manual_seed(0))
    eager = run_dream(compose_cfg(*base), image).image
    compiled = run_dream(compose_cfg(*base, "compile=true"), image).image  # two octave sizes, one graph
    assert (compiled - eager).abs().max() < 1e-3
