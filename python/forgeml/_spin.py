"""Bound libgomp's idle spinning before the CPU module (and with it libgomp) loads.

After every parallel region libgomp's threads spin GOMP_SPINCOUNT = 300000 pause iterations
(several ms on this hardware) before they sleep. On shared or busy machines, and on VMs
that deschedule spinning vCPUs, that turns a 0.2 ms two-thread call into 4-12 ms. A short spin
keeps back-to-back kernels (training loops) on hot threads and lets idle ones sleep. libgomp
reads the variable once, when it loads, so it is set only for the import and a user's own
OMP_WAIT_POLICY or GOMP_SPINCOUNT always wins.
"""
from __future__ import annotations

import contextlib
import os

SPIN_COUNT = "20000"
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
