#!/usr/bin/env bash
# Run ON THE GPU MACHINE (a bare one: it keeps nothing between sessions), from the repo root, with .whl/
# carried (benchmarks/device/fetch_wheels.sh made it here). Installs what the image lacks, checks that
# dreamrun dreams on CUDA, then measures; everything lands in $OUT (benchmarks/results/ when $OUT is unset).
#
#   STEPS="smoke readiness batched" bash benchmarks/device/gpu.sh     # the default: all three
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "gpu.sh: installing .whl/ failed: run benchmarks/device/fetch_wheels.sh here, carry .whl" >&2; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
log="$OUT/gpu_log.txt"
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import sys, torch, torchvision, hydra; print(sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'hydra', hydra.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$log"
for step in ${STEPS:-smoke readiness batched}; do
  echo "== $step" | tee -a "$log"
  case $step in
    smoke)  # one mission-style dream on the card, as a user runs it
      python3 -m dreamrun model.weights=null input.size=512 octaves=4 steps=10 device=cuda \
        hydra.run.dir=/tmp/gpu_smoke 2>&1 | tee -a "$log"
      cp /tmp/gpu_smoke/metrics.json "$OUT/gpu_smoke_metrics.json" 2>/dev/null ;;
    readiness)  # the CUDA hazards fixed on the CPU, measured on the card: ops, fp16, autotuning, clocks, memory
      python3 benchmarks/gpu_readiness.py --device cuda --json "$OUT/gpu_readiness_gpu.json" 2>&1 | tee -a "$log" ;;
    batched)  # issue #15's figure: the 16-job mission sweep, basic against batched
      python3 benchmarks/batched_sweep.py --gpu --json "$OUT/batched_sweep_gpu.json" 2>&1 | tee -a "$log" ;;
  esac
done
