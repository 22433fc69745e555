#!/usr/bin/env bash
# One pass of the GPU checks on a machine with CuPy and a CUDA GPU, each part time-capped so that
# the whole pass fits a short lease: the tests marked `gpu` (the conformance suite's CuPy cases
# among them), the GPU benchmarks (JSON for `henn bench report`), the whole test suite on the CuPy
# backend, where the time of a large encryption and decryption goes (gpu_profile.py), and the
# XOR and sentiment demos on both backends (gpu_models.py).
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh
#   GPU_CHECK_STEPS="gpu-tests gpu-models" bash benchmarks/gpu_check.sh   # some steps only
#
# Logs and the benchmark JSON go to $OUT (default: ./gpu-check). The project must be importable
# (installed, or on PYTHONPATH with its entry points, e.g. from a wheel). Each test of the suite on
# CuPy may take CUPY_SUITE_TEST_SECONDS (default 240: the full XOR demo takes about two minutes on
# a GPU, where each of its tiny operations pays a kernel launch), and the whole suite
# CUPY_SUITE_SECONDS (default 300: on an H200 with 14 workers it took 102 s besides that test).
set -u -o pipefail
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PYTHONUNBUFFERED=1 HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total,utilization.gpu,clocks.sm \
    --format=csv || true
  python3 -c 'import sys, numpy, cupy; print(sys.version.split()[0], "numpy", numpy.__version__, "cupy", cupy.__version__, "CUDA runtime", cupy.cuda.runtime.runtimeGetVersion())'
  uptime
} 2>&1 | tee "$OUT/machine.txt"

step() {  # step NAME SECONDS COMMAND...: run one part under a time cap and log it
  local name="$1" seconds="$2"
  shift 2
  echo "== $name (at most ${seconds}s) ==" | tee -a "$OUT/summary.txt"
  local start=$SECONDS
  timeout -s INT -k 15 "$seconds" "$@" 2>&1 | tee "$OUT/$name.log" | tail -n 25
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - start))s ==" | tee -a "$OUT/summary.txt"
  grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/$name.log" | tail -n 40 >>"$OUT/summary.txt"
}

want() {  # want STEP: whether GPU_CHECK_STEPS (default: all) names it
  [ -z "${GPU_CHECK_STEPS:-}" ] || [[ " $GPU_CHECK_STEPS " == *" $1 "* ]]
}

want gpu-tests && step gpu-tests "${GPU_TESTS_SECONDS:-90}" \
  python3 -m pytest -p no:cacheprovider tests -m gpu -ra -q --timeout 60
want gpu-bench && step gpu-bench "${GPU_BENCH_SECONDS:-240}" \
  bash -c "cd benchmarks && python3 -m pytest -p no:cacheprovider test_bench_gpu.py -q \
    --benchmark-only --benchmark-json='$(realpath "$OUT")/gpu-bench.json' --timeout 90"
want cupy-suite && step cupy-suite "${CUPY_SUITE_SECONDS:-300}" \
  env HENN_BACKEND=cupy python3 -m pytest -p no:cacheprovider tests -q -ra --maxfail 40 \
  --timeout "${CUPY_SUITE_TEST_SECONDS:-240}" \
  -n "${CUPY_SUITE_WORKERS:-8}" -m "not data"
want gpu-profile && step gpu-profile "${GPU_PROFILE_SECONDS:-120}" \
  env PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" python3 benchmarks/gpu_profile.py
want gpu-models && step gpu-models "${GPU_MODELS_SECONDS:-200}" python3 benchmarks/gpu_models.py
cat "$OUT/summary.txt"
