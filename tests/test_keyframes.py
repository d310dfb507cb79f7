"""Keyframed motion: zoom.factor, zoom.rotation, zoom.shift, step_size, steps per frame and target weights
given as {frame: value}, interpolated between (linear: numpy's interp; smooth: smoothstep), logged per frame."""
import json
import re

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import ZOOM, run_cli
from dreamrun.core.keyframes import curve
from dreamrun.core.zoom import zoom_in
from dreamrun.jobs.frame_state import frame_path
from dreamrun.errors import DreamError

POINTS = {0: 1.0, 10: 3.0, 25: -2.0}


@pytest.mark.parametrize("frame", [0, 3, 10, 17, 25, 40])
def test_linear_keyframes_are_numpys_interpolation_held_at_the_ends(frame):
    assert curve(POINTS, "k").at(frame) == pytest.approx(np.interp(frame, list(POINTS), list(POINTS.values())))


@pytest.mark.parametrize("frame", [0, 3, 10, 17, 25, 40])
def test_smooth_keyframes_ease_in_and_out_of_each_segment(frame):
    frames, values = list(POINTS), list(POINTS.values())
    k = max(0, min(len(frames) - 2, np.searchsorted(frames, frame, side="right") - 1))
    t = np.clip((frame - frames[k]) / (frames[k + 1] - frames[k]), 0, 1)
    expected = values[k] + (3 * t**2 - 2 * t**3) * (values[k + 1] - values[k])
    assert curve(POINTS, "k").at(frame, "smooth") == pytest.approx(expected)


def test_pairs_interpolate_element_by_element_and_a_number_is_a_constant():
    shift = curve({0: [0, 0], 4: [8, -4]}, "zoom.shift", pair=True)
    assert shift.at(1) == pytest.approx((2.0, -1.0))
    assert curve(0.5, "zoom.factor").at(99) == 0.5 and curve(0.5, "zoom.factor").constant


def _centroid(image: torch.Tensor) -> tuple[float, float]:
    weights = image[0, 0]
    ys, xs = torch.meshgrid(torch.arange(weights.shape[0]), torch.arange(weights.shape[1]), indexing="ij")
    return (weights * ys).sum().item() / weights.sum().item(), (weights * xs).sum().item() / weights.sum().item()


def test_a_shift_moves_the_view_so_the_picture_moves_the_other_way():
    image = torch.zeros(1, 3, 128, 128)
    image[..., 54:74, 54:74] = 1.0  # a square in the middle
    y, x = _centroid(zoom_in(image, factor=0.0, shift=(6.0, -4.0)))
    assert (x, y) == pytest.approx((63.5 - 6, 63.5 + 4), abs=0.2)


