#!/usr/bin/env bash
# The real-GPU check, for a lent machine (Python 3.12, CUDA 13, CuPy; no internet), in under 8 min:
#   1. build forgeml (_cpu, _cuda for this GPU's own architecture only, _emu) with CMake + ninja
#      into build/gpu, staged as a package under build/gpu/pkg (the work tree is left alone);
#   2. run the tests marked gpu (the real-device half of the GPU-path tests);
#   3. check and time every CUDA kernel against its CuPy / cuBLAS / cuDNN (PyTorch) peer;
#   4. with FORGEML_GPU_CHECK_SANITIZE_S > 0, run the gpu tests under compute-sanitizer
#      (memcheck, then racecheck on the shared-memory kernels) within that many seconds;
#   5. write one report: $REPORT_DIR/gpu_check.json and gpu_check.txt (REPORT_DIR defaults to
#      build/gpu/report); where $OUT is set, gpu_check.txt, gpu_check.json and a tarball of the
#      whole report are copied there (the device tool brings back at most 8 files).
# Without a GPU it still builds (sm_90 unless FORGEML_CUDA_ARCH says otherwise), collects the
# gpu tests, and says clearly that the device steps were skipped (a dry run, exit 0).
# Usage: bench/gpu_check.sh [python]      (default python3)
# Settings: FORGEML_CUDA_ARCH (default: the GPU's own), FORGEML_GPU_CHECK_JOBS (default nproc),
# FORGEML_GPU_CHECK_BUILD_S (build time limit, default 300), FORGEML_GPU_CHECK_TESTS_S and
# FORGEML_GPU_CHECK_KERNELS_S (default 240 each), FORGEML_GPU_CHECK_SANITIZE_S (default 0: skipped);
# for a short re-check: FORGEML_GPU_CHECK_TESTS (test paths, default tests/), FORGEML_GPU_CHECK_FAMILIES
# (gpucheck --families, default all), FORGEML_GPU_CHECK_EMU=0 (skip building _emu and the TSan executable;
# the emulator test modules then skip whole, device variants included), FORGEML_GPU_CHECK_SANITIZE_TESTS
# (test paths for both sanitizer tools).
# The whole build (sm_90 only) takes ~280 s on 2 cores and took ~70-100 s on the H200's 16 cores
# (2026-12-04); the whole check with a 100 s sanitizer stage took 305 s there.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="${1:-python3}"
JOBS="${FORGEML_GPU_CHECK_JOBS:-$(nproc)}"
BUILD_S="${FORGEML_GPU_CHECK_BUILD_S:-300}"
TESTS_S="${FORGEML_GPU_CHECK_TESTS_S:-240}"
KERNELS_S="${FORGEML_GPU_CHECK_KERNELS_S:-240}"
SANITIZE_S="${FORGEML_GPU_CHECK_SANITIZE_S:-0}"
TESTS="${FORGEML_GPU_CHECK_TESTS:-tests}"
FAMILIES="${FORGEML_GPU_CHECK_FAMILIES:+--families $FORGEML_GPU_CHECK_FAMILIES}"
BUILD="$ROOT/build/gpu"
REPORT_DIR="${REPORT_DIR:-$BUILD/report}"
mkdir -p "$BUILD" "$REPORT_DIR"
T0=$SECONDS
stage() { echo "== [$((SECONDS - T0)) s] $*"; }

# ---- the GPU and its architecture
GPU=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  GPU=$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader | head -1)
  CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
  ARCH="${FORGEML_CUDA_ARCH:-$CAP}"
  stage "GPU: $GPU -> building for sm_$ARCH"
else
  ARCH="${FORGEML_CUDA_ARCH:-90}"
  stage "no GPU here (no working nvidia-smi): DRY RUN, building for sm_$ARCH, device steps skipped"
fi

