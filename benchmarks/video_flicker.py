"""How much a dreamed video flickers: coherent (flow) against a plain blend and independent frames.

    python benchmarks/video_flicker.py                     # 128 px, 12 frames, blends 0.3 .. 0.9
    python benchmarks/video_flicker.py --json benchmarks/results/video_flicker.json

The clip is synthetic with a known motion: a window panning over the sample photo by SHIFT px per
frame. Frame k+1 shows at p what frame k showed at p + SHIFT, so a dream that moves with the picture
has D[k+1](p) == D[k](p + SHIFT). Flicker = the mean |D[k+1](p) - D[k](p + SHIFT)| over the pixels both
frames show, in levels of 255, averaged over the pairs of frames after the first (frame 0 is a
normal dream in every mode). Each mode is the real job (dreamrun.jobs.video on the job skeleton) with
the Lite0 network, its default target and jitter.
"""
import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHIFT = (4, 1)  # (dx, dy) px per frame: the window moves right and down, the picture left and up
LEVELS = 255


def panning_clip(path: Path, *, frames: int, width: int, height: int, shift: tuple[int, int] = SHIFT,
                 fps: int = 10) -> None:
    """An H.264 clip of a width x height window moving over the sample photo by shift px per frame."""
    import av

    from dreamrun.outputs.images import resize_long_side, sample_image

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
    run_job(VideoJob, cfg, run_dir, progress=False)
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
    from dreamrun.outputs.video_files import read_frames

    return [np.asarray(to_pil(frame)) for frame in read_frames(clip, size=None)]


def measure(clip: Path, work: Path, blend: float, hold: float, settings: list[str]) -> dict[str, dict[str, float]]:
    """Each mode's frame_change and strength."""
    inputs = input_frames(clip)
    figures = {}
    for mode, overrides in modes(blend, hold).items():
        dreams = run_video(clip, work / f"{mode}_{blend}_{hold}", *settings, *overrides)
        figures[mode] = {"change": frame_change(dreams), "strength": strength(dreams, inputs)}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, nargs=2, default=(128, 96), metavar=("W", "H"))
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--blends", type=float, nargs="+", default=[0.5, 0.7, 0.9])
    parser.add_argument("--holds", type=float, nargs="+", default=[0.0, 0.5, 0.8])
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    import torch

    settings = ["octaves=2", "steps=5", "video.octaves=2", "video.steps_per_frame=5"]
    figures = {"device": f"CPU, {torch.get_num_threads()} threads", "torch": torch.__version__,
               "clip": {"size": list(args.size), "frames": args.frames, "shift_px_per_frame": list(SHIFT)},
               "settings": settings, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = work / "pan.mp4"
        panning_clip(clip, frames=args.frames, width=args.size[0], height=args.size[1])
        start = time.perf_counter()
        print("frame-to-frame change after undoing the motion (strength: mean |dream - frame|), levels of 255", flush=True)
        for blend in args.blends:
            for hold in args.holds:
                run = measure(clip, work, blend, hold, settings)
                flow, plain, alone = run["flow"], run["plain_blend"], run["independent"]
                run.update({"video.blend": blend, "video.hold": hold,
                            "flow_vs_independent": flow["change"] / alone["change"],
                            "flow_vs_plain_blend": flow["change"] / plain["change"]})
                figures["runs"].append(run)
                print(f"blend {blend} hold {hold}: flow {flow['change']:.2f} ({flow['strength']:.1f}), "
                      f"plain blend {plain['change']:.2f} ({plain['strength']:.1f}), "
                      f"independent {alone['change']:.2f} ({alone['strength']:.1f}); "
                      f"flow/independent {run['flow_vs_independent']:.2f}, "
                      f"flow/plain blend {run['flow_vs_plain_blend']:.2f}",
                      flush=True)
        figures["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
