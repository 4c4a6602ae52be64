"""SGEMM: forgeml.ops.matmul vs NumPy (OpenBLAS) and PyTorch when installed, 1 and 2 threads.

Cases: square 256..2048, the dense-layer shapes of network training with their backward
products (dW = X^T dY, dX = dY W^T), and a fused bias + relu epilogue against NumPy's three
passes. Small cases repeat the call in a loop so one timing is a few milliseconds. Two rows time
one call in a mixed setting, for forgeml and NumPy alike: "256^3 after 100 ms idle" (the thread
pools' wake-up cost) and "1024^3 right after a NumPy matmul" (OpenBLAS's threads still spinning).
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

import forgeml
from forgeml.bench import gemm_lowp
from forgeml.bench.harness import repeated
from forgeml.ops import matmul

SQUARE = (256, 512, 1024, 2048)
# OpenBLAS's idle workers spin about 0.1 s after each call (2^28 TSC cycles; measured here: a
# forgeml 1024^3 call on two threads takes 20 ms instead of 11 ms while they do, and NumPy's own
# next call is no slower). With several threads every sample of a row waits this long first, so
# one library's leftover spinning never lands in another's timing; the row "1024^3 right after a
# NumPy matmul" measures that case on purpose.
QUIET_S = 0.15
# (batch, in, out): forward X @ W, then dW = X^T dY and dX = dY W^T.
LAYERS = ((32, 100, 64), (256, 784, 128), (4096, 64, 64))


def _threads(n):
    """Limit forgeml, OpenBLAS (threadpoolctl) and torch to n threads for one case."""
    stack = contextlib.ExitStack()
    old = forgeml.get_num_threads()
    forgeml.set_num_threads(n)
    stack.callback(forgeml.set_num_threads, old)
    try:
        from threadpoolctl import threadpool_limits
        stack.enter_context(threadpool_limits(limits=n, user_api="blas"))
    except ImportError:
        pass
    try:
        import torch
        told = torch.get_num_threads()
        torch.set_num_threads(n)
        stack.callback(torch.set_num_threads, told)
    except ImportError:
        pass
    return stack


def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


def _case(bench, name, m, n, k, ta, tb, threads, rng, torch, epilogue=False):
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    bias = rng.standard_normal(n, dtype=np.float32)
    out, out_np = np.empty((m, n), np.float32), np.empty((m, n), np.float32)
    flops = 2.0 * m * n * k
    reps = max(1, int(2e8 / (flops * threads)))  # ~ a millisecond or more per timing
    opa, opb = (a.T if ta else a), (b.T if tb else b)
    if epilogue:
        def ours():
            matmul(a, b, trans_a=ta, trans_b=tb, bias=bias, activation="relu", out=out)

        def numpy_fn():
            np.matmul(opa, opb, out=out_np)
            np.add(out_np, bias, out=out_np)
            np.maximum(out_np, 0, out=out_np)
    else:
        def ours():
            matmul(a, b, trans_a=ta, trans_b=tb, out=out)

        def numpy_fn():
            np.matmul(opa, opb, out=out_np)
    peers = {"numpy": repeated(numpy_fn, reps)}
    if torch is not None:
        ta_, tb_, tbias, tout = torch.from_numpy(opa), torch.from_numpy(opb), torch.from_numpy(bias), torch.empty(m, n)
        if epilogue:
            def torch_fn():
                torch.addmm(tbias, ta_, tb_, out=tout)
                torch.relu_(tout)
        else:
            def torch_fn():
                torch.matmul(ta_, tb_, out=tout)
        peers["torch"] = repeated(torch_fn, reps)
    ours()
    numpy_fn()
    err = np.abs(out - out_np).max() / max(1e-30, np.abs(out_np).max())
    assert err < 1e-4, f"{name}: forgeml and numpy differ (max rel {err:.2e})"
    label = f"{name} t={threads}" + (f" x{reps}" if reps > 1 else "")
    bench.compare("gemm", label, repeated(ours, reps), peers, flops=flops * reps, pause=QUIET_S if threads > 1 else None)


def _settings_cases(bench, threads, rng):
    """One call after an idle gap, and one right after an OpenBLAS call (no pause)."""
    a = rng.standard_normal((256, 256), dtype=np.float32)
    out, out_np = np.empty((256, 256), np.float32), np.empty((256, 256), np.float32)
    bench.compare("gemm", f"256^3 after 100 ms idle t={threads}", lambda: matmul(a, a, out=out),
                  {"numpy": lambda: np.matmul(a, a, out=out_np)}, flops=2.0 * 256**3, pause=0.1)
    big = rng.standard_normal((1024, 1024), dtype=np.float32)
    other = rng.standard_normal((1024, 1024), dtype=np.float32)
    bout, bout_np, scratch = (np.empty((1024, 1024), np.float32) for _ in range(3))
    bench.compare("gemm", f"1024^3 right after a NumPy matmul t={threads}", lambda: matmul(big, big, out=bout),
                  {"numpy": lambda: np.matmul(big, big, out=bout_np)}, flops=2.0 * 1024**3, pause=0.0,
                  before=lambda: np.matmul(other, other, out=scratch))


def run(bench):
    rng = np.random.default_rng(0)
    torch = _torch()
    cpus = os.cpu_count() or 1
    thread_counts = sorted({1, min(2, cpus)} | ({cpus} if not bench.quick else set()))
    square = (256, 1024) if bench.quick else SQUARE
    layers = LAYERS[:2] if bench.quick else LAYERS
    for t in thread_counts:
        with _threads(t):
            for s in square:
                _case(bench, f"{s}^3", s, s, s, False, False, t, rng, torch)
            for batch, fin, fout in layers:
                _case(bench, f"fwd {batch}x{fin}@{fin}x{fout}", batch, fout, fin, False, False, t, rng, torch)
                _case(bench, f"dW {fin}x{batch}@{batch}x{fout}", fin, fout, batch, True, False, t, rng, torch)
                _case(bench, f"dX {batch}x{fout}@({fin}x{fout})^T", batch, fin, fout, False, True, t, rng, torch)
                _case(bench, f"fwd+bias+relu {batch}x{fin}x{fout}", batch, fout, fin, False, False, t, rng, torch,
                      epilogue=True)
            _settings_cases(bench, t, rng)
            gemm_lowp.cases(bench, t, rng, torch, pause=QUIET_S if t > 1 else None)  # bf16 and int8 rows


def cpu_time_table(repeats: int = 9) -> None:
    """One thread, timed by this thread's CPU time (best of `repeats`): on a shared, oversubscribed
    machine this keeps time spent descheduled out of both sides of the comparison.
    ``python -m forgeml.bench.gemm``"""
    import time
    try:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(limits=1, user_api="blas")
    except ImportError:
        limit = contextlib.nullcontext()
    rng = np.random.default_rng(0)
    cases = [(f"{s}^3", s, s, s, False, False) for s in SQUARE]
    for batch, fin, fout in LAYERS:
        cases += [(f"fwd {batch}x{fin}@{fin}x{fout}", batch, fout, fin, False, False),
                  (f"dW {fin}x{batch}@{batch}x{fout}", fin, fout, batch, True, False),
                  (f"dX {batch}x{fout}@({fin}x{fout})^T", batch, fin, fout, False, True),
                  (f"fwd+bias+relu {batch}x{fin}x{fout}", batch, fout, fin, False, False, True)]

    def best(fn, reps):
        t = float("inf")
        for _ in range(repeats):
            t0 = time.thread_time()
            for _ in range(reps):
                fn()
            t = min(t, (time.thread_time() - t0) / reps)
        return t

    old = forgeml.get_num_threads()
    forgeml.set_num_threads(1)
    try:
        with limit:
            print(f"{'case':34s} {'forgeml GF/s':>13s} {'numpy GF/s':>11s} {'ratio':>6s}")
            for name, m, n, k, ta, tb, *fused in cases:
                a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
                b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
                out = np.empty((m, n), np.float32)
                opa, opb = (a.T if ta else a), (b.T if tb else b)
                flops = 2.0 * m * n * k
                reps = max(1, int(3e7 / flops))
                bias = rng.standard_normal(n, dtype=np.float32)
                if fused:
                    def ours():
                        matmul(a, b, bias=bias, activation="relu", out=out)

                    def peer():
                        np.matmul(opa, opb, out=out)
                        np.add(out, bias, out=out)
                        np.maximum(out, 0, out=out)
                else:
                    def ours():
                        matmul(a, b, trans_a=ta, trans_b=tb, out=out)

                    def peer():
                        np.matmul(opa, opb, out=out)
                tf, tn = best(ours, reps), best(peer, reps)
                print(f"{name:34s} {flops / tf / 1e9:13.1f} {flops / tn / 1e9:11.1f} {tn / tf:6.2f}", flush=True)
    finally:
        forgeml.set_num_threads(old)


if __name__ == "__main__":
    cpu_time_table()
