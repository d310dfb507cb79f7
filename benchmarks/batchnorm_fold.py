"""What folding BatchNorm buys on EfficientNet-Lite0: one ascent step with and without the fold.

    python benchmarks/batchnorm_fold.py [--size 512] [--repeats 7]

Lite0's convolutions are Conv2dStaticSamePadding (pad, then F.conv2d), which torch.fx's own
`fuse` does not recognise, so before dreamrun's fold_batchnorm no BatchNorm was folded on Lite0.
"Unfolded" is dreamrun's network built with every rewrite but the fold: what Lite0 ran before.
Both run in one process, interleaved, at dreamrun's defaults (channels_last, precision=auto)
and in fp32; prints the median ms/step and writes benchmarks/results/batchnorm_fold.json.
"""
import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path
from unittest import mock

import torch
from torch import fx, nn

from dreamrun.config.compose import compose_config
from dreamrun.core import tiles
from dreamrun.jobs.dream import prepare
from dreamrun.nets import feature_net, rewrites

RESULTS = Path(__file__).parent / "results" / "batchnorm_fold.json"


def without_fold(module: fx.GraphModule) -> fx.GraphModule:
    own = copy.deepcopy(fx.GraphModule(module, module.graph))
    return rewrites.avg_pools_as_convolutions(own.eval())


def dreamers(overrides: list[str], size: int):
    cfg = compose_config(*overrides)
    folded = prepare(cfg, size, size)
    with mock.patch.object(feature_net, "speed_up", without_fold):
        unfolded = prepare(cfg, size, size)
    return {"folded": folded, "unfolded": unfolded}


def batchnorms(dreamer) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in dreamer.net.modules())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    rows = []
    for precision in ("auto", "fp32"):
        overrides = ["model=efficientnet_lite0", "target=block_12", "device=cpu", f"precision={precision}"]
        nets = dreamers(overrides, args.size)
        times = {name: [] for name in nets}
        for name, dreamer in nets.items():  # warm-up: oneDNN picks its kernels on the first calls
            for _ in range(2):
                tiles.gradient(image, dreamer)
        for _ in range(args.repeats):
            for name, dreamer in nets.items():
                start = time.perf_counter()
                tiles.gradient(image, dreamer)
                times[name].append(time.perf_counter() - start)
        row = {"precision": str(nets["folded"].net.autocast_dtype or torch.float32).removeprefix("torch."),
               "size": args.size, **{f"{name}_ms": 1000 * statistics.median(t) for name, t in times.items()},
               **{f"{name}_batchnorms": batchnorms(d) for name, d in nets.items()}}
        row["speed_up"] = row["unfolded_ms"] / row["folded_ms"]
        rows.append(row)
        print(f"{row['precision']:>8} {args.size} px: unfolded {row['unfolded_ms']:.1f} ms/step "
              f"({row['unfolded_batchnorms']} BatchNorms), folded {row['folded_ms']:.1f} ms/step "
              f"({row['folded_batchnorms']}): {row['speed_up']:.2f}x", flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
                                   "threads": torch.get_num_threads(), "repeats": args.repeats, "rows": rows},
                                  indent=2) + "\n")


if __name__ == "__main__":
    main()
