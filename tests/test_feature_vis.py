"""Feature visualisation: param=fft (a decorrelated, 1/f-scaled spectrum), transforms (robustness), the atlas
preset; each checked against an independent reference where one exists (numpy's FFT, torch.rot90, the
packaged Lite0 itself)."""
import json
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import dreamrun
from conftest import REPO, TINY, fake_sweep_job, run_cli
from dreamrun.core import engine
from dreamrun.core.observers import Observer
from dreamrun.core.parameterisations import COLOURS, GAIN, FourierImage, fourier_noise
from dreamrun.core.tiles import GRADIENT
from dreamrun.core.transforms import Jitter, Pad, Rotate, Scale, _warp, parse_transforms, seen_through
from dreamrun.errors import DreamError
from dreamrun.outputs.contact_sheet import Layout
from dreamrun.sweeps.summary import sheet, summarize
from helpers.classic import BlockActivation, packaged_lite0

sys.path.insert(0, str(REPO))
from benchmarks.feature_vis import fine_grain  # noqa: E402  the benchmark's own measure

LITE0 = ["model=efficientnet_lite0", "device=cpu"]
FROM_NOISE = [*LITE0, "input=noise", "input.size=96", "octaves=1", "reduction=mean", "jitter.max_shift=0"]


def pixels(path) -> np.ndarray:
    return np.array(Image.open(path).convert("RGB"))


# ---- the parameterisation -------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width", [(64, 64), (63, 50), (32, 97)])
def test_the_fourier_image_is_numpys_inverse_fft_of_the_scaled_spectrum_decorrelated(height, width):
    """decode against the formula written with numpy: sigmoid(COLOURS @ (GAIN * irfft2(spectrum / f)))."""
    spectrum = torch.randn(1, 3, height, width // 2 + 1, 2, generator=torch.Generator().manual_seed(1))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    scale = 1 / np.maximum(np.sqrt(fx ** 2 + fy ** 2), 1 / max(height, width))
    complex_spectrum = spectrum[..., 0].double().numpy() + 1j * spectrum[..., 1].double().numpy()
    linear = GAIN * np.fft.irfft2(complex_spectrum * scale, s=(height, width), norm="ortho")[0]  # (3, H, W)
    expected = 1 / (1 + np.exp(-np.einsum("ij,jhw->ihw", COLOURS.double().numpy(), linear)))
    image = FourierImage(height, width).decode(spectrum)
    assert image.shape == (1, 3, height, width)
    np.testing.assert_allclose(image[0].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("height, width", [(64, 64), (63, 50)])
def test_a_photo_encodes_to_a_spectrum_that_decodes_back_to_it(height, width):
    photo = 0.05 + 0.9 * torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(2))
    fourier = FourierImage(height, width)
    torch.testing.assert_close(fourier.decode(fourier.encode(photo)), photo, atol=1e-5, rtol=0)


def test_a_random_spectrum_is_an_almost_grey_image_with_little_fine_grain():
    start = fourier_noise(128, torch.Generator().manual_seed(0))
    assert abs(start.mean().item() - 0.5) < 0.02 and start.std().item() < 0.05
    uniform = 0.5 + 0.2 * (torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)) - 0.5)
    fine = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean().item()  # noqa: E731
    assert fine(start) < 0.2 * fine(uniform)


def test_the_engine_climbs_the_spectrum_and_reports_every_step():
    """A toy objective with a known optimum (the red channel's mean): Adam in the spectrum raises it."""
    seen = []

    class Steps(Observer):
        def on_step(self, *, image, **kw):
            seen.append(image[:, 0].mean().item())

    start = fourier_noise(48, torch.Generator().manual_seed(0))
    climb = engine.Ascent(octaves=1, steps=20, step_size=0.05, max_shift=4, param="fft")
    dreamed = engine.dream(start, lambda image: image[:, 0].mean(), climb, generator=torch.Generator().manual_seed(0),
                           observers=[Steps()])
    assert len(seen) == 20 and seen[-1] == pytest.approx(dreamed[:, 0].mean().item())
    assert start[:, 0].mean() < seen[0] and all(later > earlier for earlier, later in zip(seen, seen[1:]))


