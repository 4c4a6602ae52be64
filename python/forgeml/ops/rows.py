"""Row kernels (csrc/cpu/dense_step's elementwise table, one vector loop per pass): softmax and
layer normalization, forward and backward, over the last axis, and a row scatter-add, as
forgeml.keras's attention, LayerNormalization and Embedding layers use them. float32, CPU only
for now (CuPy input raises); forgeml.keras keeps its array-library code for CuPy arrays and other
dtypes."""

from __future__ import annotations

import numpy as np

from .. import _backend

__all__ = ["softmax_rows", "softmax_rows_backward", "layer_norm", "layer_norm_backward", "scatter_add_rows"]


def _rows(x, name):
    """x (..., c) as a C-contiguous float32 array with c >= 1 (copied once if needed)."""
    x = _backend.as_array(x, name)
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"{name}: expected an array of at least one value along its last axis, got shape {x.shape}")
    return x


def _vector(v, name, c):
    if v is None:
        return None
    v = _backend.as_array(v, name, ndim=1)
    if v.shape[0] != c:
        raise ValueError(f"{name}: expected shape ({c},), got {v.shape}")
    return v


def softmax_rows(x, out=None):
    """softmax over the last axis of x (any shape), max-shifted, into a new float32 array or out
    (float32, C-contiguous, x's shape; it may be x itself). NaN in a row gives a row of NaN; -inf
    (and anything more than 87 below the row's maximum) gives 0."""
    cpu = _backend.cpu_only(x, out, names=("x", "out"), what="softmax_rows")
    given, x = x, _rows(x, "x")
    if out is None:  # the kernel works in place: on x's own copy if it took one
        out = x.copy() if isinstance(given, np.ndarray) and np.may_share_memory(x, given) else x
    else:
        if type(out) is not np.ndarray or out.dtype != np.float32 or out.shape != x.shape:
            raise ValueError(f"out: expected a float32 NumPy array of shape {x.shape}")
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out: expected a writable C-contiguous array")
        if out is not x:
            np.copyto(out, x)
    if out.size:
        cpu.softmax_rows(out.reshape(-1, out.shape[-1]))
    return out


def softmax_rows_backward(y, dy):
    """The gradient of softmax_rows from its output y and dy (same shape): y * (dy - sum(dy * y)
    over the last axis), a new float32 array."""
    cpu = _backend.cpu_only(y, dy, names=("y", "dy"), what="softmax_rows_backward")
    y, dy = _rows(y, "y"), _rows(dy, "dy")
    if dy.shape != y.shape:
        raise ValueError(f"dy: expected the shape of y {y.shape}, got {dy.shape}")
    dx = np.empty_like(y)
    if y.size:
        cpu.softmax_rows_backward(y.reshape(-1, y.shape[-1]), dy, dx)
    return dx


def layer_norm(x, gamma=None, beta=None, epsilon=1e-3):
    """Layer normalization over the last axis of x (..., c): returns (y, xhat, inv) with
    xhat = (x - mean) / sqrt(var + epsilon) (population variance), y = xhat * gamma + beta (either
    None to leave it out) and inv (..., 1) the per-row 1 / sqrt(var + epsilon)."""
    cpu = _backend.cpu_only(x, gamma, beta, names=("x", "gamma", "beta"), what="layer_norm")
    x = _rows(x, "x")
    c = x.shape[-1]
    gamma, beta = _vector(gamma, "gamma", c), _vector(beta, "beta", c)
    if not epsilon >= 0:
        raise ValueError(f"epsilon: expected a non-negative number, got {epsilon!r}")
    y, xhat = np.empty_like(x), np.empty_like(x)
    inv = np.empty(x.shape[:-1] + (1,), np.float32)
    cpu.layer_norm_rows(x.reshape(-1, c), gamma, beta, float(epsilon), y, xhat, inv)
    return y, xhat, inv


def layer_norm_backward(dy, xhat, inv, gamma=None, *, need_dx=True, need_params=True):
    """Gradients of layer_norm from dy (..., c), its xhat and inv: (dx, dgamma, dbeta), dx None
    unless need_dx, dgamma / dbeta (c,) None unless need_params (dgamma also None without gamma)."""
    cpu = _backend.cpu_only(dy, xhat, inv, gamma, names=("dy", "xhat", "inv", "gamma"), what="layer_norm_backward")
    dy, xhat = _rows(dy, "dy"), _rows(xhat, "xhat")
    if xhat.shape != dy.shape:
        raise ValueError(f"xhat: expected the shape of dy {dy.shape}, got {xhat.shape}")
    c = dy.shape[-1]
    inv = _backend.as_array(inv, "inv")
    if inv.size != dy.size // c:
        raise ValueError(f"inv: expected one value per row ({dy.size // c}), got {inv.size}")
    gamma = _vector(gamma, "gamma", c)
    dx = np.empty_like(dy) if need_dx else None
    dgamma = np.empty(c, np.float32) if need_params and gamma is not None else None
    dbeta = np.empty(c, np.float32) if need_params else None
    cpu.layer_norm_rows_backward(dy.reshape(-1, c), xhat, inv, gamma, dx, dgamma, dbeta)
    return dx, dgamma, dbeta


def scatter_add_rows(target, indices, values):
    """target[indices[i], :] += values[i, :] in place, in order (np.add.at's sums, repeated indices
    accumulate): target a C-contiguous float32 (rows, d) NumPy array, indices integers in
    [-rows, rows) (negative ones count from the end), values (len(indices), d). Returns target."""
    cpu = _backend.cpu_only(target, values, names=("target", "values"), what="scatter_add_rows")
    if type(target) is not np.ndarray or target.dtype != np.float32 or target.ndim != 2:
        raise TypeError("target: expected a 2-D float32 NumPy array (it is updated in place)")
    if not target.flags.c_contiguous or not target.flags.writeable:
        raise ValueError("target: expected a writable C-contiguous array (it is updated in place)")
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices: expected integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False).ravel()
    rows = target.shape[0]
    if idx.size and idx.min() < 0:
        idx = np.where(idx < 0, idx + rows, idx)
    values = _backend.as_array(values, "values", ndim=2)
    if values.shape != (idx.size, target.shape[1]):
        raise ValueError(f"values: expected shape ({idx.size}, {target.shape[1]}), got {values.shape}")
    cpu.scatter_add_rows(target, np.ascontiguousarray(idx), values)
    return target
