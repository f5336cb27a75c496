#!/usr/bin/env bash
# The prepared device check of unlearn_torch: run ONCE on a machine with a CUDA device, from the
# repository root. Nothing here has been run yet unless BENCHMARKS.md records its outputs.
#
#   OUT=/some/folder PYTHON=python3 bash scripts/gpu_check.sh
#
# Writes under $OUT (default ./gpu_check_out; at most 8 files, each a few kB):
#   env.txt            python, torch, CUDA, device name, nvidia-smi
#   gpu_tests.txt      pytest -m gpu tests/torch/test_gpu.py (noise on the device, probe, no host
#                      sync inside a step, rotated blocks on the device, replay bit for bit)
#   gpu_tests.xml      the same as JUnit XML
#   bench_step.txt     benchmarks/bench_torch_step.py --device cuda (noisy step vs plain SGD
#                      step; block-wise rows vs rotations); CUDA synchronised around each
#                      sample of 16 steps, no host sync inside a step
#   bench_audit.txt    benchmarks/bench_torch_audit.py --device cuda (audit throughput, runs/s;
#                      the Opacus baseline is left out: Opacus is not on the device image)
#   bench_audit.json   the audit rows
#   summary.txt        the exit status of each part and its wall time
# Budget: at most 500 s in all (each part has its own timeout; give the device command a 560 s
# limit). Every part runs even when an earlier one failed; the script exits non-zero when any did.
set -u
OUT=${OUT:-gpu_check_out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
part() {  # part NAME TIMEOUT_S OUTFILE COMMAND...
    local name=$1 limit=$2 file=$3
    shift 3
    local t0=$SECONDS
    timeout "$limit" "$@" >"$OUT/$file" 2>&1
    local rc=$?
    echo "$name: rc=$rc wall=$((SECONDS - t0))s" | tee -a "$OUT/summary.txt"
    [ "$rc" -eq 0 ] || status=1
}
{
    "$PY" -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available()); print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'
    nvidia-smi 2>&1 | head -20
} >"$OUT/env.txt" 2>&1
part gpu_tests 180 gpu_tests.txt "$PY" -m pytest -q -m gpu -p no:cacheprovider \
    --junitxml="$OUT/gpu_tests.xml" tests/torch/test_gpu.py
part bench_step 200 bench_step.txt "$PY" benchmarks/bench_torch_step.py --device cuda \
    --reps 40 --cnn-reps 20
part bench_audit 120 bench_audit.txt "$PY" benchmarks/bench_torch_audit.py --device cuda \
    --scale 0.25 --json "$OUT/bench_audit.json" --methods output_perturbation \
    gradient_clipping model_clipping blockwise_gradient_clipping langevin
exit $status
