import pytest
import torch

from dreamrun.core import engine
from dreamrun.core.engine import Ascent
from dreamrun.core.observers import Observer


def mean_square(image: torch.Tensor) -> torch.Tensor:
    # translation-equivariant: rolling the image does not change its gradient, rolled back
    return image.pow(2).mean()


def grey(height=64, width=80) -> torch.Tensor:
    return torch.full((1, 3, height, width), 0.5)


def dream(image, objective, generator=None, observers=(), **settings):
    ascent = Ascent(**{"octaves": 1, "octave_scale": 1.4, "steps": 3, "step_size": 0.01, "max_shift": 0, **settings})
    return engine.dream(image, objective, ascent, generator=generator or torch.Generator().manual_seed(0),
                        observers=observers)


def test_roll_then_unroll_is_the_identity():
    image = torch.rand(1, 3, 17, 23)
    for shift in [(0, 0), (5, -7), (-16, 22), (40, 3)]:
        assert torch.equal(engine.unroll(engine.roll(image, shift), shift), image)


def test_jitter_is_undone_exactly_after_each_step():
    image = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(1))
    plain, _ = engine.ascent_step(image, mean_square, 0.01, (0, 0))
    jittered, _ = engine.ascent_step(image, mean_square, 0.01, (7, -11))
    assert torch.equal(plain, jittered)


def test_gradient_lands_on_the_pixel_the_network_saw():
    # the objective looks at one fixed position of the (rolled) image it is given
    def one_pixel(image):
        return image[0, 0, 10, 20]

    image = grey()
    shift = (3, 5)
    stepped, _ = engine.ascent_step(image, one_pixel, 0.01, shift)
    changed = (stepped != image).nonzero().tolist()
    assert changed == [[0, 0, 10 - 3, 20 - 5]]


def test_a_fresh_random_shift_before_every_step():
    seen = []

    def record(image):
        seen.append(image[0, 0].argmax().item())
        return image.pow(2).mean()

    image = torch.zeros(1, 3, 64, 64)
    image[0, 0, 0, 0] = 1.0
    dream(image, record, steps=6, max_shift=16, step_size=1e-6)
    assert len(set(seen)) > 1


def test_pixels_stay_in_the_valid_range():
    out = dream(torch.rand(1, 3, 32, 32), mean_square, steps=20, step_size=0.2)
    assert out.min() >= 0 and out.max() <= 1


def test_output_has_the_input_shape_for_every_octave_count():
    for octaves in (1, 2, 3):
        assert dream(grey(90, 70), mean_square, octaves=octaves).shape == (1, 3, 90, 70)


def test_dreamed_detail_carries_over_to_the_next_octave():
    def redness(image):
        return image[:, 0].mean()

    one = dream(grey(), redness, octaves=1, steps=4)
    two = dream(grey(), redness, octaves=2, steps=4)
    gain_one = (one[:, 0] - 0.5).mean().item()
    gain_two = (two[:, 0] - 0.5).mean().item()
    # the second octave starts from the first one's detail instead of from the plain photo
    assert gain_two == pytest.approx(2 * gain_one, rel=0.02)


def test_observers_see_every_step_and_octave_in_order():
    events = []

    class Recorder(Observer):
        def on_dream_start(self, *, sizes, steps):
            events.append(("start", len(sizes), steps))

        def on_step(self, *, octave, step, global_step, values, image, shift):
            events.append(("step", octave, step, global_step, sorted(values)))

        def on_octave_end(self, *, octave, global_step, image):
            events.append(("octave", octave, global_step, tuple(image.shape[-2:])))

        def on_dream_end(self, *, image):
            events.append(("end", tuple(image.shape[-2:])))

    def objective(image):
        return {"loss": mean_square(image), "brightness": image.mean()}

    dream(grey(64, 64), objective, octaves=2, steps=2, octave_scale=2.0, observers=[Recorder()])
    names = ["brightness", "grad_norm", "loss"]
    assert events == [
        ("start", 2, 2),
        ("step", 0, 0, 0, names), ("step", 0, 1, 1, names), ("octave", 0, 2, (32, 32)),
        ("step", 1, 0, 2, names), ("step", 1, 1, 3, names), ("octave", 1, 4, (64, 64)),
        ("end", (64, 64)),
    ]


def test_same_seed_gives_identical_pixels():
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    conv = torch.nn.Conv2d(3, 4, 3)
    torch.nn.init.normal_(conv.weight, generator=torch.Generator().manual_seed(4))

    def objective(x):
        return conv(x).pow(2).mean()

    a = dream(image, objective, max_shift=8, generator=torch.Generator().manual_seed(0))
    b = dream(image, objective, max_shift=8, generator=torch.Generator().manual_seed(0))
    c = dream(image, objective, max_shift=8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
