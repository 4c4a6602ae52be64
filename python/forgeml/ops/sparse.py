"""Sparse-weight inference: ``sparse_matmul(x, w)`` = ``act(x @ w + bias)`` for a dense float32
x (M, K) and a pruned weight matrix w (K, N) held as ``SparseWeights`` (compressed by output
column: only the nonzeros are stored and multiplied). The CPU kernel (csrc/cpu/sparse) costs
about M * nnz(w) multiply-adds, so a 90%-sparse Dense kernel runs in a fraction of the dense
GEMM's time. CPU only for now.
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from .gemm import ACTIVATIONS

__all__ = ["SparseWeights", "sparse_matmul"]

_F32 = np.dtype(np.float32)


class SparseWeights:
    """A (K, N) float32 matrix stored by column: column j holds ``values[p]`` at row
    ``indices[p]`` for p in ``indptr[j]:indptr[j + 1]`` (scipy's CSC layout, int32 rows)."""

    __slots__ = ("indptr", "indices", "values", "shape")

    def __init__(self, indptr, indices, values, shape):
        k, n = (int(s) for s in shape)
        indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        indices = np.ascontiguousarray(indices, dtype=np.int32)
        values = np.ascontiguousarray(values, dtype=_F32)
        if k < 0 or n < 0 or indptr.shape != (n + 1,):
            raise ValueError(f"indptr: expected shape ({n + 1},) for shape {(k, n)}, got {indptr.shape}")
        nnz = int(indptr[-1])
        if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise ValueError("indptr: must start at 0 and never decrease")
        if indices.shape != (nnz,) or values.shape != (nnz,):
            raise ValueError(f"indices, values: expected {nnz} entries each, got {indices.shape} and {values.shape}")
        if nnz and (indices.min() < 0 or indices.max() >= k):
            raise ValueError(f"indices: row indices must lie in [0, {k})")
        self.indptr, self.indices, self.values, self.shape = indptr, indices, values, (k, n)

    @classmethod
    def from_dense(cls, w):
        """The nonzeros of a dense (K, N) matrix (exact zeros are dropped)."""
        w = _backend.as_array(w, "w", ndim=2, xp=np)
        cols, rows = np.nonzero(w.T)  # column-major order: by output column, rows ascending
        indptr = np.zeros(w.shape[1] + 1, np.int64)
        np.cumsum(np.bincount(cols, minlength=w.shape[1]), out=indptr[1:])
        return cls(indptr, rows, w[rows, cols], w.shape)

    @property
    def nnz(self):
        return int(self.indptr[-1])

    @property
    def density(self):
        size = self.shape[0] * self.shape[1]
        return self.nnz / size if size else 0.0

    def to_dense(self):
        w = np.zeros(self.shape, _F32)
        cols = np.repeat(np.arange(self.shape[1]), np.diff(self.indptr))
        w[self.indices, cols] = self.values
        return w


def sparse_matmul(x, w, *, bias=None, activation=None, out=None):
    """``act(x @ w + bias)`` with w a ``SparseWeights`` (K, N); x float32 (M, K), bias (N,) or
    None, activation None / "relu" / "sigmoid" / "tanh" / "gelu". Returns out or a new (M, N)."""
    if not isinstance(w, SparseWeights):
        raise TypeError(f"w: expected SparseWeights (SparseWeights.from_dense(w)), got {type(w).__name__}")
    try:
        act = ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise ValueError(
            f"activation: expected one of None, 'relu', 'sigmoid', 'tanh', 'gelu', got {activation!r}"
        ) from None
    mod = _backend.cpu_only(x, bias, out, names=("x", "bias", "out"), what="sparse_matmul")
    x = _backend.as_array(x, "x", ndim=2, xp=np)
    k, n = w.shape
    if x.shape[1] != k:
        raise ValueError(f"x: expected {k} columns (w's rows), got shape {x.shape}")
    if bias is not None:
        bias = _backend.as_array(bias, "bias", ndim=1, xp=np)
        if bias.shape != (n,):
            raise ValueError(f"bias: expected shape ({n},), got {bias.shape}")
    shape = (x.shape[0], n)
    if out is None:
        out = np.empty(shape, _F32)
    elif type(out) is not np.ndarray or out.dtype != _F32 or out.shape != shape or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a C-contiguous float32 array of shape {shape}")
    elif not out.flags.writeable:
        raise ValueError("out: the array is read-only")
    if x.shape[0] == 0:
        return out
    mod.dense_x_csc(x, w.indptr, w.indices, w.values, k, n, out, bias, act)
    return out


def kernel_name():
    """The CPU kernel the active ISA uses, e.g. 'csc_avx512_64'."""
    return _backend.cpu.sparse_kernel_name()
