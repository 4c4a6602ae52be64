"""Matrix multiplication with a fused epilogue: ``act(op(a) @ op(b) + bias)``.

NumPy arrays run the CPU SGEMM (csrc/cpu/gemm), CuPy arrays the CUDA one, on CuPy's current
stream. The per-call path is kept short because network training calls it with small shapes:
a float32 array with a unit stride in either dimension is used as it is (a transposed view
becomes a transpose flag, never a copy); anything else is converted once.
"""
from __future__ import annotations

import numpy as np

from .. import _backend

__all__ = ["matmul", "ACTIVATIONS"]

ACTIVATIONS = {None: 0, "relu": 1, "sigmoid": 2, "tanh": 3, "gelu": 4}
_F32 = np.dtype(np.float32)
_cpu_sgemm = _backend.cpu.sgemm
_cpu_fast = _backend.cpu.matmul_fast


def _view(x, name, trans, xp):
    """(x as float32 with a unit inner stride, trans flipped if x was a transposed view)."""
    if type(x) is xp.ndarray and x.dtype == _F32 and x.ndim in (2, 3):
        s, shape = x.strides, x.shape
        if s[-1] == 4 and s[-2] >= 4 * shape[-1] and s[-2] % 4 == 0 and (x.ndim == 2 or s[0] >= 0):
            return x, trans
        if s[-2] == 4 and s[-1] >= 4 * shape[-2] and s[-1] % 4 == 0 and (x.ndim == 2 or s[0] >= 0):
            return x.swapaxes(-1, -2), not trans
    return _backend.as_array(x, name, ndim=(2, 3), xp=xp), trans


def _bias(bias, n, xp):
    bias = _backend.as_array(bias, "bias", xp=xp)
    if bias.ndim != 1 or bias.shape[0] != n:
        raise ValueError(f"bias: expected shape ({n},), got {tuple(bias.shape)}")
    return bias


def matmul(a, b, *, trans_a=False, trans_b=False, bias=None, activation=None, out=None, precision=None):
    """``act(op(a) @ op(b) + bias)`` in float32.

    a: (M, K), or (K, M) with trans_a; b: (K, N), or (N, K) with trans_b; either may be a batch
    (B, rows, cols) and a 2-D operand is then broadcast over the batch. bias: (N,) or None.
    activation: None, "relu", "sigmoid", "tanh" or "gelu" (exact erf form). out: optional
    float32 array of the result's shape, (M, N) or (B, M, N), not overlapping a or b. Returns out
    or a new array on the inputs' device (NumPy -> CPU kernels, CuPy -> CUDA kernels).
    precision: None / "float32", or "bf16": the operands rounded to bfloat16, float32 sums
    (ops/gemm_lowp.py).
    """
    if precision is not None and precision != "float32":
        if precision == "bf16":
            r = _cpu_fast(a, b, trans_a, trans_b, bias, activation, out, True)
            if r is not None:
                return r
        from . import gemm_lowp
        if precision not in gemm_lowp.PRECISIONS:
            raise ValueError(f"precision: expected one of {gemm_lowp.PRECISIONS}, got {precision!r}")
        return gemm_lowp.matmul_bf16(a, b, trans_a, trans_b, bias, activation, out)
    r = _cpu_fast(a, b, trans_a, trans_b, bias, activation, out)  # None unless the common CPU case
    if r is not None:
        return r
    return _matmul(a, b, trans_a, trans_b, bias, activation, out)


def _matmul(a, b, trans_a, trans_b, bias, activation, out):
    """The general path: conversions, broadcasting, CuPy, and every error message."""
    try:
        act = ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise ValueError(f"activation: expected one of None, 'relu', 'sigmoid', 'tanh', 'gelu', "
                         f"got {activation!r}") from None
    if type(a) is np.ndarray and type(b) is np.ndarray and (out is None or type(out) is np.ndarray):
        kind, xp = "cpu", np
    else:
        kind, mod = _backend.backend_of(a, b, bias, out, names=("a", "b", "bias", "out"))
        if kind == "cuda":
            import cupy as xp
        else:
            xp = np
    a, ta = _view(a, "a", bool(trans_a), xp)
    b, tb = _view(b, "b", bool(trans_b), xp)
    sa, sb = a.shape, b.shape
    m, k = (sa[-1], sa[-2]) if ta else (sa[-2], sa[-1])
    kb, n = (sb[-1], sb[-2]) if tb else (sb[-2], sb[-1])
    if k != kb:
        raise ValueError(f"b: inner dimensions differ: op(a) has shape ({m}, {k}) and op(b) has shape ({kb}, {n})")
    if a.ndim == 2 and b.ndim == 2:
        shape = (m, n)
    else:
        ba = sa[0] if a.ndim == 3 else None
        bb = sb[0] if b.ndim == 3 else None
        if ba is not None and bb is not None and ba != bb:
            if ba == 1:
                a, ba = a[0], None
            elif bb == 1:
                b, bb = b[0], None
            else:
                raise ValueError(f"b: batch size {bb} differs from a's {ba}")
        shape = (ba if ba is not None else bb, m, n)
    if bias is not None:
        bias = _bias(bias, n, xp)
    target = None
    if out is not None:
        if type(out) is not xp.ndarray or out.dtype.newbyteorder("=") != _F32 or tuple(out.shape) != shape:
            got = f"{out.dtype} {tuple(out.shape)}" if hasattr(out, "shape") else type(out).__name__
            raise ValueError(f"out: expected a float32 array of shape {shape}, got {got}")
        if not getattr(out.flags, "writeable", True):
            raise ValueError("out: the array is read-only")
        if (out.dtype != _F32 or out.strides[-1] != 4 or (len(shape) == 3 and out.strides[0] < 0)
                or out.strides[-2] < 4 * n):  # byte-swapped or oddly strided: computed aside, then copied in
            target, out = out, xp.empty(shape, _F32)
    else:
        out = xp.empty(shape, _F32)
    if kind == "cpu":
        _cpu_sgemm(a, b, out, ta, tb, 1.0, 0.0, bias, act)
    else:
        _cuda_sgemm(mod, a, b, out, ta, tb, bias, act, xp)
    if target is not None:
        target[...] = out
        return target
    return out


def _ld(x):
    return max(1, x.strides[-2] // 4 if x.shape[-2] > 1 else x.shape[-1])


def _cuda_sgemm(mod, a, b, out, ta, tb, bias, act, cupy):
    """One _cuda.sgemm call per matrix of the batch, on CuPy's current stream."""
    m, n = out.shape[-2:]
    k = a.shape[-2] if ta else a.shape[-1]
    if out.size == 0:
        return
    stream = cupy.cuda.get_current_stream().ptr
    bias_ptr = bias.data.ptr if bias is not None else 0
    lda, ldb, ldc = _ld(a), _ld(b), _ld(out)
    if out.ndim == 2:
        mod.sgemm(ta, tb, m, n, k, 1.0, a.data.ptr, lda, b.data.ptr, ldb, 0.0, out.data.ptr, ldc, bias_ptr, act,
                  stream)
        return
    sa = a.strides[0] if a.ndim == 3 else 0
    sb = b.strides[0] if b.ndim == 3 else 0
    for i in range(out.shape[0]):
        mod.sgemm(ta, tb, m, n, k, 1.0, a.data.ptr + i * sa, lda, b.data.ptr + i * sb, ldb, 0.0,
                  out.data.ptr + i * out.strides[0], ldc, bias_ptr, act, stream)
