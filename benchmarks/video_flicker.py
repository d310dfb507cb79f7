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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers.clips import SHIFT, measure, panning_clip  # noqa: E402


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
