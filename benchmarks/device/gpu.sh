#!/usr/bin/env bash
# Issue #32's one call: run ON THE GPU MACHINE (a bare one: it keeps nothing between sessions), from the repo root,
# with .whl/ carried (benchmarks/device/fetch_wheels.sh made it here). Installs what the image lacks, then each
# step in turn, everything written under $OUT as it goes (a run cut short still brings back what it did), and
# last gpu.json from whatever ran (benchmarks/device/gpu_json.py).
#
#   bash benchmarks/device/gpu.sh                          # on the card: every step
#   STEPS="tests mission" bash benchmarks/device/gpu.sh     # some of them
#   STAND_IN=1 bash benchmarks/device/gpu.sh               # here, on the CPU at tiny sizes, with this checkout's
#                                                          # Python: checks the script end to end, measures nothing
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
if [ "${STAND_IN:-0}" = 1 ]; then
  OUT=${OUT:-/tmp/gpu_stand_in}
  PY=${PY:-python}
  export DREAMRUN_GPU_STAND_IN=1  # the gpu-marked tests run on the CPU (tests/test_gpu.py)
  DEVICE=cpu
  MISSION=(model.weights=null target=mixed_6 octaves=2 steps=2 input.size=256)
  STEP_SPEED=(--sizes 96 --layers Mixed_6e --repeats 1)
  SEED_SIDE=320
  BATCHED=(--smoke)
  READINESS=(--stand-in)
else
  OUT=${OUT:-benchmarks/results}
  PY=python3
  DEVICE=cuda
  MISSION=(model.weights=null target=mixed_6 octaves=4)
  STEP_SPEED=(--sizes 512,2048 --layers Mixed_6e --repeats 5)
  SEED_SIDE=512
  BATCHED=(--gpu)
  READINESS=()
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu.sh: installing .whl/ failed: run benchmarks/device/fetch_wheels.sh here, carry .whl" >&2; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
fi
mkdir -p "$OUT"
log="$OUT/gpu_log.txt"
{
  date -u
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import json, sys, torch, torchvision, hydra
device = torch.cuda.get_device_name(0) if '$DEVICE' == 'cuda' and torch.cuda.is_available() else 'cpu'
print(sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'hydra', hydra.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), device)
json.dump({'device': device, 'torch': torch.__version__, 'cuda': torch.version.cuda}, open('$OUT/env.json', 'w'))"
} 2>&1 | tee "$log"
# the tests first (done when they pass on the card), each later step bounded, readiness last: it may be cut
for step in ${STEPS:-tests mission steps seed batched readiness}; do
  echo "== $step $(date -u +%T)" | tee -a "$log"
  case $step in
    tests)  # the gpu-marked tests, with pytest's own report; SIGINT at the limit still writes it. The image's
            # pytest plugins stay unloaded; without the card (no CUDA) the tests fail instead of skipping
      PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 DREAMRUN_REQUIRE_GPU=$([ "$DEVICE" = cuda ] && echo 1 || echo 0) \
        timeout -s INT 240 $PY -m pytest -m gpu -q -p no:cacheprovider --junitxml="$OUT/gpu_tests.xml" \
        tests/test_gpu.py 2>&1 | tee -a "$log" ;;
    mission)  # the mission dream as a user runs it, time-boxed, every thread's stack kept if it stalls
      $PY benchmarks/device/mission.py "$OUT" --limit-s 90 --stacks-every-s 20 -- "${MISSION[@]}" "device=$DEVICE" \
        2>&1 | tee -a "$log" ;;
    steps)  # one step at Mixed_6e, naive vs dreamrun, and the share of the card's bf16 peak
      $PY benchmarks/step_speed.py --device "$DEVICE" "${STEP_SPEED[@]}" --json "$OUT/step_speed.json" 2>&1 | tee -a "$log" ;;
    seed)  # the seed's own code against dreamrun, the same job, dreaming and whole process
      $PY benchmarks/device/seed_vs_dreamrun.py "$OUT" --device "$DEVICE" --side "$SEED_SIDE" 2>&1 | tee -a "$log" ;;
    batched)  # the 16-job mission sweep, basic against batched
      $PY benchmarks/batched_sweep.py "${BATCHED[@]}" --json "$OUT/batched_sweep_gpu.json" 2>&1 | tee -a "$log" ;;
    readiness)  # the CUDA hazards fixed on the CPU, measured on the card: ops, fp16, autotuning, clocks, memory
      $PY benchmarks/gpu_readiness.py --device "$DEVICE" "${READINESS[@]}" --json "$OUT/gpu_readiness_gpu.json" 2>&1 \
        | tee -a "$log" ;;
  esac
  $PY benchmarks/device/gpu_json.py "$OUT" > /dev/null  # after every step: a cut-short run keeps its gpu.json
done
$PY benchmarks/device/gpu_json.py "$OUT" | tee -a "$log"
