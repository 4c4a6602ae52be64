#!/usr/bin/env bash
# The real-GPU check, for a lent machine (Python 3.12, CUDA 13, CuPy; no internet), in under 8 min:
#   1. build forgeml (_cpu, _cuda for this GPU's own architecture only, _emu) with CMake + ninja
#      into build/gpu, staged as a package under build/gpu/pkg (the work tree is left alone);
#   2. run the tests marked gpu (the real-device half of the GPU-path tests);
#   3. check and time every CUDA kernel against its CuPy / cuBLAS / cuDNN (PyTorch) peer;
#   4. write one report: $REPORT_DIR/gpu_check.json and gpu_check.txt (REPORT_DIR defaults to
#      $OUT when set, else build/gpu/report).
# Without a GPU it still builds (sm_90 unless FORGEML_CUDA_ARCH says otherwise), collects the
# gpu tests, and says clearly that the device steps were skipped (a dry run, exit 0).
# Usage: bench/gpu_check.sh [python]      (default python3)
# Settings: FORGEML_CUDA_ARCH (default: the GPU's own), FORGEML_GPU_CHECK_JOBS (default nproc),
# FORGEML_GPU_CHECK_BUILD_S (build time limit, default 300: a 16-core machine needs about 2 min).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="${1:-python3}"
JOBS="${FORGEML_GPU_CHECK_JOBS:-$(nproc)}"
BUILD_S="${FORGEML_GPU_CHECK_BUILD_S:-300}"
BUILD="$ROOT/build/gpu"
REPORT_DIR="${REPORT_DIR:-${OUT:-$BUILD/report}}"
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

# ---- 1. build: one architecture, all cores, the ptxas report kept
stage "build (cmake + ninja, -j$JOBS)"
BUILD_OK=1
{
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORGEML_CUDA=ON -DFORGEML_TESTING=ON \
        -DCMAKE_CUDA_ARCHITECTURES="$ARCH" -DPython_EXECUTABLE="$(command -v "$PY")" \
        -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" &&
  timeout "$BUILD_S" cmake --build "$BUILD" -j "$JOBS"
} > "$REPORT_DIR/build.log" 2>&1 || BUILD_OK=0
grep -E "ptxas info|spill" "$REPORT_DIR/build.log" | sort -u > "$REPORT_DIR/ptxas.txt" || true
if [ "$BUILD_OK" = 1 ]; then
  rm -rf "$BUILD/pkg" && mkdir -p "$BUILD/pkg"
  cp -r python/forgeml "$BUILD/pkg/forgeml"
  rm -f "$BUILD"/pkg/forgeml/*.so
  cp "$BUILD"/_cpu*.so "$BUILD"/_cuda*.so "$BUILD"/_emu*.so "$BUILD/pkg/forgeml/" || BUILD_OK=0
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
    (cd /tmp && timeout 240 "$PY" -m pytest -q -m gpu -p no:cacheprovider --junitxml="$REPORT_DIR/gpu_tests.xml" \
       "$ROOT/tests" > "$REPORT_DIR/gpu_tests.txt" 2>&1)
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
  (cd /tmp && timeout 240 "$PY" -m forgeml gpucheck --json "$REPORT_DIR/kernels.json" 2>&1 | tee "$REPORT_DIR/kernels.txt")
  CHECK_RC=${PIPESTATUS[0]}
fi

# ---- 4. one report
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
[ "$BUILD_OK" = 1 ] || exit 1
[ -z "$GPU" ] && exit 0
[ "$TESTS_RC" = 0 ] && [ "$CHECK_RC" = 0 ]
