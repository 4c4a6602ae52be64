#!/usr/bin/env bash
# On a machine with a GPU (no package index needed): build forgeml for sm_90, run the tests
# marked gpu, then check and time every registered CUDA kernel. Without a GPU: says so, exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no GPU on this machine; nothing to do"
  exit 0
fi
nvidia-smi -L
ARCH="${FORGEML_CUDA_ARCH:-90}"
OUTDIR="${OUT:-/tmp/forgeml-gpu}"
mkdir -p "$OUTDIR"
echo "== build (sm_$ARCH)"
t0=$SECONDS
python3 -m pip install --no-build-isolation --no-deps -q . \
  -Ccmake.define.FORGEML_CUDA=ON -Ccmake.define.FORGEML_TESTING=ON \
  -Ccmake.define.CMAKE_CUDA_ARCHITECTURES="$ARCH" -Cbuild-dir=build/gpu -v > "$OUTDIR/build.log" 2>&1 \
  || { tail -50 "$OUTDIR/build.log"; exit 1; }
grep -E "ptxas info|spill" "$OUTDIR/build.log" | sort -u > "$OUTDIR/ptxas.txt" || true
echo "built in $((SECONDS - t0)) s; ptxas report in $OUTDIR/ptxas.txt"
python3 -m forgeml info
echo "== tests marked gpu"
(cd /tmp && python3 -m pytest -q -m gpu -p no:cacheprovider "$OLDPWD/tests" 2>&1 | tail -30)
echo "== kernel check vs CuPy"
(cd /tmp && python3 -m forgeml gpucheck)
