"""Does bf16 hurt the dream? The same dream in fp32 and bf16 on the pretrained EfficientNet-Lite0.

    python benchmarks/bf16_quality.py [overrides...]       # writes benchmarks/bf16_vs_fp32.jpg

Prints both objective gains and their ratio (the goal: within 5%), and saves the two dreams
side by side.
"""
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from dreamrun.cli import config_dir
from dreamrun.images import to_pil
from dreamrun.job import load_input, run_dream

OUT = Path(__file__).parent / "bf16_vs_fp32.jpg"


def main() -> None:
    overrides = ["model=efficientnet_lite0", "target=block_12", "octaves=3", "device=cpu", *sys.argv[1:]]
    dreams, gains = {}, {}
    for precision in ("fp32", "bf16"):
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name="config", overrides=[*overrides, f"precision={precision}"])
        result = run_dream(cfg, load_input(cfg, torch.Generator().manual_seed(cfg.seed)))
        dreams[precision], gains[precision] = to_pil(result.image), result.metrics["gain"]
        print(f"{precision}: gain {gains[precision]:.3f}x in {result.metrics['seconds']:.2f} s")
    ratio = gains["bf16"] / gains["fp32"]
    print(f"bf16 / fp32 gain: {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.05 else 'NOT within'} 5%)")
    width, height = dreams["fp32"].size
    sheet = Image.new("RGB", (2 * width + 8, height), "white")
    sheet.paste(dreams["fp32"], (0, 0))
    sheet.paste(dreams["bf16"], (width + 8, 0))
    sheet.save(OUT, quality=88)
    print(f"side by side (fp32 | bf16): {OUT}")


if __name__ == "__main__":
    main()
