"""mode=video: decoding, the optical flow against known motion, the run dir, resume, bad input, and the
flicker the issue measures (benchmarks/video_flicker.py at a CI size)."""
import json
import signal
import subprocess
import sys
import time
from fractions import Fraction

import av
import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import run_cli, start_cli
from helpers.clips import SHIFT, dream_frames, frame_change, input_frames, measure, panning_clip
from dreamrun.core.flow import estimate_flow, occlusion, warp
from dreamrun.errors import DreamError
from dreamrun.inputs.images import resize_long_side, sample_image, to_tensor
from dreamrun.inputs.video import read_frames
from dreamrun.jobs.skeleton import run_job
from dreamrun.jobs.video import VideoJob
from dreamrun.outputs.video_files import save_mp4

VIDEO = ["mode=video", "model=efficientnet_lite0", "input=video", "input.size=null", "device=cpu",
         "octaves=1", "steps=2", "video.octaves=1", "video.steps_per_frame=2"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """8 frames of 96x64 px panning over the sample photo by SHIFT px a frame, at 10 fps."""
    path = tmp_path_factory.mktemp("clip") / "pan.mp4"
    panning_clip(path, frames=8, width=96, height=64)
    return path


def _moved_pair(dx: int, dy: int, size: int = 96):
    """A crop of the sample photo and the same crop with its content moved right by dx and down by dy."""
    photo = to_tensor(resize_long_side(sample_image(), 300))
    return photo[..., 40:40 + size, 60:60 + size], photo[..., 40 - dy:40 - dy + size, 60 - dx:60 - dx + size]


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_the_flow_finds_a_known_motion(method):
    before, after = _moved_pair(dx=3, dy=2)
    flow = estimate_flow(before, after, method)[:, 16:-16, 16:-16]  # inside: away from the band that came in
    assert abs(flow[0].median().item() - 3) < 0.25 and abs(flow[1].median().item() - 2) < 0.25


def test_warping_along_the_flow_moves_the_picture_and_occlusion_marks_what_came_into_view():
    before, after = _moved_pair(dx=4, dy=0)
    backward, forward = estimate_flow(after, before), estimate_flow(before, after)
    moved = warp(before, backward)
    inside = (..., slice(8, -8), slice(8, -8))
    assert (moved - after)[inside].abs().mean() < 0.1 * (before - after)[inside].abs().mean()
    occluded = occlusion(backward, forward)
    assert occluded[:, :4].float().mean() > 0.9  # the 4 columns that came in at the left
    assert occluded[8:-8, 8:-8].float().mean() < 0.05


def test_frames_decode_as_written(clip, tmp_path):
    frames = list(read_frames(clip, size=None))
    written = input_frames(clip)
    photo = np.asarray(resize_long_side(sample_image(), 96 + SHIFT[0] * 8 + 8))  # what panning_clip cut from
    assert len(frames) == 8 and frames[0].shape == (1, 3, 64, 96)
    dx, dy = SHIFT
    windows = [photo[dy * k:dy * k + 64, dx * k:dx * k + 96].astype(float) for k in range(8)]
    for k, frame in enumerate(written):  # each decoded frame is its own window, not a neighbour's
        errors = [np.abs(frame.astype(float) - window).mean() for window in windows]
        assert int(np.argmin(errors)) == k and errors[k] < 0.5 * min(errors[:k] + errors[k + 1:]), errors
    assert len(list(read_frames(clip, size=48, every=3))) == 3  # frames 0, 3, 6
    few = list(read_frames(clip, size=48, every=2, max_frames=2))  # frames 0 and 2, at 48 px
    assert len(few) == 2 and few[0].shape == (1, 3, 32, 48)
    assert torch.equal(few[1], list(read_frames(clip, size=48))[2])
    # dream.mp4's writer: PyAV's own reader sees the frames, the rate and even sides
    paths = []
    for k in range(3):
        Image.fromarray(written[k][:63, :95]).save(tmp_path / f"{k}.png")
        paths.append(tmp_path / f"{k}.png")
    save_mp4(paths, tmp_path / "out.mp4", Fraction(30000, 1001))
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.video[0]
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert stream.average_rate == Fraction(30000, 1001) and stream.codec_context.pix_fmt == "yuv420p"
    assert len(decoded) == 3 and decoded[0].shape == (62, 94, 3)
    sources = [written[k][:62, :94].astype(float) for k in range(3)]
    for k, frame in enumerate(decoded):  # in order, each its own source (H.264 is lossy, so: the closest)
        errors = [np.abs(frame.astype(float) - source).mean() for source in sources]
        assert int(np.argmin(errors)) == k and errors[k] < 0.5 * min(errors[:k] + errors[k + 1:]), errors


def test_dream_mp4_keeps_the_sound_for_as_long_as_the_frames_last(tmp_path):
    source = tmp_path / "with_sound.mp4"  # 2 s: 20 frames at 10 fps and a 440 Hz tone
    with av.open(str(source), "w") as container:
        video = container.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        for k in range(20):
            container.mux(video.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 10 * k, np.uint8))))
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * 44100) / 44100)).astype(np.float32)[None]
        for start in range(0, tone.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format="flt",
                                               layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            container.mux(audio.encode(frame))
        container.mux(video.encode())
        container.mux(audio.encode())
    paths = []
    for k in range(5):  # 5 dreamed frames at 5 fps (every 2nd frame): the first second
        Image.new("RGB", (64, 48), (k * 40, 0, 0)).save(tmp_path / f"{k}.png")
        paths.append(tmp_path / f"{k}.png")
    save_mp4(paths, tmp_path / "dream.mp4", Fraction(5), audio_from=source)
    with av.open(str(tmp_path / "dream.mp4")) as container:
        assert [stream.type for stream in container.streams] == ["video", "audio"]
        sound = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(sound))
        assert sound.codec_context.name == "aac" and sound.rate == 44100
    assert 44100 <= samples <= 44100 + 2 * 1024  # one second, to the AAC frame
    save_mp4(paths, tmp_path / "silent.mp4", Fraction(5), audio_from=paths[0])  # no audio there: none here
    with av.open(str(tmp_path / "silent.mp4")) as container:
        assert [stream.type for stream in container.streams] == ["video"]


