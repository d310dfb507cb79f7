"""Whole dreams through dreamrun.jobs.dream and the Python API, on tiny images."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import dreamrun
from dreamrun.core.octaves import resize
from dreamrun.errors import DreamError
from dreamrun.inputs.images import resize_long_side, to_tensor
from dreamrun.jobs.dream import DreamJob, at_full_size, objective_gain
from dreamrun.jobs.skeleton import load_input, run_job
from dreamrun.outputs.images import to_pil
from helpers.dreams import solo_dream
from conftest import TINY

# measured with Lite0's real ReLU6 network: 1.62x on the 128 px sample photo (2 octaves x 10 steps,
# block_12, fp32; seeds 0-3: 1.62, 1.80, 1.56, 1.60); random weights give 1.34x. (The 2.30x measured
# before came from the network with Swish in place of ReLU6.)
PRETRAINED_GAIN_THRESHOLD = 1.45


def test_pretrained_network_activation_rises_substantially(compose_cfg):
    cfg = compose_cfg("model=efficientnet_lite0", "target=block_12", "input.size=128", "octaves=2",
                      "steps=10", "device=cpu", "precision=fp32")
    result = solo_dream(cfg, load_input(cfg, torch.Generator().manual_seed(0)))
    assert result.metrics["gain"] > PRETRAINED_GAIN_THRESHOLD
    term = result.metrics["targets"]["block_12"]
    assert term["after"] > PRETRAINED_GAIN_THRESHOLD * term["before"]


@pytest.mark.parametrize("block", ["block_12", "block_8"])
def test_a_dream_raises_its_block_as_much_as_the_classic_algorithm(compose_cfg, block):
    """The reference: DeepDream's classic loop written plainly on the package's own unmodified network
    (benchmarks/classic_comparison.py), at the same octaves x steps, scored by that network.
    One dream's gain moves by ~10% with its jitter shifts, so both sides are averaged over 4 seeds."""
    from helpers.classic import BlockActivation, classic_dream, packaged_lite0

    cfg = compose_cfg("model=efficientnet_lite0", f"target={block}", "input.size=128", "octaves=3", "device=cpu")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    reference = BlockActivation(packaged_lite0(), int(block.removeprefix("block_")))
    before = reference.score(image)
    ours, classic = [], []
    for seed in range(4):
        cfg.seed = seed
        ours.append(reference.score(solo_dream(cfg, image).image) / before)
        classic.append(reference.score(classic_dream(reference, image, octaves=3, steps=10, step_size=0.01,
                                                     octave_scale=1.4, max_shift=32, seed=seed)) / before)
    # measured here: dreamrun/classic 1.01 (block_12) and 1.02 (block_8); mean gains 1.4-1.7x
    assert min(classic) > 1.2  # the reference itself dreams
    assert np.mean(ours) >= 0.9 * np.mean(classic)