def test_a_non_finite_step_in_the_spectrum_is_not_taken_and_is_reported():
    """Steps 2 and 3 are NaN: the image stays where step 1 left it (Adam's momentum moves nothing), the steps
    after go on from there, and the error names step 2 with the final image."""
    images, calls = [], []

    class Steps(Observer):
        def on_step(self, *, image, **kw):
            images.append(image.clone())

    def objective(image):
        calls.append(1)
        return image[:, 0].mean() * (float("nan") if len(calls) in (3, 4) else 1.0)

    start = fourier_noise(32, torch.Generator().manual_seed(0))
    climb = engine.Ascent(octaves=1, steps=6, step_size=0.05, max_shift=0, param="fft")
    with pytest.raises(engine.NonFiniteError) as stopped:
        engine.dream(start, objective, climb, generator=torch.Generator(), observers=[Steps()])
    assert stopped.value.global_step == 2
    assert torch.equal(images[2], images[1]) and torch.equal(images[3], images[1])
    assert images[4][:, 0].mean() > images[1][:, 0].mean() and torch.isfinite(images[5]).all()
    assert torch.equal(stopped.value.image, images[5])


# ---- the transforms ---------------------------------------------------------------------------------------

def test_the_lucid_set_pads_jitters_scales_rotates_and_jitters():
    steps = parse_transforms("lucid")
    assert steps == [Pad(12), Jitter(8), Scale(0.9, 1.1), Rotate(10.0), Jitter(4)]
    assert parse_transforms("none") == [] and parse_transforms(["pad", {"rotate": 5}]) == [Pad(12), Rotate(5.0)]


def test_each_transform_keeps_its_size_but_the_pad():
    image = torch.rand(2, 3, 40, 56)
    generator = torch.Generator().manual_seed(0)
    padded = Pad(5)(image, generator)
    assert padded.shape == (2, 3, 50, 66) and torch.equal(padded[..., 5:45, 5:61], image)
    assert (padded[..., :5, :] == 0.5).all() and (padded[..., :, -5:] == 0.5).all()
    for step in (Jitter(8), Scale(0.9, 1.1), Rotate(10)):
        assert step(image, generator).shape == image.shape


def test_a_zoom_by_two_is_the_centre_enlarged_by_bilinear_interpolation():
    """torch's own resize of the centre half as the reference: scaling about the centre samples the same points
    (the crop keeps a pixel of margin, which its edge-clamped interpolation needs at the border)."""
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    centre = image[..., 7:25, 7:25]
    expected = torch.nn.functional.interpolate(centre, scale_factor=2, mode="bilinear", align_corners=False)
    expected = expected[..., 2:34, 2:34]
    torch.testing.assert_close(Scale(2.0, 2.0)(image, torch.Generator()), expected, atol=1e-5, rtol=0)


def test_a_quarter_turn_is_rot90_and_no_warp_is_the_image():
    image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(_warp(image, 1.0, 0.0), image, atol=1e-6, rtol=0)
    torch.testing.assert_close(_warp(image, 1.0, 90.0), torch.rot90(image, 1, (-2, -1)), atol=1e-5, rtol=0)


def test_jitter_rolls_by_at_most_its_px_and_the_same_seed_moves_the_same():
    image = torch.zeros(1, 1, 40, 40)
    image[..., 20, 20] = 1
    moves = []
    for seed in (0, 0, *range(1, 20)):
        moved = Jitter(3)(image, torch.Generator().manual_seed(seed))
        y, x = divmod(int(moved.flatten().argmax()), 40)
        assert abs(y - 20) <= 3 and abs(x - 20) <= 3
        assert torch.equal(moved, torch.roll(image, (y - 20, x - 20), (-2, -1)))  # a roll, nothing else
        moves.append((y, x))
    assert moves[0] == moves[1] and len(set(moves)) > 5  # the same seed moves the same; others move elsewhere


def test_a_gradient_handed_back_at_what_the_network_saw_reaches_the_image_as_autograd_would():
    """A batched job's objective answers with the gradient at the moved image (GRADIENT); seen_through carries
    it back through the same moves, to what autograd gives through them."""
    lucid = parse_transforms("lucid")
    weights = torch.rand(1, 3, 56, 56, generator=torch.Generator().manual_seed(4))  # 32 px padded by 12

    def plain(seen):
        return (seen * weights).sum()

    def batched(seen):
        return {"loss": plain(seen.detach()), GRADIENT: weights.expand_as(seen)}

    image = torch.rand(1, 3, 32, 32).requires_grad_(True)
    (direct,) = torch.autograd.grad(seen_through(lucid, plain, torch.Generator().manual_seed(0))(image), image)
    carried = seen_through(lucid, batched, torch.Generator().manual_seed(0))(image)[GRADIENT]
    assert direct.abs().sum() > 0
    torch.testing.assert_close(carried, direct)


@pytest.mark.parametrize("spec, message", [
    ("wobble", "transforms=wobble: unknown"),
    (["pad", {"blur": 2}], "unknown transform 'blur'"),
    ([{"pad": -1}], "pad takes px"),
    ([{"scale": [1.2, 0.9]}], "scale takes [low, high]"),
    ([{"rotate": "lots"}], "rotate takes degrees"),
    ({"pad": 3}, "transforms must be none or lucid or a list"),
])
def test_a_wrong_transform_is_refused_in_one_line(spec, message):
    with pytest.raises(DreamError) as refused:
        parse_transforms(spec)
    assert message in str(refused.value) and "\n" not in str(refused.value)


