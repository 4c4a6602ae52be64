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


@contextlib.contextmanager
def bounded_spin():
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        yield
        return
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    try:
        yield
    finally:
        del os.environ["GOMP_SPINCOUNT"]