def strict_json(path):
    """Parse JSON as strict readers do: NaN and Infinity are not JSON."""
    def refuse(constant):
        raise ValueError(f"{constant} in {path}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_gain_is_null_where_the_objective_does_not_start_above_zero(compose_cfg, tmp_path):
    # a negative weight dreams the layer away: the objective starts below zero
    cfg = compose_cfg(*TINY, "~target.block_12", "+target.block_12={weight: -1}", "precision=fp32")
    result = run_job(DreamJob(cfg, tmp_path, progress=False))
    metrics = strict_json(tmp_path / "metrics.json")
    assert metrics["objective_before"] < 0 and metrics["gain"] is None and result.metrics["gain"] is None
    assert metrics["objective_after"] > metrics["objective_before"]  # the ascent still raised it


def test_gain_is_after_over_before_only_from_a_positive_start():
    assert objective_gain(2.0, 3.0) == 1.5
    assert objective_gain(0.0, 1.0) is None and objective_gain(-2.0, -1.0) is None


def test_metrics_never_hold_nan_or_infinity(tmp_path):
    from dreamrun.outputs.files import save_json
    save_json({"gain": float("nan"), "targets": {"a": {"after": float("inf"), "before": 1.5}}}, tmp_path / "m.json")
    assert strict_json(tmp_path / "m.json") == {"gain": None, "targets": {"a": {"after": None, "before": 1.5}}}


def test_chosen_channels_rise(compose_cfg):
    cfg = compose_cfg(*TINY, "target=block_12", "target.block_12=[5,17]", "steps=5")
    result = solo_dream(cfg, load_input(cfg, torch.Generator().manual_seed(0)))
    assert result.metrics["targets"]["block_12[5,17]"]["after"] > 1.5 * result.metrics["targets"]["block_12[5,17]"]["before"]


def test_same_config_and_seed_give_identical_pixels(compose_cfg):
    cfg = compose_cfg(*TINY, "model.weights=null", "seed=3")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    a = solo_dream(cfg, image).image
    b = solo_dream(cfg, image).image
    cfg.seed = 4
    c = solo_dream(cfg, image).image
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_noise_input_is_seeded(compose_cfg):
    cfg = compose_cfg(*TINY, "input=noise", "input.size=64")
    a = load_input(cfg, torch.Generator().manual_seed(0))
    assert a.shape == (1, 3, 64, 64)
    assert torch.equal(a, load_input(cfg, torch.Generator().manual_seed(0)))


def test_run_job_writes_the_run_dir(compose_cfg, tmp_path):
    cfg = compose_cfg(*TINY, "octaves=3", "input.size=120")
    result = run_job(DreamJob(cfg, tmp_path, progress=False))
    with Image.open(tmp_path / "dream.png") as dream, Image.open(tmp_path / "input.png") as source:
        assert dream.size == source.size == (120, 80)
    assert sorted(p.name for p in tmp_path.glob("octave_*.png")) == ["octave_0.png", "octave_1.png", "octave_2.png"]
    with Image.open(tmp_path / "octave_0.png") as first:
        assert first.size == (round(120 / 1.4**2), round(80 / 1.4**2))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["device"] == "cpu"
    assert metrics["model"] == "efficientnet_lite0" and metrics["weights"] == "IMAGENET1K_V1"
    # 2 steps an octave are too few to raise the objective reliably; that it rises is tested above
    assert metrics["gain"] == pytest.approx(metrics["objective_after"] / metrics["objective_before"])
    assert metrics["gain"] == pytest.approx(result.metrics["gain"]) and metrics["seconds"] > 0
    assert set(metrics["targets"]["block_12"]) >= {"before", "after"}
    assert not list(tmp_path.glob("*.tmp"))


def test_python_api_returns_a_dream_of_the_same_size():
    source = Image.new("RGB", (90, 60), (120, 80, 60))
    dreamed = dreamrun.dream(source, model="efficientnet_lite0", target={"block_6": "all"},
                             octaves=1, steps=3, device="cpu", size=None)
    assert isinstance(dreamed, Image.Image) and dreamed.size == (90, 60)
    assert dreamed.tobytes() != source.tobytes()


def test_python_api_takes_the_gradient_options_and_a_guide(tmp_path):
    source = to_pil(torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0)))
    common = {"model": "efficientnet_lite0", "octaves": 1, "steps": 4, "step_size": 0.03, "device": "cpu",
              "size": None}
    plain = dreamrun.dream(source, **common)
    luminance = dreamrun.dream(source, luminance_only=True, **common)
    assert luminance.tobytes() != plain.tobytes()
    moved = np.asarray(luminance, dtype=float) - np.asarray(source, dtype=float)  # (H, W, 3)
    # luminance only: each pixel's channels move together (clipping at 0 and 255 aside)
    assert np.median(moved.max(axis=2) - moved.min(axis=2)) <= 1
    source.save(tmp_path / "guide.png")
    guided = dreamrun.dream(source, guide=tmp_path / "guide.png", **common)
    assert guided.tobytes() != plain.tobytes()


def test_python_api_reports_bad_input_as_dream_error():
    with pytest.raises(DreamError, match="unknown layer"):
        dreamrun.dream(Image.new("RGB", (90, 60)), model="efficientnet_lite0", target={"Mixed_99": "all"})


