"""How seamless a seamless dream is: the dreamed detail's correlation across the wrapped seams, as a share of
its correlation between neighbouring columns (rows) inside, for seamless=true and a plain dream of the same
tileable input (the sample photo mirrored into a periodic tile). EfficientNet-Lite0, offline.

    python benchmarks/seamless_seams.py            # prints the ratios; writes benchmarks/results/seamless.json
"""
import json
import sys
from pathlib import Path

import torch
from PIL import Image

from dreamrun.config.compose import compose_config
from dreamrun.inputs.images import sample_image, to_tensor
from dreamrun.jobs.dream import prepare, run_dream
from dreamrun.nets.backends import backend_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.gpu_readiness import machine  # noqa: E402


def tileable(side: int) -> torch.Tensor:
    """(1, 3, side, side): the sample photo and its mirror images, a tile whose edges meet their opposites."""
    quarter = sample_image().resize((side // 2, side // 2), Image.LANCZOS)
    tile = Image.new("RGB", (side, side))
    tile.paste(quarter, (0, 0))
    tile.paste(quarter.transpose(Image.FLIP_LEFT_RIGHT), (side // 2, 0))
    tile.paste(quarter.transpose(Image.FLIP_TOP_BOTTOM), (0, side // 2))
    tile.paste(quarter.transpose(Image.ROTATE_180), (side // 2, side // 2))
    return to_tensor(tile)


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return (a @ b / (a.norm() * b.norm())).item()


def seam_ratio(details: list[torch.Tensor]) -> float:
    """The dreamed details' mean correlation across the wrapped seams (last column with first, last row
    with first) over their mean correlation between neighbouring columns and rows inside. One column pair
    is a noisy sample, so it pools several dreams (seeds)."""
    across, inside = [], []
    for detail in details:
        across += [_correlation(detail[..., -1], detail[..., 0]), _correlation(detail[..., -1, :], detail[..., 0, :])]
        inside += [_correlation(detail[..., j], detail[..., j + 1]) for j in range(detail.shape[-1] - 1)]
        inside += [_correlation(detail[..., i, :], detail[..., i + 1, :]) for i in range(detail.shape[-2] - 1)]
    return (sum(across) / len(across)) / (sum(inside) / len(inside))


def dream_detail(seamless: bool, seed: int, side: int, steps: int) -> torch.Tensor:
    cfg = compose_config("model=efficientnet_lite0", "target=block_12", "octaves=3", f"steps={steps}",
                         f"seed={seed}", "device=cpu", f"seamless={str(seamless).lower()}", "step_size=0.02")
    image = tileable(side)
    dreamer = prepare(cfg, side, side, image=image)
    with backend_settings(dreamer.backends):
        dreamed = run_dream(cfg, image, dreamer).image
    return dreamed - image


def main(side: int = 192, steps: int = 10, seeds: int = 4) -> dict:
    details = {kind: [dream_detail(kind == "seamless", seed, side, steps) for seed in range(seeds)]
               for kind in ("seamless", "plain")}
    result = {"machine": machine("cpu"), "torch": torch.__version__, "side": side,
              "steps_per_octave": steps, "octaves": 3, "seeds": seeds, "model": "efficientnet_lite0 block_12",
              "seam_ratio": {kind: seam_ratio(d) for kind, d in details.items()},
              "per_seed": {kind: [seam_ratio([one]) for one in d] for kind, d in details.items()}}
    for kind, ratio in result["seam_ratio"].items():
        print(f"{kind}: detail correlation across the seams = {ratio:.2f}x that between neighbours inside")
    return result


if __name__ == "__main__":
    out = main()
    if "--no-save" not in sys.argv:
        path = Path(__file__).parent / "results" / "seamless.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(out, indent=2) + "\n")
