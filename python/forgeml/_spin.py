"""Bound libgomp's idle spinning before the CPU module (and with it libgomp) loads.

After every parallel region libgomp's threads spin GOMP_SPINCOUNT = 300000 pause iterations
(milliseconds) before they sleep. Measured on a 2-core VM (two 2-thread matmuls after an idle
gap, median ms, GOMP_SPINCOUNT = 0 / 3000 / 20000 / 300000): gap 100 ms 1.0 / 1.3 / 2.5 / 11.8;
with another process busy 1.0 / 1.2 / 2.5 / 15.8; back to back (a small LSTM) 0.27 / 0.18 / 0.18 /
0.18. 3000 keeps back-to-back kernels on hot threads and lets idle ones sleep. libgomp reads
the variable once, when it loads, so it is set only for the import, and a user's own
OMP_WAIT_POLICY or GOMP_SPINCOUNT always wins.
"""
from __future__ import annotations

import contextlib
import os

SPIN_COUNT = "3000"
applied = ""  # what libgomp was given, for show_config


@contextlib.contextmanager
def bounded_spin():
    global applied
    user = [f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ]
    if user:
        applied = " ".join(user) + " (yours)"
        yield
        return
    applied = f"GOMP_SPINCOUNT={SPIN_COUNT} (forgeml's default)"
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    try:
        yield
    finally:
        del os.environ["GOMP_SPINCOUNT"]
