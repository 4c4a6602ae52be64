"""Rows of the gemm family for the reduced-precision GEMMs: ops.matmul(precision="bf16") and
ops.matmul_int8 against forgeml's own fp32 SGEMM, NumPy fp32 and, where installed, PyTorch bf16
(torch.matmul on bfloat16 tensors: left out where it runs >= 10x slower than its fp32 matmul, a
CPU without bf16 arithmetic) and int8 (torch._int_mm), same process, interleaved.
The ratio column is peer time / forgeml time: > 1 means the reduced-precision kernel is faster.

``python -m forgeml.bench.gemm_lowp`` prints a one-thread table timed by thread CPU time, which
keeps time spent descheduled on a shared machine out of the comparison.
"""

from __future__ import annotations

import contextlib

import numpy as np

import forgeml
from forgeml import ops
from forgeml.bench.harness import repeated

SQUARE = (1024,)
SQUARE_FULL = (512, 1024, 2048)
LAYERS = ((256, 784, 128), (4096, 64, 64), (1024, 1024, 1024 // 4))  # (batch, in, out) forward X @ W


def _torch_bf16_slowdown(torch) -> float:
    """How many times slower PyTorch's bf16 matmul is than its fp32 one at 256^3 (best of 3)."""
    import time

    a = torch.randn(256, 256)
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        x = a.to(dtype)
        torch.matmul(x, x)
        t = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            torch.matmul(x, x)
            t = min(t, time.perf_counter() - t0)
        best[dtype] = t
    return best[torch.bfloat16] / best[torch.float32]


def _torch_peers(a, b, torch, bf16=True):
    if torch is None:
        return {}
    peers = {}
    if bf16:
        ta, tb = torch.from_numpy(a).to(torch.bfloat16), torch.from_numpy(b).to(torch.bfloat16)
        peers["torch bf16"] = lambda: torch.matmul(ta, tb)
    int_mm = getattr(torch, "_int_mm", None)
    if int_mm is not None and a.shape[0] > 16 and a.shape[1] % 8 == 0 and b.shape[1] % 8 == 0:
        qa = torch.from_numpy(np.clip(np.rint(a * 40), -127, 127).astype(np.int8))
        qb = torch.from_numpy(np.clip(np.rint(b * 40), -127, 127).astype(np.int8))
        try:
            int_mm(qa, qb)
            peers["torch int8"] = lambda: int_mm(qa, qb)
        except RuntimeError:  # no CPU kernel for this shape in this build
            pass
    return peers


def cases(bench, threads, rng, torch, pause=None):
    """bf16 and int8 rows at the square and network shapes, for one thread count. pause: the idle
    gap before every sample (gemm.run passes its QUIET_S for several threads, as for its own rows:
    a bf16 sample 50 ms after a NumPy one otherwise shares the CPUs with OpenBLAS's spinning
    worker, and its second thread gets no CPU)."""
    square = SQUARE if bench.quick else SQUARE_FULL
    # PyTorch's bf16 matmul on a CPU without bf16 arithmetic (AVX2) runs ~200x slower than its
    # fp32 one (2048^3: ~60 s a call), which would make it most of the family's time: left out.
    bf16_peer = torch is not None and (slowdown := _torch_bf16_slowdown(torch)) < 10
    if torch is not None and not bf16_peer:
        print(
            f"# gemm: torch bf16 left out at t={threads}: {slowdown:.0f}x slower than its fp32 matmul at 256^3 "
            "(no bf16 arithmetic on this CPU)",
            file=bench.out,
            flush=True,
        )
    shapes = [(f"{s}^3", s, s, s) for s in square] + [(f"fwd {m}x{k}@{k}x{n}", m, n, k) for m, k, n in LAYERS]
    for name, m, n, k in shapes:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        qa, sa = ops.quantize_int8(a)
        qb, sb = ops.quantize_int8(b, axis=0)
        out = np.empty((m, n), np.float32)
        flops = 2.0 * m * n * k
        reps = max(1, int(2e8 / (flops * threads)))
        ref = a.astype(np.float64) @ b
        pb = ops.pack_int8(qb)
        for label, fn in (
            ("bf16", lambda: ops.matmul(a, b, out=out, precision="bf16")),
            ("int8", lambda: ops.matmul_int8(qa, sa, qb, sb, out=out)),
            # a quantized Dense layer's call: float a quantized per row inside, b packed once
            ("int8 layer", lambda: ops.matmul_int8(a, None, pb, sb, out=out)),
        ):
            fn()  # validate before timing: within the precision's rounding of float64
            err = np.linalg.norm(out - ref) / np.linalg.norm(ref)
            assert err < (1e-2 if label == "bf16" else 3e-2), f"{label} {name}: relative error {err:.2e}"
            if label == "int8 layer" and "^3" in name:
                continue  # the layer rows are for the network shapes
            peers = {
                "forgeml fp32": repeated(lambda: ops.matmul(a, b), reps),
                "numpy fp32": repeated(lambda: a @ b, reps),
            }
            peers.update(
                {k2: repeated(v, reps) for k2, v in _torch_peers(a, b, torch, bf16_peer).items() if k2.endswith(label)}
            )
            bench.compare(
                "gemm",
                f"{label} {name} t={threads}" + (f" x{reps}" if reps > 1 else ""),
                repeated(fn, reps),
                peers,
                impl=f"forgeml {label}",
                flops=flops * reps,
                pause=pause,
            )


def cpu_time_table(repeats: int = 7) -> None:
    """One thread; GFLOP/s of fp32 / bf16 / int8 and NumPy fp32 by thread CPU time (best of repeats)."""
    import time

    try:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=1, user_api="blas")
    except ImportError:
        limit = contextlib.nullcontext()
    rng = np.random.default_rng(0)
    shapes = [(f"{s}^3", s, s, s) for s in SQUARE_FULL] + [(f"fwd {m}x{k}@{k}x{n}", m, n, k) for m, k, n in LAYERS]

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
            print(f"kernels: {ops.gemm_lowp.kernel_name(False)}, {ops.gemm_lowp.kernel_name(True)}")
            print(
                f"{'case':26s} {'fp32':>7s} {'bf16':>7s} {'int8':>7s} {'numpy':>7s}  GFLOP/s   "
                f"{'bf16/fp32':>9s} {'int8/fp32':>9s} {'bf16/np':>8s}"
            )
            for name, m, n, k in shapes:
                a = rng.standard_normal((m, k), dtype=np.float32)
                b = rng.standard_normal((k, n), dtype=np.float32)
                qa, sa = ops.quantize_int8(a)
                qb, sb = ops.quantize_int8(b, axis=0)
                flops = 2.0 * m * n * k
                reps = max(1, int(3e7 / flops))
                t = [
                    best(f, reps)
                    for f in (
                        lambda: ops.matmul(a, b),
                        lambda: ops.matmul(a, b, precision="bf16"),
                        lambda: ops.matmul_int8(qa, sa, qb, sb),
                        lambda: a @ b,
                    )
                ]
                g = [flops / x / 1e9 for x in t]
                print(
                    f"{name:26s} {g[0]:7.1f} {g[1]:7.1f} {g[2]:7.1f} {g[3]:7.1f}            "
                    f"{t[0] / t[1]:9.2f} {t[0] / t[2]:9.2f} {t[3] / t[1]:8.2f}",
                    flush=True,
                )
    finally:
        forgeml.set_num_threads(old)


if __name__ == "__main__":
    cpu_time_table()


def gpu_check(check):
    """CUDA bf16 / int8 GEMMs on CuPy arrays against cuBLAS fp32 on the rounded / quantized
    inputs (called from gemm_cuda.gpu_check, so the rows sit in the gemm family)."""
    cp = check.cp
    rng = cp.random.RandomState(1)
    for m, k, n in ((2048, 2048, 2048), (1000, 777, 1501)):
        a = rng.standard_normal((m, k), dtype=cp.float32)
        b = rng.standard_normal((k, n), dtype=cp.float32)
        ra, rb = (_round_bf16_cupy(cp, x) for x in (a, b))
        check.kernel(
            "gemm",
            f"bf16 {m}x{k}x{n}",
            lambda: ops.matmul(a, b, precision="bf16"),
            lambda: cp.matmul(ra, rb),
            peer="cupy fp32 on bf16-rounded",
            flops=2.0 * m * n * k,
        )
        qa, sa = ops.quantize_int8(a)
        qb, sb = ops.quantize_int8(b, axis=0)
        check.kernel(
            "gemm",
            f"int8 {m}x{k}x{n}",
            lambda: ops.matmul_int8(qa, sa, qb, sb),
            lambda: cp.matmul(qa.astype(cp.float32), qb.astype(cp.float32)) * sa[:, None] * sb,
            peer="cupy fp32 on int8 values",
            flops=2.0 * m * n * k,
        )


def _round_bf16_cupy(cp, x):
    u = x.view(cp.uint32).astype(cp.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(cp.uint32).view(cp.float32)