def test_a_sideways_phone_video_is_turned_as_ffmpeg_turns_it(tmp_path):
    """A clip whose track matrix says "turn 90 degrees" (as a phone's portrait video does), decoded by
    dreamrun and by the ffmpeg binary with its default autorotate: the same upright pixels."""
    import struct

    import imageio_ffmpeg

    clip = tmp_path / "flat.mp4"
    panning_clip(clip, frames=2, width=64, height=32)
    data = clip.read_bytes()
    identity = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    quarter_turn = struct.pack(">9I", 0, 0x10000, 0, 0xFFFF0000, 0, 0, 0, 0, 0x40000000)
    track = data.rindex(identity)  # the track header's matrix (the movie header's comes first)
    turned = tmp_path / "portrait.mp4"
    turned.write_bytes(data[:track] + quarter_turn + data[track + len(identity):])
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(turned), "-frames:v", "1",
                          "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    ours = input_frames(turned)[0]
    assert ours.shape == (64, 32, 3)  # upright: taller than wide
    assert np.array_equal(np.frombuffer(raw, np.uint8).reshape(ours.shape), ours)


def test_a_video_run_leaves_every_file(clip, tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli(*VIDEO, f"input.path={clip}", "video.max_frames=6", "video.log_every=2",
                   f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(run_dir / "dream.mp4")
    assert sorted(p.name for p in (run_dir / "frames").iterdir()) == [f"{k:06d}.png" for k in range(6)]
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "completed" and record["paths"]["dream_video"] == "dream.mp4"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["frames"] == 6 and metrics["fps"] == 10 and metrics["flow"] == "dis"
    with av.open(str(run_dir / "dream.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 10 and len(list(container.decode(stream))) == 6
    with Image.open(run_dir / "input.png") as first, Image.open(run_dir / "preview.gif") as gif:
        assert np.array_equal(np.asarray(first), input_frames(clip)[0])
        assert gif.n_frames == 6 and gif.size == (192, 64)  # input and dream side by side
    board = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0}).Reload()
    assert [e.step for e in board.Scalars("video/loss")] == list(range(6))
    assert [e.step for e in board.Scalars("video/flow_px")] == list(range(1, 6))
    flow = [e.value for e in board.Scalars("video/flow_px")]
    assert all(abs(px - np.hypot(*SHIFT)) < 1 for px in flow), flow  # the clip's motion, measured
    assert [e.step for e in board.Images("video/frame")] == [0, 2, 4]
    assert "video/preview" in board.Tags()["images"]


def test_a_dream_moves_with_the_picture(clip, tmp_path):
    """The issue's measure at a CI size: the frame-to-frame change once the known motion is undone is
    at most 0.5x that of independent frames and 0.8x that of the plain blend (same blend and hold)."""
    from dreamrun.config.schema import VideoConfig

    defaults = VideoConfig()
    figures = measure(clip, tmp_path, defaults.blend, defaults.hold, VIDEO[-4:])
    flow, plain, alone = (figures[mode]["change"] for mode in ("flow", "plain_blend", "independent"))
    assert flow <= 0.5 * alone and flow <= 0.8 * plain, figures
    # not by dreaming less: the coherent frames are dreamed at least as strongly as independent ones
    assert figures["flow"]["strength"] >= figures["independent"]["strength"], figures


def test_the_flicker_measure_sees_a_dream_that_does_not_move():
    """frame_change against its reference: frames that move by SHIFT change by 0; frames that stay put
    change by what the motion changes."""
    photo = np.asarray(resize_long_side(sample_image(), 200))
    dx, dy = SHIFT
    moving = [photo[dy * k:dy * k + 64, dx * k:dx * k + 96] for k in range(4)]
    assert frame_change(moving) == 0
    assert frame_change([moving[0]] * 4) > 5


def _video_cli(run_dir, clip, *extra):
    return [*VIDEO, f"input.path={clip}", "video.steps_per_frame=20", f"hydra.run.dir={run_dir}", *extra]


@pytest.mark.slow
def test_a_killed_video_resumes_to_the_same_frames_as_an_uninterrupted_one(clip, tmp_path):
    whole = run_cli(*_video_cli(tmp_path / "whole", clip))
    assert whole.returncode == 0, whole.stderr

    killed_dir = tmp_path / "killed"
    proc = start_cli(*_video_cli(killed_dir, clip), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (killed_dir / "frames" / "000002.png").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    state = json.loads((killed_dir / "video_state.json").read_text())
    assert 2 <= state["frame"] < 7, "the kill should land midway"

    resumed = run_cli(*_video_cli(killed_dir, clip, "resume=true"))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {killed_dir} after frame {state['frame']}" in resumed.stderr
    for k in range(8):
        name = f"{k:06d}.png"
        with Image.open(tmp_path / "whole" / "frames" / name) as a, Image.open(killed_dir / "frames" / name) as b:
            assert np.array_equal(np.asarray(a), np.asarray(b)), f"frame {k} differs"
    assert json.loads((killed_dir / "metrics.json").read_text())["resumed_at"] == state["frame"] + 1
    other = run_cli(*_video_cli(killed_dir, clip, "resume=true", "video.blend=0.5"))
    assert other.returncode == 2 and "cannot resume" in other.stderr and "video.blend" in other.stderr


def _not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video\n" * 100)
    return path


def _audio_only(tmp_path):
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _no_frames(tmp_path):
    path = tmp_path / "empty.mkv"
    container = av.open(str(path), "w", format="matroska")
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    container.start_encoding()
    container.close()
    return path


def _tiny(tmp_path):
    path = tmp_path / "tiny.mp4"
    panning_clip(path, frames=2, width=16, height=16)
    return path


def _photo(tmp_path):
    """A JPEG: FFmpeg reads it as a video of one frame, which is not what mode=video is for."""
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (96, 64), (200, 120, 40)).save(path)
    return path


def _unknown_codec(tmp_path, clip):
    """The clip with its codec's tag renamed: FFmpeg reads the container but has no decoder for it."""
    path = tmp_path / "unknown.mp4"
    data = clip.read_bytes()
    assert data.count(b"avc1") >= 1
    path.write_bytes(data.replace(b"avc1", b"zzzz"))
    return path


@pytest.mark.parametrize("make, phrase", [
    (_not_a_video, "is not a video FFmpeg can read"),
    (_audio_only, "holds no video stream"),
    (_no_frames, "holds no video frames"),
    (_tiny, "too small"),
    (_photo, "is a still image, not a video: dream it without mode=video"),
    ("unknown", "codec FFmpeg cannot decode"),
])
def test_bad_input_is_one_line_and_exit_2(clip, tmp_path, make, phrase):
    path = _unknown_codec(tmp_path, clip) if make == "unknown" else make(tmp_path)
    proc = run_cli(*VIDEO, f"input.path={path}", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("dreamrun: error: ") and phrase in lines[-1], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("overrides, phrase", [
    (["mode=video"], "mode=video dreams a video file: add input=video"),
    (["input=video", "input.path=clip.mp4"], "input=video is dreamed frame by frame with mode=video"),
    (["mode=video", "input=video", "input.path=clip.mp4", "video.blend=1.5"], "video.blend"),
    (["mode=video", "input=video", "input.path=clip.mp4", "video.every=0"], "video.every"),
])
def test_video_settings_are_checked(compose_cfg, tmp_path, overrides, phrase):
    with pytest.raises(DreamError, match=phrase):
        run_job(VideoJob(compose_cfg("model=efficientnet_lite0", *overrides), tmp_path, progress=False))


def test_without_pyav_the_error_says_what_to_install(compose_cfg, tmp_path, clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    with pytest.raises(DreamError, match=r"pip install 'dreamrun\[video\]'"):
        run_job(VideoJob(compose_cfg(*VIDEO, f"input.path={clip}"), tmp_path, progress=False))


def test_the_video_progress_bar_counts_frames_with_an_eta(capsys):
    from dreamrun.core.engine import Ascent
    from dreamrun.core.frames import FrameSettings
    from dreamrun.core.video import video_dream
    from dreamrun.outputs.progress import FrameProgressBar

    frames = [torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    one_step = Ascent(octaves=1, steps=1, max_shift=0)
    settings = FrameSettings(lambda x: x.pow(2).mean(), one_step)
    video_dream(frames, lambda frame: settings, blend=0.5, hold=0.5, flow=None, generator=torch.Generator(), total=3,
                observers=[FrameProgressBar(enabled=True, description="video")])
    err = capsys.readouterr().err
    assert "video" in err and "3/3" in err and "frame" in err and "<00:00" in err  # elapsed<remaining


def test_where_a_frame_starts_and_what_it_holds_back():
    from dreamrun.core.video import frame_start, hold_carried

    frame, dream = torch.full((1, 3, 8, 8), 0.2), torch.full((1, 3, 8, 8), 0.6)
    assert frame_start(None, None, frame, blend=0.9, flow="dis")[0] is frame  # the first frame
    assert frame_start(dream, frame, frame, blend=0, flow="dis")[0] is frame  # independent frames
    start, carried, figures = frame_start(dream, frame, frame, blend=0.75, flow=None)  # the plain blend
    assert torch.allclose(start, torch.full_like(frame, 0.5)) and carried.min() == 1 and figures is None
    dreamed = start + 0.1
    carried = torch.zeros(1, 1, 8, 8)
    carried[..., :4] = 1  # the left half carried, the right half came into view
    held = hold_carried(start, dreamed, carried, hold=0.5)
    assert torch.allclose(held[..., :4], start[..., :4] + 0.05) and torch.allclose(held[..., 4:], dreamed[..., 4:])


def test_a_small_video_is_dreamed_at_its_own_size_and_says_so(clip, tmp_path):
    """A 96x64 clip under input.size=128 is not enlarged (2.7x the pixels, a blurred dream) unless asked."""
    run_dir = tmp_path / "run"
    proc = run_cli(*VIDEO, "input.size=128", "video.max_frames=2", f"input.path={clip}", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert {frame.shape for frame in dream_frames(run_dir)} == {(64, 96, 3)}
    assert "video frames: 96x64 px, dreamed at that size (smaller than input.size=128" in proc.stderr
