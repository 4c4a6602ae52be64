"""Builds (once per test session) and runs the ThreadSanitizer executable csrc/emu/tsan_main.cpp:
the emulator's thread mode, one OS thread per CUDA thread. $FORGEML_TSAN_EXE overrides the build."""
from __future__ import annotations

import atexit
import functools
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def tsan_exe() -> str:
    exe = os.environ.get("FORGEML_TSAN_EXE")
    if exe:
        return exe
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ not found: cannot build the ThreadSanitizer executable (or set FORGEML_TSAN_EXE)")
    tmp = tempfile.mkdtemp(prefix="forgeml_tsan_")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    out = os.path.join(tmp, "forgeml_tsan")
    cmd = [gxx, "-std=c++20", "-O1", "-g", "-fsanitize=thread", "-Wno-unknown-pragmas",
           "-I", str(ROOT / "csrc/include"), "-I", str(ROOT / "csrc"), str(ROOT / "csrc/emu/tsan_main.cpp"),
           "-o", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, f"building the TSan executable failed:\n{r.stderr[-4000:]}"
    return out


def run_tsan(*cases: str) -> subprocess.CompletedProcess:
    """Runs the named cases (none: lists them); halt_on_error=0 so every race is reported."""
    return subprocess.run([tsan_exe(), *cases], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TSAN_OPTIONS": "halt_on_error=0"})


def assert_clean(*cases: str) -> None:
    r = run_tsan(*cases)
    assert "ThreadSanitizer" not in r.stderr, r.stderr[-4000:]
    assert r.returncode == 0, r.stdout + r.stderr[-4000:]
    assert r.stdout.count(": ok") == len(cases), r.stdout