def test_each_frame_moves_by_its_keyframed_values(tmp_path):
    """With no steps a zoom only moves: frame k is frame k-1 zoomed in by the values the keyframes give at k
    (numpy's interpolation), and nothing else."""
    run_dir = tmp_path / "zoom"
    factor, rotation, shift = {0: 0.0, 3: 0.06}, {1: 0, 3: 9}, {0: [0, 0], 3: [6, -3]}
    proc = run_cli(*ZOOM, "zoom.steps_per_frame=0", f"zoom.factor={factor}", f"zoom.rotation={rotation}",
                   f"zoom.shift={shift}", "log=none", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr

    def at(points, k):
        return np.interp(k, list(points), [np.asarray(v, dtype=float) for v in points.values()]) \
            if not isinstance(next(iter(points.values())), list) else \
            tuple(np.interp(k, list(points), [v[i] for v in points.values()]) for i in range(2))

    def pixels(k):
        return np.asarray(Image.open(frame_path(run_dir, k)), dtype=np.float32)

    for k in range(1, 4):
        before = torch.from_numpy(pixels(k - 1) / 255).permute(2, 0, 1)[None]
        moved = zoom_in(before, float(at(factor, k)), float(at(rotation, k)), at(shift, k))
        np.testing.assert_array_equal(pixels(k), (moved[0].permute(1, 2, 0).numpy() * 255).round())


def test_a_keyframed_zoom_logs_each_frames_values_where_tensorboard_shows_them(tmp_path):
    run_dir = tmp_path / "zoom"
    proc = run_cli(*ZOOM, "zoom.frames=5", "zoom.rotation={0: 0, 4: 8}", "zoom.shift={2: [0, 0], 4: [2, 1]}",
                   "zoom.easing=smooth", "target.block_12={channels: [1, 2], weight: {0: 1, 4: 0}}",
                   f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    board = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    board.Reload()
    smooth = {k: 3 * (k / 4) ** 2 - 2 * (k / 4) ** 3 for k in range(5)}
    assert [e.value for e in board.Scalars("zoom/keyframes/rotation")] == pytest.approx([8 * smooth[k] for k in range(5)])
    assert [e.value for e in board.Scalars("zoom/keyframes/weight/block_12[1,2]")] == \
        pytest.approx([1 - smooth[k] for k in range(5)])
    assert [e.value for e in board.Scalars("zoom/keyframes/shift_x")] == pytest.approx([0, 0, 0, 1, 2])
    assert "zoom/keyframes/step_size" not in board.Tags()["scalars"]  # a constant is not a curve
    assert json.loads((run_dir / "zoom_state.json").read_text())["values"]["rotation"] == pytest.approx(8)


@pytest.mark.parametrize("overrides, message", [
    (["zoom.rotation={3: 0, 1: 2}"], "zoom.rotation: keyframes must go forward in time: frame 1 comes after frame 3"),
    (["zoom.rotation={0: 0, 4: 2}"], r"zoom.rotation: keyframe 4 is past the last frame \(zoom.frames=4 makes frames 0-3\)"),
    (["target.block_12={weight: {0: 1, 9: 0}}"], "target.block_12.weight: keyframe 9 is past the last frame"),
    (["zoom.factor={0: 0.02, 3: 0.7}"], r"zoom.factor\[3\] is the part of each side cropped per frame: 0 to 0.5"),
    (["zoom.shift={0: [1, 2, 3]}"], r"zoom.shift\[0\] must be \[x, y\] in px or keyframes"),
    (["mode=dream", "step_size={0: 0.01, 3: 0.02}"], "step_size: keyframes {frame: value} change a setting over a zoom"),
])
def test_bad_keyframes_are_one_line(tmp_path, overrides, message):
    run_dir = tmp_path / "run"
    proc = run_cli(*ZOOM, *overrides, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dreamrun: error: "), proc.stderr
    assert re.search(message, lines[0]), lines[0]
    assert json.loads((run_dir / "result.json").read_text())["status"] == "failed"


def test_a_curve_refuses_what_is_not_a_keyframe():
    for value, message in [({"a": 1}, "is not a frame number"), ({}, "no keyframes"), ({0: "x"}, "must be a number")]:
        with pytest.raises(DreamError, match=message):
            curve(value, "zoom.rotation")


def test_a_video_takes_keyframed_steps_step_size_and_weights(tmp_path):
    pytest.importorskip("av")
    from helpers.clips import panning_clip

    panning_clip(tmp_path / "clip.mp4", frames=3, width=64, height=48)
    run_dir = tmp_path / "video"
    proc = run_cli("clip.mp4", "input.size=null", "model=efficientnet_lite0", "octaves=1", "steps=1", "video.octaves=1",
                   "device=cpu", "video.steps_per_frame={1: 1, 2: 3}", "step_size={0: 0.01, 2: 0.03}",
                   "target.block_12={weight: {0: 2, 2: 1}}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    board = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    board.Reload()
    assert [e.value for e in board.Scalars("video/keyframes/step_size")] == pytest.approx([0.01, 0.02, 0.03])
    steps = board.Scalars("video/keyframes/steps_per_frame")  # frame 0 is a whole dream: octaves x steps
    assert [(e.step, e.value) for e in steps] == [(1, 1), (2, 3)]
    assert [e.value for e in board.Scalars("video/keyframes/weight/block_12")] == pytest.approx([2, 1.5, 1])