# ---- what the Python has (nothing is downloaded; a missing tool is reported, not fetched)
"$PY" - <<'EOF' > "$REPORT_DIR/env.txt" 2>&1
import importlib, sys
print("python", sys.version.split()[0])
for name in ("numpy", "scipy", "sklearn", "pytest", "pybind11", "cupy", "torch"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as exc:
        print(name, "MISSING", type(exc).__name__)
EOF
cat "$REPORT_DIR/env.txt"
if grep -Eq "^(numpy|pybind11|pytest|sklearn) MISSING" "$REPORT_DIR/env.txt"; then
  echo "gpu_check: numpy, pybind11, pytest and scikit-learn are needed (pip install them from the local mirror)"
fi

# ---- 1. build: one architecture, all cores, the ptxas report kept. _cpu and _cuda are needed;
# _emu (and the TSan executable, which needs libtsan) are not, so a failure there is only reported.
stage "build (cmake + ninja, -j$JOBS)"
BUILD_OK=1
{
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORGEML_CUDA=ON -DFORGEML_TESTING=ON \
        -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DPython_EXECUTABLE="$(command -v "$PY")" \
        -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" &&
  timeout "$BUILD_S" cmake --build "$BUILD" -j "$JOBS" --target _cpu _cuda
} > "$REPORT_DIR/build.log" 2>&1 || BUILD_OK=0
[ "$BUILD_OK" = 1 ] && [ "${FORGEML_GPU_CHECK_EMU:-1}" != 0 ] && { timeout "$BUILD_S" cmake --build "$BUILD" -j "$JOBS" >> "$REPORT_DIR/build.log" 2>&1 ||
  echo "gpu_check: the test-only targets (_emu, forgeml_tsan) failed to build; see build.log"; }
grep -E "ptxas info|spill" "$REPORT_DIR/build.log" | sort -u > "$REPORT_DIR/ptxas.txt" || true
if [ "$BUILD_OK" = 1 ]; then
  rm -rf "$BUILD/pkg" && mkdir -p "$BUILD/pkg"
  cp -r python/forgeml "$BUILD/pkg/forgeml"
  rm -f "$BUILD"/pkg/forgeml/*.so
  cp "$BUILD"/_cpu*.so "$BUILD"/_cuda*.so "$BUILD/pkg/forgeml/" || BUILD_OK=0
  cp "$BUILD"/_emu*.so "$BUILD/pkg/forgeml/" 2>/dev/null || true
fi
stage "build $([ "$BUILD_OK" = 1 ] && echo ok || echo FAILED) (log: $REPORT_DIR/build.log)"
[ "$BUILD_OK" = 1 ] || tail -40 "$REPORT_DIR/build.log"
export PYTHONPATH="$BUILD/pkg"
[ "$BUILD_OK" = 1 ] && (cd /tmp && "$PY" -m forgeml info) | tee "$REPORT_DIR/info.txt"

# ---- 2. the tests marked gpu (3. below times the kernels)
TESTS_RC=-1
if [ "$BUILD_OK" = 1 ]; then
  if [ -n "$GPU" ]; then
    stage "pytest -m gpu"
    (cd /tmp && timeout "$TESTS_S" "$PY" -m pytest -q -m gpu -p no:cacheprovider --continue-on-collection-errors \
       -o faulthandler_timeout=60 --durations=15 --junitxml="$REPORT_DIR/gpu_tests.xml" \
       $(for t in $TESTS; do echo "$ROOT/$t"; done) > "$REPORT_DIR/gpu_tests.txt" 2>&1)
    TESTS_RC=$?
    tail -25 "$REPORT_DIR/gpu_tests.txt"
  else
    stage "pytest -m gpu --collect-only (dry run: no GPU to run them on)"
    (cd /tmp && "$PY" -m pytest -q -m gpu -p no:cacheprovider --collect-only "$ROOT/tests" \
       > "$REPORT_DIR/gpu_tests.txt" 2>&1)
    tail -3 "$REPORT_DIR/gpu_tests.txt"
  fi
fi

# ---- 3. every CUDA kernel against its peer
CHECK_RC=-1
if [ "$BUILD_OK" = 1 ]; then
  stage "kernel check and timing vs CuPy / cuBLAS / cuDNN"
  (cd /tmp && timeout "$KERNELS_S" "$PY" -m forgeml gpucheck $FAMILIES --json "$REPORT_DIR/kernels.json" 2>&1 | tee "$REPORT_DIR/kernels.txt")
  CHECK_RC=${PIPESTATUS[0]}
fi

# ---- 4. compute-sanitizer over the gpu tests: memcheck on all, racecheck on the shared-memory kernels
SAN_RC=-1
if [ "$BUILD_OK" = 1 ] && [ -n "$GPU" ] && [ "$SANITIZE_S" -gt 0 ] && command -v compute-sanitizer >/dev/null; then
  for tool in memcheck racecheck; do
    files="$ROOT/tests"
    [ "$tool" = racecheck ] && files="$ROOT/tests/test_gemm.py $ROOT/tests/test_tree_cuda_emu.py $ROOT/tests/test_conv_cuda_emu.py"
    [ -n "${FORGEML_GPU_CHECK_SANITIZE_TESTS:-}" ] && files=$(for t in $FORGEML_GPU_CHECK_SANITIZE_TESTS; do echo "$ROOT/$t"; done)
    stage "compute-sanitizer --tool $tool (within $((SANITIZE_S / 2)) s)"
    (cd /tmp && timeout "$((SANITIZE_S / 2))" compute-sanitizer --tool "$tool" --error-exitcode 99 \
       --target-processes all "$PY" -m pytest -q -x -m gpu -p no:cacheprovider --continue-on-collection-errors \
       $files > "$REPORT_DIR/sanitize_$tool.txt" 2>&1)
    SAN_RC=$?
    echo "$tool rc=$SAN_RC"; grep -E "ERROR SUMMARY|passed|failed|Invalid|Race" "$REPORT_DIR/sanitize_$tool.txt" | head -8
  done
fi

# ---- 5. one report
stage "report"
"$PY" - "$REPORT_DIR" "$GPU" "$ARCH" "$BUILD_OK" "$TESTS_RC" "$CHECK_RC" "$((SECONDS - T0))" <<'EOF'
import json, os, sys, xml.etree.ElementTree as ET
out, gpu, arch, build_ok, tests_rc, check_rc, secs = sys.argv[1:]
rep = {"gpu": gpu or None, "dry_run": not gpu, "arch": arch, "build_ok": build_ok == "1",
       "tests_rc": int(tests_rc), "kernels_rc": int(check_rc), "seconds": int(secs)}
junit = os.path.join(out, "gpu_tests.xml")
if os.path.exists(junit):
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    rep["tests"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    rep["failed_tests"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                           if c.find("failure") is not None or c.find("error") is not None]
kj = os.path.join(out, "kernels.json")
rep["kernels"] = json.load(open(kj)) if os.path.exists(kj) else None
json.dump(rep, open(os.path.join(out, "gpu_check.json"), "w"), indent=1)
lines = [f"forgeml gpu_check: {'DRY RUN (no GPU)' if not gpu else gpu}, sm_{arch}, {secs} s",
         f"build: {'ok' if build_ok == '1' else 'FAILED'}"]
if "tests" in rep:
    t = rep["tests"]
    lines.append(f"tests -m gpu: {t['tests']} run, {t['failures'] + t['errors']} failed, {t['skipped']} skipped")
    lines += [f"  FAILED {n}" for n in rep["failed_tests"]]
elif not gpu:
    lines.append("tests -m gpu: collected only (see gpu_tests.txt)")
k = rep["kernels"]
if k and k.get("rows"):
    lines.append(f"{'family':8s} {'case':32s} {'ok':3s} {'forgeml ms':>10s} {'peer ms':>9s} {'peer/fml':>8s}  peer")
    for r in k["rows"]:
        lines.append(f"{r['family']:8s} {r['case'][:32]:32s} {'yes' if r['ok'] else 'NO':3s} "
                     f"{r['forgeml_s'] * 1e3:10.3f} {r['peer_s'] * 1e3:9.3f} {r['ratio'] or 0:8.2f}  {r['peer']}")
    for fam, err in k.get("errors", {}).items():
        lines.append(f"  family {fam} raised: {err.strip().splitlines()[-1]}")
elif k:
    lines.append(f"kernels: none timed ({k.get('reason')})")
text = "\n".join(lines)
open(os.path.join(out, "gpu_check.txt"), "w").write(text + "\n")
print(text)
EOF
echo "report: $REPORT_DIR/gpu_check.json, $REPORT_DIR/gpu_check.txt"
if [ -n "${OUT:-}" ]; then
  cp "$REPORT_DIR/gpu_check.txt" "$REPORT_DIR/gpu_check.json" "$OUT/" 2>/dev/null
  tar czf "$OUT/gpu_report.tgz" -C "$REPORT_DIR" . && echo "report copied to \$OUT (gpu_report.tgz)"
fi
[ "$BUILD_OK" = 1 ] || exit 1
[ -z "$GPU" ] && exit 0
[ "$TESTS_RC" = 0 ] && [ "$CHECK_RC" = 0 ]
