import torch

from dreamrun.core import engine
from dreamrun.outputs.progress import ProgressBar


def run_with(bar: ProgressBar) -> None:
    engine.dream(torch.full((1, 3, 32, 32), 0.5), lambda x: x.pow(2).mean(), octaves=2, octave_scale=1.4,
                 steps=3, step_size=0.01, max_shift=0, generator=torch.Generator(), observers=[bar])


def test_progress_bar_shows_octave_steps_and_loss(capsys):
    run_with(ProgressBar(enabled=True))
    err = capsys.readouterr().err
    assert "octave 2/2" in err and "loss=" in err and "6/6" in err


def test_progress_bar_is_quiet_when_not_on_a_terminal(capsys):
    run_with(ProgressBar())  # under pytest stderr is not a TTY
    assert capsys.readouterr().err == ""
