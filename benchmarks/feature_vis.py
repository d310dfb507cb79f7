"""Feature visualisation against lucent: the channel objective that param=fft reaches, beside lucent's
render_vis (fft=True, decorrelate=True) and dreamrun's param=pixel, from noise, with the same steps and the same
transform set (Lucid's standard set: pad 12, jitter 8, scale 0.9-1.1, rotate ±10°, jitter 4). EfficientNet-Lite0,
offline, 8 channels of each of two layers.

Every picture is scored by one judge that is neither tool: the packaged Lite0 (efficientnet-lite-pytorch, its own
unmodified network), the channel's mean activation at that block, on the picture itself (no transforms).
Fine grain is the mean absolute difference of neighbouring pixels.

    pip install --no-deps torch-lucent==0.1.8 kornia kornia-rs decorator   # lucent pins kornia<=0.4.1; 0.9 runs it
    python benchmarks/feature_vis.py        # prints the ratios; writes benchmarks/results/feature_vis.json and
                                            # the contact sheet benchmarks/feature_vis_lite0.jpg
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dreamrun.config.compose import compose_config
from dreamrun.jobs.dream import prepare, run_dream
from dreamrun.jobs.skeleton import load_input
from dreamrun.nets.backends import backend_settings
from dreamrun.outputs.contact_sheet import Layout, Tile, contact_sheet
from dreamrun.outputs.images import to_pil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.gpu_readiness import machine  # noqa: E402
from tests.helpers.classic import BlockActivation, packaged_lite0  # noqa: E402  the tests' own judge

LAYERS = {"block_5": 5, "block_10": 10}
CHANNELS = range(8)
METHODS = ("lucent", "fft", "pixel")
LABELS = {"lucent": "lucent render_vis\nfft, decorrelate", "fft": "dreamrun\nparam=fft",
          "pixel": "dreamrun\nparam=pixel"}


class Judge:
    """A block's channel means on pictures (1, 3, H, W) in [0, 1], from the unmodified packaged network."""

    def __init__(self):
        model = packaged_lite0()
        self.blocks = {name: BlockActivation(model, index) for name, index in LAYERS.items()}

    def __call__(self, picture: torch.Tensor, layer: str, channel: int) -> float:
        with torch.no_grad():
            return self.blocks[layer](picture)[:, channel].mean().item()


def fine_grain(picture: torch.Tensor) -> float:
    across = (picture[..., 1:] - picture[..., :-1]).abs().mean()
    down = (picture[..., 1:, :] - picture[..., :-1, :]).abs().mean()
    return float((across + down) / 2)


def dreamrun_picture(param: str, layer: str, channel: int, side: int, steps: int, seed: int) -> torch.Tensor:
    step_size = 0.05 if param == "fft" else 0.01  # Adam's learning rate in the spectrum; the mean pixel step
    cfg = compose_config("model=efficientnet_lite0", "device=cpu", "input=noise", f"input.size={side}", "octaves=1",
                         f"steps={steps}", f"step_size={step_size}", f"param={param}", "transforms=lucid",
                         "reduction=mean", "jitter=none", "precision=fp32", f"seed={seed}",
                         f"target={layer}", f"target.{layer}=[{channel}]")
    image = load_input(cfg, torch.Generator().manual_seed(seed))
    dreamer = prepare(cfg, side, side, image=image)
    with backend_settings(dreamer.backends):
        return run_dream(cfg, image, dreamer).image


def lucent_picture(model: torch.nn.Module, layer: str, channel: int, side: int, steps: int, seed: int) -> torch.Tensor:
    import kornia
    from lucent.optvis import param, render, transform

    # lucent 0.1.8 calls these at kornia's top level, where kornia 0.4 had them; later kornia keeps them here
    for function in ("get_rotation_matrix2d", "warp_affine"):
        setattr(kornia, function, getattr(kornia, function, getattr(kornia.geometry.transform, function)))
    torch.manual_seed(seed)
    np.random.seed(seed)
    name = f"_blocks_{LAYERS[layer]}"  # lucent's name for the module model._blocks[i]
    images = render.render_vis(model, lambda hook: -hook(name)[:, channel].mean(),
                               lambda: param.image(side, fft=True, decorrelate=True),
                               transforms=list(transform.standard_transforms), thresholds=(steps,),
                               progress=False, show_image=False)
    return torch.from_numpy(images[-1]).permute(0, 3, 1, 2).float()