def test_asking_for_cuda_without_it_is_a_clear_error(compose_cfg):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = compose_cfg(*TINY, "device=cuda")
    with pytest.raises(DreamError, match="CUDA is not available"):
        solo_dream(cfg, load_input(cfg, torch.Generator()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_dream_matches_the_cpu_dream(compose_cfg):
    cfg = compose_cfg(*TINY, "steps=3")
    image = load_input(cfg, torch.Generator().manual_seed(0))
    on_cpu = solo_dream(cfg, image)
    cfg.device = "cuda"
    on_gpu = solo_dream(cfg, image)
    assert on_gpu.metrics["device"].startswith("cuda")
    assert on_gpu.image.device.type == "cpu"  # results come back for PIL/NumPy
    assert (on_gpu.image - on_cpu.image).abs().mean() < 0.01
    assert on_gpu.metrics["gain"] == pytest.approx(on_cpu.metrics["gain"], rel=0.05)


def test_activations_follow_the_image_even_when_it_changes_in_place(compose_cfg):
    from dreamrun.jobs.dream import prepare
    cfg = compose_cfg(*TINY)
    image = load_input(cfg, torch.Generator().manual_seed(0))
    dreamer = prepare(cfg, *image.shape[-2:])
    first = dreamer.activations(image)
    assert dreamer.activations(image.detach()) == first  # same pixels: the kept result
    image.mul_(0.5)
    assert dreamer.activations(image) != first


def lite0_dream(compose_cfg, *overrides: str) -> dict:
    cfg = compose_cfg(*TINY, "precision=fp32", "jitter=none", *overrides)
    return solo_dream(cfg, load_input(cfg, torch.Generator().manual_seed(0))).metrics


def test_a_negative_weight_lowers_the_activation_it_targets(compose_cfg):
    metrics = lite0_dream(compose_cfg, "target.block_12={weight: -1}", "steps=5")
    term = metrics["targets"]["block_12"]
    # measured: 0.81x (fp32, 96 px, 2 octaves x 5 steps)
    assert term["after"] < 0.9 * term["before"]


def test_a_class_target_raises_that_logit(compose_cfg):
    metrics = lite0_dream(compose_cfg, "~target.block_12", "+target.logits={classes: [goldfish]}", "steps=5")
    term = metrics["targets"]["logits[1]"]
    # measured: the goldfish logit rises by 4.3 (fp32, 96 px, 2 octaves x 5 steps)
    assert term["after"] > term["before"] + 2.0


def test_a_guided_dream_raises_the_match_with_the_guide(compose_cfg, tmp_path):
    stripes = torch.zeros(1, 3, 96, 96)
    stripes[:, 0, :, ::8] = stripes[:, 2, ::8] = 1.0  # red columns, blue rows: nothing like the photo
    guide_path = tmp_path / "guide.png"
    to_pil(stripes).save(guide_path)
    metrics = lite0_dream(compose_cfg, f"guide.path={guide_path}", "guide.size=96", "steps=5")
    assert metrics["guide"] == str(guide_path)
    term = metrics["targets"]["block_12~guide"]
    # measured: 1.45x (fp32, 96 px, 2 octaves x 5 steps)
    assert term["after"] > 1.2 * term["before"]


def test_a_guide_smaller_than_the_network_accepts_is_refused(compose_cfg, tmp_path):
    to_pil(torch.rand(1, 3, 20, 20)).save(tmp_path / "tiny.png")
    cfg = compose_cfg(*TINY, f"guide.path={tmp_path / 'tiny.png'}", "guide.size=20")
    with pytest.raises(DreamError, match="raise guide.size"):
        solo_dream(cfg, load_input(cfg, torch.Generator().manual_seed(0)))


def test_a_missing_guide_is_refused_before_the_network_is_built(compose_cfg, tmp_path, monkeypatch):
    """A typo in guide.path must not cost the download and build of a network first."""
    import dreamrun.jobs.dreamer
    from dreamrun.jobs.dream import prepare

    built = []
    monkeypatch.setattr(dreamrun.jobs.dreamer, "build_model", lambda model: built.append(model))
    cfg = compose_cfg(*TINY, f"guide.path={tmp_path / 'no such guide.png'}")
    with pytest.raises(DreamError, match="not found"):
        prepare(cfg, 64, 64)
    assert built == []


def test_an_octaves_dream_is_carried_to_full_size_with_its_detail():
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    small = resize(image, (46, 69))
    assert torch.allclose(at_full_size(small, image), image)  # nothing dreamed yet: the input
    brighter = at_full_size((small + 0.1).clamp(0, 1), image)
    assert brighter.shape == image.shape and 0.05 < (brighter - image).mean() < 0.1


def test_an_input_path_means_that_image_even_without_input_image(compose_cfg):
    photo = Path(__file__).parent / "photos" / "chelsea.jpg"
    given = load_input(compose_cfg(*TINY, f"input.path={photo}"), torch.Generator())
    with Image.open(photo) as source:  # the photo itself, resized: an independent decode
        expected = to_tensor(resize_long_side(source.convert("RGB"), 96))
    assert torch.equal(given, expected)
    assert not torch.equal(given, load_input(compose_cfg(*TINY), torch.Generator()))  # not the sample photo
    with pytest.raises(DreamError, match="input=noise makes its own image"):
        load_input(compose_cfg(*TINY, "input=noise", f"input.path={photo}"), torch.Generator())
