#!/usr/bin/env bash
# CI stage: AddressSanitizer + UndefinedBehaviorSanitizer run of the CPU kernels, then a bounded
# coverage-guided fuzz run (atheris) of the .keras loader and the CSR / node-array validators.
#   usage: .ci/stage_sanitizers.sh PYTHON    (the CI venv's python, with forgeml[test] installed)
# Takes about 4-6 minutes on 2 cores (FUZZ_SECONDS, default 30 per target, bounds the fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:?usage: $0 PYTHON}
OUT=build/ci/sanitize
FUZZ_SECONDS=${FUZZ_SECONDS:-30}  # per target
mkdir -p "$OUT"
t0=$SECONDS

# ---- 1. the kernels under ASan + UBSan: a standalone executable (no Python in the process)
CXX=${CXX:-g++}
FLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -pthread -Icsrc/include -Icsrc -Wno-unknown-pragmas)
SOURCES=(csrc/cpu/runtime.cpp csrc/cpu/thread_pool.cpp csrc/cpu/gemm/*.cpp csrc/cpu/conv/*.cpp csrc/cpu/dense_step/*.cpp
         csrc/cpu/tree/predict.cpp csrc/cpu/tree/compact*.cpp tests/sanitize/sanitize_main.cpp)
objs=()
pids=()
for src in "${SOURCES[@]}"; do
  obj="$OUT/$(echo "$src" | tr '/' '_').o"
  isa=()
  case "$src" in
    *_avx512.cpp) isa=(-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c) ;;
    *_avx2.cpp) isa=(-mavx2 -mfma -mf16c) ;;
  esac
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ]; then
    "$CXX" "${FLAGS[@]}" "${isa[@]}" -c "$src" -o "$obj" &
    pids+=($!)
    if [ ${#pids[@]} -ge "${JOBS:-2}" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  fi
  objs+=("$obj")
done
for p in "${pids[@]}"; do wait "$p"; done
"$CXX" "${FLAGS[@]}" "${objs[@]}" -o "$OUT/forgeml_sanitize"
echo "built $OUT/forgeml_sanitize in $((SECONDS - t0)) s"
# forgeml's thread pool lives until exit: not a leak worth failing on
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  OMP_NUM_THREADS=2 "$OUT/forgeml_sanitize"
echo "--- sanitizer run: $((SECONDS - t0)) s"

# ---- 2. coverage-guided fuzzing with atheris, in its own venv that sees the CI venv's packages
FUZZ_VENV="$OUT/fuzz-venv"
if ! "$FUZZ_VENV/bin/python" -c "import atheris" 2>/dev/null; then
  rm -rf "$FUZZ_VENV"
  "$PY" -m venv "$FUZZ_VENV"
  "$FUZZ_VENV/bin/pip" install -q atheris
fi
SITE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
PLAT=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")
for target in fuzz_keras_loader fuzz_validators; do
  mkdir -p "$OUT/corpus_$target"
  echo "fuzzing $target for ${FUZZ_SECONDS} s"
  PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$SITE:$PLAT" OMP_NUM_THREADS=1 "$FUZZ_VENV/bin/python" "tests/fuzz/$target.py" \
    -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=4096 -artifact_prefix="$OUT/crash_${target}_" \
    "$OUT/corpus_$target" 2>&1 | grep -v "^INFO: Instrumenting" | tail -40
done
echo "--- sanitizers + fuzzing: $((SECONDS - t0)) s"
