import torch

from dreamrun.core import engine
from dreamrun.core.engine import Ascent
from dreamrun.outputs.progress import FrameProgressBar, ProgressBar


def run_with(bar: ProgressBar) -> None:
    engine.dream(torch.full((1, 3, 32, 32), 0.5), lambda x: x.pow(2).mean(), Ascent(octaves=2, steps=3, max_shift=0),
                 generator=torch.Generator(), observers=[bar])


def test_progress_bar_shows_octave_steps_and_loss(capsys):
    run_with(ProgressBar(enabled=True))
    err = capsys.readouterr().err
    assert "octave 2/2" in err and "loss=" in err and "6/6" in err


def test_without_a_terminal_progress_is_a_plain_line_per_octave(capsys):
    """Under tee, SLURM, nohup or a notebook a bar's carriage returns are noise: one line an octave."""
    run_with(ProgressBar())  # under pytest stderr is not a TTY
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("octave 1/2 (23x23 px): 3 steps in ") and "loss " in lines[0]
    assert lines[1].startswith("octave 2/2 (32x32 px): 3 steps in ")
    assert "\r" not in "".join(lines)


def test_progress_can_be_turned_off(capsys):
    run_with(ProgressBar(enabled=False))
    assert capsys.readouterr().err == ""


def run_frames(bar: FrameProgressBar, frames, start: int = 0, made: int = 0) -> None:
    bar.on_frames_start(frames=frames, start=start)
    for frame in range(start, start + made):
        bar.on_frame(frame=frame, image=None, rng_state=None)
    bar.on_frames_end(image=None)


def test_without_a_terminal_frames_are_reported_every_tenth_of_the_way(capsys):
    run_frames(FrameProgressBar(description="zoom"), frames=40, made=40)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"zoom: frame {n}/40" for n in range(4, 41, 4)]
    assert "s a frame" in lines[0] and "left" in lines[0]


def test_frames_of_a_video_of_unknown_length_are_reported_every_ten(capsys):
    run_frames(FrameProgressBar(description="video"), frames=None, start=5, made=20)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["video: frame 10", "video: frame 20"]


def test_dream_progress_lines_reach_a_pipe_while_the_dream_runs(tmp_path):
    """What tee or a SLURM log sees: the CLI's octave lines on stderr as they happen, stdout one line."""
    import subprocess
    import sys
    run = subprocess.run([sys.executable, "-m", "dreamrun", "model=efficientnet_lite0", "model.weights=null",
                          "target=block_3", "octaves=2", "steps=2", "input.size=96", "log=none", "device=cpu",
                          f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "octave 1/2" in run.stderr and "octave 2/2" in run.stderr
    assert len(run.stdout.splitlines()) == 1
