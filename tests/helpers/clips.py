"""A synthetic video with a known motion, and how much a dreamed video of it flickers: shared by
tests/test_video.py and benchmarks/video_flicker.py."""
from pathlib import Path
import numpy as np
from PIL import Image



SHIFT = (4, 1)  # (dx, dy) px per frame: the window moves right and down, the picture left and up
LEVELS = 255


def panning_clip(path: Path, *, frames: int, width: int, height: int, shift: tuple[int, int] = SHIFT,
                 fps: int = 10) -> None:
    """An H.264 clip of a width x height window moving over the sample photo by shift px per frame."""
    import av

    from dreamrun.inputs.images import resize_long_side, sample_image

    dx, dy = shift
    photo = np.asarray(resize_long_side(sample_image(), max(width + dx * frames, height + dy * frames) + 8))
    if photo.shape[0] < height + dy * frames or photo.shape[1] < width + dx * frames:
        raise ValueError("the photo is too small for this pan")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "0"}  # near-lossless: the motion, not the codec, is what changes
        for k in range(frames):
            window = np.ascontiguousarray(photo[dy * k:dy * k + height, dx * k:dx * k + width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(window, format="rgb24")))
        container.mux(stream.encode())


def frame_change(frames: list[np.ndarray], shift: tuple[int, int] = SHIFT) -> float:
    """Mean |D[k+1](p) - D[k](p + shift)| over the overlap, levels of 255, over pairs k >= 1."""
    dx, dy = shift
    changes = []
    for before, after in zip(frames[1:], frames[2:]):
        height, width = after.shape[:2]
        moved = before[dy:, dx:]  # D[k](p + shift) for p in the overlap
        changes.append(np.abs(after[:height - dy, :width - dx].astype(float) - moved.astype(float)).mean())
    return float(np.mean(changes))


def dream_frames(run_dir: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(path).convert("RGB")) for path in sorted((run_dir / "frames").glob("*.png"))]


def run_video(clip: Path, run_dir: Path, *overrides: str) -> list[np.ndarray]:
    """The video job in process (as `python -m dreamrun mode=video ...` runs it), its dreamed frames."""
    from dreamrun.config.compose import compose_config
    from dreamrun.jobs.skeleton import run_job
    from dreamrun.jobs.video import VideoJob

    cfg = compose_config("mode=video", "model=efficientnet_lite0", "input=video", f"input.path={clip}",
                         "input.size=null", "device=cpu", "log.tensorboard=false", *overrides)
    run_job(VideoJob(cfg, run_dir, progress=False))
    return dream_frames(run_dir)


def modes(blend: float, hold: float) -> dict[str, list[str]]:
    """The coherent video, the plain blend and independent frames at the same settings."""
    same = [f"video.blend={blend}", f"video.hold={hold}"]
    return {"flow": same, "plain_blend": [*same, "video.flow=false"], "independent": ["video.blend=0"]}


def strength(dreams: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    """How strongly the frames after the first are dreamed: mean |dream - input frame|, levels of 255."""
    return float(np.mean([np.abs(d.astype(float) - i.astype(float)).mean() for d, i in zip(dreams[1:], inputs[1:])]))


def input_frames(clip: Path) -> list[np.ndarray]:
    from dreamrun.outputs.images import to_pil
    from dreamrun.inputs.video import read_frames

    return [np.asarray(to_pil(frame)) for frame in read_frames(clip, size=None)]


def measure(clip: Path, work: Path, blend: float, hold: float, settings: list[str]) -> dict[str, dict[str, float]]:
    """Each mode's frame_change and strength."""
    inputs = input_frames(clip)
    figures = {}
    for mode, overrides in modes(blend, hold).items():
        dreams = run_video(clip, work / f"{mode}_{blend}_{hold}", *settings, *overrides)
        figures[mode] = {"change": frame_change(dreams), "strength": strength(dreams, inputs)}
    return figures
