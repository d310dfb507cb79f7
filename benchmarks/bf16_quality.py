"""Does bf16 hurt the dream? The same dreams in fp32 and bf16 on the pretrained EfficientNet-Lite0.

    python benchmarks/bf16_quality.py [--sizes 256 512] [--seeds 4] [overrides...]

For each size, dreams the sample photo (block_12, 3 octaves x 10 steps) with seeds 0..N-1 in
fp32, in bf16, and in fp32 with channels_last=false: the same arithmetic in another memory
layout, whose only difference from fp32 is the order of rounding. That control measures how far
one dream's gain moves under rounding alone: a 30-step jittered ascent is chaotic, so any
perturbation (a memory layout, a CPU's kernels, bf16) sends it down a different path and moves a
single dream's gain by several percent either way. bf16 is therefore judged on the mean gain over
seeds: the goal is mean bf16 gain >= 0.95x the mean fp32 gain. Writes
benchmarks/results/bf16_quality.json and benchmarks/bf16_vs_fp32.jpg (the first seed at the
largest size, fp32 left, bf16 right).
"""
import argparse
import json
import platform
from pathlib import Path

import torch
from PIL import Image

from dreamrun.config.compose import compose_config
from dreamrun.jobs.dream import prepare, run_dream
from dreamrun.jobs.skeleton import load_input
from dreamrun.outputs.images import to_pil

HERE = Path(__file__).parent
SIDE_BY_SIDE = HERE / "bf16_vs_fp32.jpg"
RESULTS = HERE / "results" / "bf16_quality.json"
VARIANTS = {"fp32": ["precision=fp32"], "bf16": ["precision=bf16"],
            "fp32 NCHW": ["precision=fp32", "channels_last=false"]}


def gains(overrides: list[str], seeds: int) -> tuple[list[float], Image.Image]:
    """The objective gain of each seed's dream, and the first seed's dream."""
    cfg = compose_config(*overrides)
    image = load_input(cfg, torch.Generator().manual_seed(0))
    dreamer = prepare(cfg, *image.shape[-2:])
    results = []
    for seed in range(seeds):
        cfg.seed = seed  # the jitter shifts
        results.append(run_dream(cfg, image, dreamer))
    return [r.metrics["gain"] for r in results], to_pil(results[0].image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("overrides", nargs="*", help="extra dreamrun overrides")
    args = parser.parse_args()
    base = ["model=efficientnet_lite0", "target=block_12", "octaves=3", "device=cpu", *args.overrides]
    rows = []
    for size in args.sizes:
        row = {"size": size, "gains": {}}
        for name, variant in VARIANTS.items():
            row["gains"][name], dream = gains([*base, f"input.size={size}", *variant], args.seeds)
            if size == max(args.sizes) and name in ("fp32", "bf16"):
                row.setdefault("dreams", {})[name] = dream
        mean = {name: sum(values) / len(values) for name, values in row["gains"].items()}
        row["mean_gain"] = mean
        row["bf16_over_fp32"] = mean["bf16"] / mean["fp32"]
        row["nchw_over_nhwc_fp32"] = mean["fp32 NCHW"] / mean["fp32"]
        row["single_seed_ratios"] = {
            "bf16/fp32": [b / f for b, f in zip(row["gains"]["bf16"], row["gains"]["fp32"])],
            "fp32 NCHW/fp32": [n / f for n, f in zip(row["gains"]["fp32 NCHW"], row["gains"]["fp32"])]}
        rows.append(row)
        print(f"{size} px, mean gain over {args.seeds} seeds: " +
              ", ".join(f"{name} {value:.3f}x" for name, value in mean.items()), flush=True)
        print(f"  bf16/fp32 {row['bf16_over_fp32']:.3f} (goal >= 0.95); fp32 NCHW/NHWC "
              f"{row['nchw_over_nhwc_fp32']:.3f} (rounding alone)", flush=True)
        for name, ratios in row["single_seed_ratios"].items():
            print(f"  single seeds {name}: " + " ".join(f"{r:.3f}" for r in ratios), flush=True)
    dreams = next(row.pop("dreams") for row in rows if "dreams" in row)
    width, height = dreams["fp32"].size
    sheet = Image.new("RGB", (2 * width + 8, height), "white")
    sheet.paste(dreams["fp32"], (0, 0))
    sheet.paste(dreams["bf16"], (width + 8, 0))
    sheet.save(SIDE_BY_SIDE, quality=88)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                                   "threads": torch.get_num_threads(), "seeds": args.seeds, "overrides": base,
                                   "rows": rows}, indent=2) + "\n")
    print(f"side by side (fp32 | bf16): {SIDE_BY_SIDE}; results: {RESULTS}", flush=True)


if __name__ == "__main__":
    main()
