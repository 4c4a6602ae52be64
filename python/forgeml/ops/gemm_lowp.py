"""Reduced-precision matrix multiplication: bf16 products with float32 accumulation
(``matmul(..., precision="bf16")``) and int8 x int8 products with int32 accumulation and a
dequantize + bias + activation epilogue (``matmul_int8``), plus the symmetric int8 quantizer
they pair with. NumPy arrays run the CPU kernels (csrc/cpu/gemm/lowp_*), CuPy arrays the CUDA
ones (csrc/cuda/gemm_lowp.cuh).
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from .gemm import ACTIVATIONS

__all__ = ["matmul_int8", "quantize_int8", "pack_int8", "PRECISIONS"]

PRECISIONS = (None, "float32", "bf16")
_F32 = np.dtype(np.float32)
_I8 = np.dtype(np.int8)


def _activation(activation):
    try:
        return ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise ValueError(
            f"activation: expected one of None, 'relu', 'sigmoid', 'tanh', 'gelu', got {activation!r}"
        ) from None


def _kind(*arrays, names):
    if all(type(x) is np.ndarray or x is None for x in arrays):
        return "cpu", _backend.cpu, np
    kind, mod = _backend.backend_of(*arrays, names=names)
    if kind == "cuda":
        import cupy as xp

        return kind, mod, xp
    return kind, mod, np


def _matrix(x, name, dtype, xp):
    """x as a 2-D array of `dtype` with a unit inner stride (converted once if needed)."""
    if type(x) is xp.ndarray and x.dtype == dtype and x.ndim == 2 and x.strides[-1] == dtype.itemsize:
        return x
    return _backend.as_array(x, name, dtype=dtype, ndim=2, xp=xp)


def _out(out, shape, xp):
    if out is None:
        return xp.empty(shape, _F32)
    if type(out) is not xp.ndarray or out.dtype != _F32 or tuple(out.shape) != shape or not out.flags.c_contiguous:
        got = f"{out.dtype} {tuple(out.shape)}" if hasattr(out, "shape") else type(out).__name__
        raise ValueError(f"out: expected a C-contiguous float32 array of shape {shape}, got {got}")
    if not getattr(out.flags, "writeable", True):
        raise ValueError("out: the array is read-only")
    return out


def _vector(v, n, name, xp):
    v = _backend.as_array(v, name, xp=xp)
    if v.ndim != 1 or v.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},), got {tuple(v.shape)}")
    return v


def matmul_bf16(a, b, trans_a=False, trans_b=False, bias=None, activation=None, out=None):
    """``matmul(..., precision="bf16")``: the operands rounded to bfloat16 (nearest even), products
    exact, sums in float32. 2-D operands, or a batch (B, rows, cols) on either side."""
    act = _activation(activation)
    kind, mod, xp = _kind(a, b, bias, out, names=("a", "b", "bias", "out"))
    a = _backend.as_array(a, "a", ndim=(2, 3), xp=xp) if not (type(a) is xp.ndarray and a.dtype == _F32) else a
    b = _backend.as_array(b, "b", ndim=(2, 3), xp=xp) if not (type(b) is xp.ndarray and b.dtype == _F32) else b
    if a.ndim not in (2, 3) or b.ndim not in (2, 3):
        raise ValueError(f"a, b: expected 2-D or 3-D arrays, got {a.ndim}-D and {b.ndim}-D")
    if a.ndim == 3 or b.ndim == 3:  # one product per matrix of the batch
        batch = a.shape[0] if a.ndim == 3 else b.shape[0]
        if a.ndim == 3 and b.ndim == 3 and a.shape[0] != b.shape[0]:
            raise ValueError(f"b: batch size {b.shape[0]} differs from a's {a.shape[0]}")
        first = [
            matmul_bf16(a[i] if a.ndim == 3 else a, b[i] if b.ndim == 3 else b, trans_a, trans_b, bias, activation)
            for i in range(batch)
        ]
        res = xp.stack(first) if batch else xp.empty((0,) + _shape2(a, b, trans_a, trans_b), _F32)
        if out is not None:
            _out(out, res.shape, xp)[...] = res
            return out
        return res
    a = _matrix(a, "a", _F32, xp)
    b = _matrix(b, "b", _F32, xp)
    m, n = _shape2(a, b, trans_a, trans_b)
    if bias is not None:
        bias = _vector(bias, n, "bias", xp)
    res = _out(out, (m, n), xp)
    if kind == "cpu":
        mod.gemm_bf16(a, b, res, bool(trans_a), bool(trans_b), bias, act)
    else:
        _cuda_bf16(mod, a, b, res, bool(trans_a), bool(trans_b), bias, act, xp)
    return res


def _shape2(a, b, trans_a, trans_b):
    m, k = (a.shape[-1], a.shape[-2]) if trans_a else (a.shape[-2], a.shape[-1])
    kb, n = (b.shape[-1], b.shape[-2]) if trans_b else (b.shape[-2], b.shape[-1])
    if k != kb:
        raise ValueError(f"b: inner dimensions differ: op(a) has shape ({m}, {k}) and op(b) has shape ({kb}, {n})")
    return m, n


def quantize_int8(x, axis=-1):
    """Symmetric int8 quantization with one scale per slice: the scale of a slice along `axis`
    is max|x| / 127 (1 for an all-zero slice) and q = round(x / scale) in [-127, 127].

    axis=-1 on a (M, K) activation gives per-row scales (M,); axis=0 on a (K, N) kernel gives
    per-output-channel scales (N,). Returns (q int8 of x's shape, scale float32)."""
    kind, mod, xp = _kind(x, names=("x",))
    x = _backend.as_array(x, "x", xp=xp)
    if x.ndim == 0:
        raise ValueError("x: expected at least a 1-D array, got a scalar")
    axis = int(axis) % x.ndim
    if kind == "cpu" and x.ndim == 2 and axis == 1:
        return mod.quantize_rows_int8(x)
    if not bool(xp.isfinite(x).all()):
        raise ValueError("x: holds NaN or infinity; int8 quantization needs finite values")
    amax = (
        xp.abs(x).max(axis=axis, keepdims=True)
        if x.shape[axis]
        else xp.zeros(x.shape[:axis] + (1,) + x.shape[axis + 1 :], _F32)
    )
    scale = xp.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(_F32)
    q = xp.clip(xp.rint(x / scale), -127, 127).astype(_I8)
    return q, xp.squeeze(scale, axis=axis)


def pack_int8(b):
    """b (K, N) int8 packed once into the CPU int8 GEMM's panels for the active ISA: pass the
    result to ``matmul_int8`` as b to skip the per-call packing (a layer's fixed weights).
    Valid while the active ISA stays the one it was packed for (``.isa``)."""
    if getattr(b, "dtype", None) != _I8 or type(b) is not np.ndarray:
        raise TypeError(f"b: expected a NumPy int8 array, got {getattr(b, 'dtype', type(b).__name__)}")
    if b.ndim != 2:
        raise ValueError(f"b: expected a 2-D array, got {b.ndim}-D")
    return _backend.cpu.pack_int8(np.ascontiguousarray(b))


def _is_packed(b):
    return type(b).__name__ == "PackedInt8" and type(b).__module__.startswith("forgeml")


def _matmul_int8_packed(a, a_scale, b, b_scale, bias, act, out):
    if type(a) is not np.ndarray:
        raise TypeError(f"a: a packed b runs on the CPU and needs a NumPy a, got {type(a).__name__}")
    a = _matrix(a, "a", _F32 if a_scale is None else _I8, np)
    m, k = a.shape
    if b.shape[0] != k:
        raise ValueError(f"b: expected {k} rows (a's columns), got shape {tuple(b.shape)}")
    n = b.shape[1]
    if a_scale is not None:
        a_scale = _vector(a_scale, m, "a_scale", np)
    b_scale = _vector(b_scale, n, "b_scale", np)
    if bias is not None:
        bias = _vector(bias, n, "bias", np)
    res = _out(out, (m, n), np)
    _backend.cpu.gemm_int8_packed(a, a_scale, b, b_scale, res, bias, act)
    return res


def matmul_int8(a, a_scale, b, b_scale, *, bias=None, activation=None, out=None):
    """``act(a_scale[:, None] * b_scale[None, :] * (a @ b) + bias)`` with int8 a (M, K) and b (K, N),
    exact int32 sums and float32 scales a_scale (M,), b_scale (N,).

    a_scale=None quantizes a float a per row first (``quantize_int8(a, axis=-1)``, the dynamic
    activation quantization of ``model.quantize("int8")``). bias: (N,) float32 or None.
    activation: None, "relu", "sigmoid", "tanh" or "gelu". Returns out or a new float32 (M, N).
    b may be ``pack_int8(b)`` (CPU only): its panels are reused instead of packed per call."""
    act = _activation(activation)
    if _is_packed(b):
        if a_scale is not None and getattr(a, "dtype", None) != _I8:
            raise TypeError(f"a: expected int8 values with a_scale given, got {getattr(a, 'dtype', type(a).__name__)}")
        return _matmul_int8_packed(a, a_scale, b, b_scale, bias, act, out)
    kind, mod, xp = _kind(a, b, a_scale, b_scale, bias, out, names=("a", "b", "a_scale", "b_scale", "bias", "out"))
    if a_scale is None:
        a, a_scale = quantize_int8(_matrix(a, "a", _F32, xp), axis=-1)
    else:
        if getattr(a, "dtype", None) != _I8:
            raise TypeError(
                f"a: expected int8 values with a_scale given, got {getattr(a, 'dtype', type(a).__name__)}"
                " (pass a_scale=None to quantize a float a)"
            )
        a = _matrix(a, "a", _I8, xp)
    if getattr(b, "dtype", None) != _I8:
        raise TypeError(
            f"b: expected an int8 array, got {getattr(b, 'dtype', type(b).__name__)} "
            "(quantize it with quantize_int8(b, axis=0))"
        )
    b = _matrix(b, "b", _I8, xp)
    m, k = a.shape
    if b.shape[0] != k:
        raise ValueError(f"b: expected {k} rows (a's columns), got shape {tuple(b.shape)}")
    n = b.shape[1]
    a_scale = _vector(a_scale, m, "a_scale", xp)
    b_scale = _vector(b_scale, n, "b_scale", xp)
    if bias is not None:
        bias = _vector(bias, n, "bias", xp)
    res = _out(out, (m, n), xp)
    if kind == "cpu":
        mod.gemm_int8(a, a_scale, b, b_scale, res, bias, act)
    else:
        _cuda_int8(mod, a, a_scale, b, b_scale, res, bias, act, xp)
    return res


def kernel_name(int8=False):
    """The CPU micro-kernel the active ISA uses, e.g. 'bf16_avx512_12x32'."""
    return _backend.cpu.lowp_kernel_name(bool(int8))


# ---------------------------------------------------------------- CUDA launchers (CuPy arrays)


def _ld(x):
    return max(1, x.strides[0] // x.itemsize if x.shape[0] > 1 else x.shape[1])


def _cuda_bf16(mod, a, b, out, ta, tb, bias, act, cupy):
    m, n = out.shape
    k = a.shape[0] if ta else a.shape[1]
    if out.size == 0:
        return
    mod.gemm_bf16(
        ta,
        tb,
        m,
        n,
        k,
        a.data.ptr,
        _ld(a),
        b.data.ptr,
        _ld(b),
        out.data.ptr,
        _ld(out),
        bias.data.ptr if bias is not None else 0,
        act,
        cupy.cuda.get_current_stream().ptr,
    )


def _cuda_int8(mod, a, a_scale, b, b_scale, out, bias, act, cupy):
    m, n = out.shape
    if out.size == 0:
        return
    mod.gemm_int8(
        m,
        n,
        a.shape[1],
        a.data.ptr,
        _ld(a),
        a_scale.data.ptr,
        b.data.ptr,
        _ld(b),
        b_scale.data.ptr,
        out.data.ptr,
        _ld(out),
        bias.data.ptr if bias is not None else 0,
        act,
        cupy.cuda.get_current_stream().ptr,
    )
