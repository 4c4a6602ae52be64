"""CUDA SGEMM: forgeml.ops.matmul on CuPy arrays against cupy.matmul (cuBLAS).

GPU kernels are checked and timed by ``python -m forgeml gpucheck`` through ``gpu_check`` below;
the CPU benchmark (``run``) has nothing to time here.
"""
from __future__ import annotations

SIZES = (1024, 2048, 4096)


def run(bench):
    from .. import cuda
    if not cuda.is_available():
        print(f"# gemm_cuda: no usable GPU ({cuda.status()}); skipped")
    else:
        print("# gemm_cuda: the CUDA SGEMM is timed by `python -m forgeml gpucheck`")
    return None


def _matmul(cp, a, b, *, trans_b=False, bias=None, activation=None):
    """forgeml.ops.matmul when present; else the _cuda.sgemm binding it calls (same kernel)."""
    try:
        from ..ops import matmul
    except ImportError:
        matmul = None
    if matmul is not None:
        return matmul(a, b, trans_b=trans_b, bias=bias, activation=activation)
    from .._backend import cuda_module
    m, k = a.shape
    n = b.shape[0] if trans_b else b.shape[1]
    out = cp.empty((m, n), dtype=cp.float32)
    act = {None: 0, "relu": 1, "sigmoid": 2, "tanh": 3, "gelu": 4}[activation]
    cuda_module().sgemm(False, trans_b, m, n, k, 1.0, a.data.ptr, k, b.data.ptr, b.shape[1], 0.0, out.data.ptr, n,
                        0 if bias is None else bias.data.ptr, act, cp.cuda.get_current_stream().ptr)
    return out


def gpu_check(check):
    cp = check.cp
    rng = cp.random.RandomState(0)
    for n in SIZES:
        a = rng.standard_normal((n, n), dtype=cp.float32)
        b = rng.standard_normal((n, n), dtype=cp.float32)
        bias = rng.standard_normal(n, dtype=cp.float32)
        flops = 2.0 * n ** 3
        check.kernel("gemm", f"sgemm {n}^3", lambda: _matmul(cp, a, b), lambda: cp.matmul(a, b),
                     peer="cupy (cuBLAS)", flops=flops)
        check.kernel("gemm", f"sgemm {n}^3 b^T", lambda: _matmul(cp, a, b, trans_b=True), lambda: cp.matmul(a, b.T),
                     peer="cupy (cuBLAS)", flops=flops)
        check.kernel("gemm", f"sgemm {n}^3 +bias,relu",
                     lambda: _matmul(cp, a, b, bias=bias, activation="relu"),
                     lambda: cp.maximum(cp.matmul(a, b) + bias, 0), peer="cupy (cuBLAS + 2 passes)", flops=flops)
    # Odd sizes: the bounds-checked edges and the scalar-load path.
    m, k, n = 1000, 777, 1501
    a = rng.standard_normal((m, k), dtype=cp.float32)
    b = rng.standard_normal((k, n), dtype=cp.float32)
    check.kernel("gemm", f"sgemm {m}x{k}x{n}", lambda: _matmul(cp, a, b), lambda: cp.matmul(a, b),
                 peer="cupy (cuBLAS)", flops=2.0 * m * k * n)
    from .gemm_lowp import gpu_check as lowp_gpu_check  # the bf16 / int8 rows
    lowp_gpu_check(check)