# ---- from the command line and dream() ---------------------------------------------------------------------

def test_from_noise_the_spectrum_raises_the_channel_with_less_grain_than_pixels(tmp_path):
    """The same steps and transforms from noise; the channel's mean measured by the packaged Lite0 itself."""
    common = [*FROM_NOISE, "steps=40", "transforms=lucid", "target=block_5", "target.block_5=[7]"]
    runs = {}
    for param, step_size in (("fft", 0.05), ("pixel", 0.01)):
        proc = run_cli(*common, f"param={param}", f"step_size={step_size}", f"hydra.run.dir={tmp_path / param}")
        assert proc.returncode == 0, proc.stderr
        runs[param] = pixels(tmp_path / param / "dream.png")
    block = BlockActivation(packaged_lite0(), 5)
    score = {name: block(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)[:, 7].mean().item()
             for name, image in runs.items()}
    start = block(fourier_noise(96, torch.Generator().manual_seed(0)))[:, 7].mean().item()
    assert score["fft"] > start + 1.0
    grain = {name: fine_grain(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
             for name, image in runs.items()}
    assert grain["fft"] < grain["pixel"]


def test_a_photo_starts_the_spectrum_where_it_is(tmp_path):
    """One tiny step: the photo comes back (to a level, but where it was within EDGE of black or white)."""
    proc = run_cli(*TINY, "octaves=1", "steps=1", "step_size=1e-6", "param=fft", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    dream, start = pixels(tmp_path / "dream.png").astype(int), pixels(tmp_path / "input.png").astype(int)
    inside = (start > 3) & (start < 252)
    assert np.abs(dream - start)[inside].max() <= 1


@pytest.mark.parametrize("overrides, message", [
    (["param=fft", "octaves=2"], "param=fft climbs every scale of the image at once, in one octave: use octaves=1"),
    (["param=fft", "octaves=1", "mode=zoom", "input=noise", "input.size=64"], "use param=pixel"),
    (["param=fft", "octaves=1", "mask.path=mask.png"], "use param=pixel with mask.path"),
    (["seamless=true", "transforms=lucid"], "use transforms=none"),
    (["transforms=wobble"], "transforms=wobble: unknown"),
    (["'transforms=[{pad: -2}]'"], "pad takes px"),
    (["param=wavelet"], "param=wavelet: Invalid value 'wavelet', expected one of [pixel, fft]"),
    (["reduction=median"], "reduction=median: Invalid value 'median', expected one of [mean_square, l2, mean]"),
])
def test_what_feature_visualisation_cannot_serve_is_one_line(tmp_path, overrides, message):
    overrides = [o.strip("'") for o in overrides]
    proc = run_cli(*TINY, *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_dream_takes_param_transforms_and_reduction(tmp_path):
    photo = Image.fromarray((np.random.default_rng(0).random((80, 96, 3)) * 255).astype(np.uint8))
    dreamed = dreamrun.dream(photo, model="efficientnet_lite0", target={"block_5": [7]}, octaves=1, steps=10,
                             step_size=0.05, param="fft", transforms="lucid", reduction="mean", progress=False)
    metrics = dreamed.info["dreamrun"]
    assert dreamed.size == (96, 80)
    assert metrics["objective_after"] > metrics["objective_before"]
    with pytest.raises(DreamError, match="use octaves=1"):
        dreamrun.dream(photo, model="efficientnet_lite0", param="fft", octaves=3, progress=False)


def test_dream_of_no_image_starts_from_the_clis_noise(tmp_path):
    """image=None is input=noise: the same start as the CLI's (its input.png), for each param."""
    common = dict(model="efficientnet_lite0", target={"block_5": [7]}, octaves=1, size=64, progress=False)
    for param in ("fft", "pixel"):
        proc = run_cli(*LITE0, "input=noise", "input.size=64", "octaves=1", "steps=0", f"param={param}",
                       "target=block_5", f"hydra.run.dir={tmp_path / param}")
        assert proc.returncode == 0, proc.stderr
        start = np.array(dreamrun.dream(None, steps=0, param=param, **common)).astype(int)
        assert np.abs(start - pixels(tmp_path / param / "input.png").astype(int)).max() <= 1
    dreamed = dreamrun.dream(None, steps=5, step_size=0.05, param="fft", transforms="lucid", **common)
    assert dreamed.info["dreamrun"]["objective_after"] > dreamed.info["dreamrun"]["objective_before"]


def test_a_zoom_moves_through_its_transforms_and_resumes_them_where_it_stopped(tmp_path):
    """A zoom with transforms=lucid is not the zoom without; resumed after frame 1, its frames 2 and 3 are
    those of the run that never stopped: the moves come from the saved generator."""
    zoom = ["mode=zoom", *LITE0, "input=noise", "input.size=64", "zoom.steps_per_frame=3", "log=none"]

    def frames(run_dir, count):
        return [pixels(run_dir / "frames" / f"{k:06d}.png") for k in range(count)]

    for name, extra in [("whole", ["zoom.frames=4", "transforms=lucid"]), ("plain", ["zoom.frames=4"]),
                        ("resumed", ["zoom.frames=2", "transforms=lucid"]),
                        ("resumed", ["zoom.frames=4", "transforms=lucid", "resume=true"])]:
        proc = run_cli(*zoom, *extra, f"hydra.run.dir={tmp_path / name}")
        assert proc.returncode == 0, proc.stderr
    whole, plain, resumed = (frames(tmp_path / name, 4) for name in ("whole", "plain", "resumed"))
    assert not np.array_equal(whole[1], plain[1])
    for k in range(4):
        np.testing.assert_array_equal(resumed[k], whole[k], err_msg=f"frame {k}")


# ---- the atlas ------------------------------------------------------------------------------------------------

ATLAS = ["-m", "+preset=atlas", *LITE0, "target=block_3", "input.size=64", "steps=4"]


def test_the_atlas_preset_sets_feature_visualisation_over_the_defaults(compose_cfg):
    cfg = compose_cfg("+preset=atlas", "model=efficientnet_lite0")
    assert (cfg.param.value, cfg.transforms, cfg.reduction.value, cfg.octaves) == ("fft", "lucid", "mean", 1)
    assert (cfg.input.kind.value, cfg.input.size, cfg.jitter.max_shift) == ("noise", 224, 0)


def test_an_atlas_dreams_its_channels_together_as_each_would_alone(tmp_path):
    """At 96 px: past the smallest tile, where a lone job measures its memory for tile.size=auto first."""
    together = run_cli(*ATLAS, "input.size=96", "target.block_3=range(0,3)", f"hydra.sweep.dir={tmp_path / 'batched'}")
    assert together.returncode == 0, together.stderr
    assert "3 together" in together.stderr
    alone = run_cli(*ATLAS, "input.size=96", "target.block_3=range(0,3)", "hydra/launcher=basic",
                    f"hydra.sweep.dir={tmp_path / 'basic'}")
    assert alone.returncode == 0, alone.stderr
    for channel in range(3):
        name = f"{channel}_target.block_3={channel}"
        cfg = json.loads((tmp_path / "batched" / name / "result.json").read_text())
        assert cfg["status"] == "completed"
        np.testing.assert_array_equal(pixels(tmp_path / "batched" / name / "dream.png"),
                                      pixels(tmp_path / "basic" / name / "dream.png"))
    assert (tmp_path / "batched" / "summary.png").exists()


def test_an_atlas_of_many_channels_is_wrapped_into_a_labelled_grid(tmp_path):
    proc = run_cli(*ATLAS, "steps=1", "target.block_3=range(0,10)", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    sheet = Image.open(tmp_path / "summary.png")
    assert sheet.height > 0.6 * sheet.width  # 4 x 3 pictures, not a row of 10
    board = EventAccumulator(str(tmp_path), size_guidance={"images": 0}).Reload()
    assert "sweep/summary" in board.Tags()["images"]
    report = (tmp_path / "summary.md").read_text()
    assert all(f"target.block_3={c}" in report for c in range(10))


def test_a_wrapped_atlas_keeps_each_channel_in_its_place_when_one_never_started(tmp_path):
    """Channel 4 never started: its cell is the fifth (row 1, column 0 of 4), and channel 5 the sixth."""
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(
        {"hydra": {"overrides": {"task": ["target.block_3=range(0,10)"]}}}))
    for channel in (c for c in range(10) if c != 4):
        fake_sweep_job(tmp_path, channel, [f"target.block_3={channel}"], "completed", color=(20 * channel, 200, 0))
    picture = sheet(summarize(tmp_path))
    layout = Layout.for_images((60, 40))

    def red_at(index: int) -> int:
        x0, y0, x1, y1 = layout.thumbnail_box((60, 40), *divmod(index, 4))
        return picture.getpixel(((x0 + x1) // 2, (y0 + y1) // 2))[0]

    assert [red_at(k) for k in (0, 3, 5, 9)] == [0, 60, 100, 180]
    assert red_at(4) not in {20 * c for c in range(10)}
