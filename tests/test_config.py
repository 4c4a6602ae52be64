"""Run-time picture: show_config, `python -m forgeml info`, threads, ISA selection, Ctrl-C."""
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest

import forgeml
from forgeml import _cpu


def run_py(code, **env):
    e = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, timeout=120)


def test_show_config_lists_everything(capsys):
    forgeml.show_config()
    out = capsys.readouterr().out
    assert f"forgeml {forgeml.__version__}" in out
    for field in ("compiler:", "SIMD detected:", "SIMD used:", "threads:", "CUDA compiled:", "GPU usable:"):
        assert field in out
    assert _cpu.detected_isa() in out


@pytest.mark.parametrize("user_env, shown", [
    ({}, "idle workers spin 50 us, then sleep"),
    ({"FORGEML_SPIN_US": "7"}, "idle workers spin 7 us, then sleep"),
])
def test_show_config_names_the_pool_spin(user_env, shown):
    env = {k: v for k, v in os.environ.items() if k != "FORGEML_SPIN_US"}
    out = subprocess.run([sys.executable, "-c", "import forgeml; forgeml.show_config()"], capture_output=True,
                         text=True, timeout=120, check=True, env={**env, **user_env}).stdout
    assert shown in out


def test_info_command_matches_this_machine():
    out = subprocess.run([sys.executable, "-m", "forgeml", "info"], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "SIMD detected:  " + _cpu.detected_isa() in out
    if forgeml.cuda.is_built():
        assert "CUDA compiled:  yes" in out
    if not forgeml.cuda.is_available():
        assert "GPU usable:     no (" in out


def test_isa_detection_on_x86_64():
    if os.uname().machine != "x86_64":
        pytest.skip("x86-64 only")
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    if " avx512f " in flags and " avx512bw " in flags and " avx512vl " in flags and " avx512dq " in flags:
        assert _cpu.detected_isa() == "avx512"
    elif " avx2 " in flags and " fma " in flags:
        assert _cpu.detected_isa() == "avx2"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc on this machine")
def test_cuda_was_built_where_nvcc_exists():
    assert forgeml.cuda.is_built(), "nvcc is present but forgeml._cuda was not built"
    assert forgeml.cuda.archs()


def test_cuda_is_available_is_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        available = forgeml.cuda.is_available()
    assert isinstance(available, bool)
    assert isinstance(forgeml.cuda.status(), str) and forgeml.cuda.status()


def test_import_never_needs_a_gpu():
    r = run_py("import forgeml, forgeml.ops; print(forgeml.cuda.is_available())", CUDA_VISIBLE_DEVICES="")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
    assert r.stderr == ""


def test_set_num_threads(restore_threads):
    forgeml.set_num_threads(1)
    assert forgeml.get_num_threads() == 1
    forgeml.set_num_threads(3)
    assert forgeml.get_num_threads() == 3
    with pytest.raises(ValueError, match="n: expected a thread count >= 1, got 0"):
        forgeml.set_num_threads(0)
    with pytest.raises(TypeError, match="n: expected an int"):
        forgeml.set_num_threads(2.5)
    assert forgeml.get_num_threads() == 3


def test_omp_num_threads_is_honoured():
    r = run_py("import forgeml; print(forgeml.get_num_threads())", OMP_NUM_THREADS="1")
    assert r.stdout.strip() == "1", r.stderr


def test_isa_can_be_lowered_not_raised():
    before = _cpu.active_isa()
    try:
        _cpu.set_active_isa("reference")
        assert _cpu.active_isa() == "reference"
        _cpu.set_active_isa("portable")
        assert _cpu.active_isa() == "portable"
        with pytest.raises(ValueError, match="isa: expected"):
            _cpu.set_active_isa("sse9")
    finally:
        _cpu.set_active_isa(before)
    r = run_py("from forgeml import _cpu; print(_cpu.active_isa())", FORGEML_ISA="portable")
    assert r.stdout.strip() == "portable", r.stderr


def test_ctrl_c_interrupts_a_long_kernel(python_sigint):
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _cpu._interruptible_wait(30.0)
    timer.join()
    assert time.perf_counter() - t0 < 20


def test_every_kernel_table_builds_on_this_cpu():
    # A fresh process builds each family's per-ISA tables on its first call; a wider ISA's fill
    # function must not run on a CPU without that ISA (it died of SIGILL on an AVX2-only EPYC).
    code = """if True:
        import numpy as np
        from forgeml import ops
        from forgeml.ensemble import RandomForestClassifier
        from forgeml.svm import SVC, LinearSVC
        from forgeml.tree import DecisionTreeClassifier
        r = np.random.default_rng(0)
        a = r.standard_normal((37, 29), dtype=np.float32)
        ops.matmul(a, a.T)
        ops.matmul(a, a.T, precision="bf16")
        q, s = ops.quantize_int8(a)
        ops.matmul_int8(q, s, q.T.copy(), np.ones(37, np.float32))
        ops.conv2d(r.standard_normal((2, 9, 9, 3), dtype=np.float32), r.standard_normal((3, 3, 3, 4), dtype=np.float32))
        ops.lstm(r.standard_normal((2, 5, 3), dtype=np.float32), r.standard_normal((3, 16), dtype=np.float32),
                 r.standard_normal((4, 16), dtype=np.float32), np.zeros(16, np.float32))
        w = r.standard_normal((29, 7), dtype=np.float32) * (r.random((29, 7)) < 0.3)
        ops.sparse_matmul(a, ops.SparseWeights.from_dense(w))
        y = (a[:, 0] > 0).astype(int)
        for est in (DecisionTreeClassifier(), RandomForestClassifier(n_estimators=3), SVC(), LinearSVC()):
            est.fit(a, y).predict(a)
        print("ok")
    """
    r = run_py(code)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])