def sheet(pictures: dict, layer: str, path: Path) -> None:
    tiles = [[Tile(to_pil(pictures[method][layer][c]), []) for c in CHANNELS] for method in METHODS]
    side = pictures["fft"][layer][0].shape[-1]
    layout = Layout.for_images((side, side), row_labels=True, col_labels=True)
    contact_sheet(tiles, layout, [LABELS[m] for m in METHODS], [f"{layer} #{c}" for c in CHANNELS]).convert("RGB") \
        .save(path, quality=90)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()

    judge, lucent_model = Judge(), packaged_lite0()
    pictures = {method: {layer: {} for layer in LAYERS} for method in METHODS}
    scores = {method: {layer: {} for layer in LAYERS} for method in METHODS}
    grain = {method: {layer: {} for layer in LAYERS} for method in METHODS}
    seconds = {method: 0.0 for method in METHODS}
    for layer in LAYERS:
        for channel in CHANNELS:
            for method in METHODS:
                start = time.perf_counter()
                if method == "lucent":
                    picture = lucent_picture(lucent_model, layer, channel, args.side, args.steps, args.seed)
                else:
                    picture = dreamrun_picture(method, layer, channel, args.side, args.steps, args.seed)
                seconds[method] += time.perf_counter() - start
                pictures[method][layer][channel] = picture
                scores[method][layer][channel] = judge(picture, layer, channel)
                grain[method][layer][channel] = fine_grain(picture)
            print(f"{layer} #{channel}: " + ", ".join(
                f"{m} {scores[m][layer][channel]:.3g} (grain {grain[m][layer][channel]:.3f})" for m in METHODS),
                flush=True)

    def mean(table, method, layer=None):
        values = [v for name, per in table[method].items() if layer in (None, name) for v in per.values()]
        return sum(values) / len(values)

    result = {
        "machine": machine("cpu"), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
        "side": args.side, "steps": args.steps, "seed": args.seed, "channels": list(CHANNELS), "layers": list(LAYERS),
        "judge": "packaged efficientnet-lite0, mean activation of the channel on the final picture",
        "objective": {m: mean(scores, m) for m in METHODS},
        "objective_by_layer": {m: {layer: mean(scores, m, layer) for layer in LAYERS} for m in METHODS},
        "fine_grain": {m: mean(grain, m) for m in METHODS},
        "ratios": {
            "fft_over_lucent_objective": mean(scores, "fft") / mean(scores, "lucent"),
            "fft_over_pixel_objective": mean(scores, "fft") / mean(scores, "pixel"),
            "fft_over_pixel_fine_grain": mean(grain, "fft") / mean(grain, "pixel"),
            "fft_over_lucent_objective_by_layer": {layer: mean(scores, "fft", layer) / mean(scores, "lucent", layer)
                                                   for layer in LAYERS},
        },
        "fft_at_least_lucent_channels": sum(scores["fft"][layer][c] >= 0.9 * scores["lucent"][layer][c]
                                            for layer in LAYERS for c in CHANNELS),
        "per_channel": {"objective": scores, "fine_grain": grain},
        "seconds": seconds,
    }
    ratios = result["ratios"]
    print(f"objective: fft {ratios['fft_over_lucent_objective']:.2f}x lucent's (goal >= 0.9), "
          f"{ratios['fft_over_pixel_objective']:.2f}x pixel's (goal >= 1)")
    print(f"fine grain: fft {ratios['fft_over_pixel_fine_grain']:.2f}x pixel's (goal <= 0.5)")
    if not args.no_save:
        here = Path(__file__).parent
        for layer in LAYERS:
            sheet(pictures, layer, here / f"feature_vis_lite0_{layer}.jpg")
        (here / "results" / "feature_vis.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
