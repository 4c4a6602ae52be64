"""Recurrent sequences with Keras 3 semantics: SimpleRNN, LSTM and GRU (reset_after=True).

x is (N, T, F) (batch, time, features); H is the number of units; float32 compute. Weights use
Keras' layouts and gate orders, so they move between a Keras layer and these ops unchanged:

=========  ==================  ======================  ==========  ===========
cell       kernel              recurrent_kernel        bias        gate order
=========  ==================  ======================  ==========  ===========
SimpleRNN  (F, H)              (H, H)                  (H,)        -
LSTM       (F, 4H)             (H, 4H)                 (4H,)       i, f, c, o
GRU        (F, 3H)             (H, 3H)                 (2, 3H)     z, r, h
=========  ==================  ======================  ==========  ===========

Each forward returns the whole output sequence y (N, T, H) and the final state(s); with
``return_cache=True`` it also returns an opaque cache for the matching ``*_grad`` function, which
returns a :class:`RecurrentGrads` of the gradients of x, the three weights and the initial states.
NumPy arrays run on the CPU kernels, CuPy arrays on the CUDA kernels (same contract).
``precision="bf16"`` (CPU only) runs every matrix product of the forward and of the grad — the
input projection, the per-step recurrent product and the dx / dkernel / drecurrent_kernel
products — with its operands rounded to bfloat16 (nearest even) and float32 sums, as
``matmul(..., precision="bf16")``; gate math, states and dbias stay float32.
Initial states default to zeros. A layer with ``go_backwards`` reverses x along T before calling
(and y after); ``return_sequences=False`` takes ``h_T``. The cache keeps references to x and the
forward buffers: do not modify x in place between a forward and its grad.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from .._backend import as_array, backend_of, check_shape
from .._backend import cuda_stream as _stream
from .._backend import device_ptr as _ptr

__all__ = ["simple_rnn", "lstm", "gru", "simple_rnn_grad", "lstm_grad", "gru_grad", "RecurrentGrads",
           "RecurrentCache"]

RecurrentGrads = namedtuple("RecurrentGrads", "dx dkernel drecurrent_kernel dbias dh0 dc0")
RecurrentGrads.__doc__ = ("Gradients of a recurrent sequence: x (N, T, F), kernel, recurrent_kernel, "
                          "bias and the initial states (dc0 is None except for LSTM).")

_SIMPLE, _LSTM, _GRU = 0, 1, 2
_NAMES = {_SIMPLE: "simple_rnn", _LSTM: "lstm", _GRU: "gru"}
_GATES = {_SIMPLE: 1, _LSTM: 4, _GRU: 3}
_FORCE_PARTS = 0  # tests: split the hidden units into this many thread parts (0: by size)
_FORCE_LSTM_ROWS = -1  # tests: float32 LSTM forward threads on row blocks (1) or unit parts (0); -1: by size
_ACTS = {"tanh": 0, "sigmoid": 1, "relu": 2, "linear": 3, None: 3}


class RecurrentCache:
    """What a forward keeps for its backward (permuted weights and per-step gates); opaque."""

    __slots__ = ("cell", "act", "arrays", "shape", "device", "precision")

    def __init__(self, cell, act, arrays, shape, device, precision=None):
        self.cell, self.act, self.arrays, self.shape, self.device = cell, act, arrays, shape, device
        self.precision = precision

    def __repr__(self):
        n, t, f, h = self.shape
        p = "" if self.precision is None else f", precision={self.precision!r}"
        return f"RecurrentCache({_NAMES[self.cell]}, N={n}, T={t}, F={f}, H={h}, device={self.device}{p})"


_PRECISIONS = (None, "float32", "bf16")


def _precision(precision, kind):
    """None / "float32" -> None, "bf16" -> "bf16"; anything else is a ValueError. CuPy arrays have
    no bf16 recurrent kernels yet."""
    if precision is not None and not (isinstance(precision, str) and precision in _PRECISIONS):
        raise ValueError(f"precision: expected one of {_PRECISIONS}, got {precision!r}")
    p = None if precision in (None, "float32") else precision
    if p == "bf16" and kind == "cuda":
        raise NotImplementedError("precision: 'bf16' recurrent sequences run on the CPU kernels only (NumPy "
                                  "input); pass precision=None for CuPy arrays")
    return p



def _forward_cuda(mod, cell, act, x, kernel, recurrent_kernel, bias, h0, c0):
    import cupy as cp
    n, t, f = x.shape
    h = recurrent_kernel.shape[0]
    gh = _GATES[cell] * h
    h0 = cp.zeros((n, h), cp.float32) if h0 is None else h0
    c0 = cp.zeros((n, h), cp.float32) if c0 is None else c0
    y, xg, aux = cp.empty((n, t, h), cp.float32), cp.empty((n, t, gh), cp.float32), cp.empty((n, t, h), cp.float32)
    scratch = cp.empty((n, gh), cp.float32)
    mod.rnn_forward(cell, act, n, t, f, h, *map(_ptr, (x, kernel, recurrent_kernel, bias, h0, c0, y, xg, aux, scratch)),
                    _stream())
    return {"y": y, "xg": xg, "aux": aux, "kernel": kernel, "recurrent_kernel": recurrent_kernel, "h0": h0, "c0": c0}


def _grad_cuda(mod, cache, dy, dh_T, dc_T):
    import cupy as cp
    n, t, f, h = cache.shape
    cell, a = cache.cell, cache.arrays
    gh = _GATES[cell] * h
    e = lambda *shape: cp.empty(shape, cp.float32)  # noqa: E731
    dx, dk, dr, dbias, dh0, dc0 = e(n, t, f), e(f, gh), e(h, gh), e(2 if cell == _GRU else 1, gh), e(n, h), e(n, h)
    da, db, hprev = e(n, t, gh), e(n, t, gh) if cell == _GRU else None, e(n, t, h)
    mod.rnn_backward(cell, cache.act, n, t, f, h,
                     *map(_ptr, (a["x"], a["kernel"], a["recurrent_kernel"], a["h0"], a["c0"], a["y"], a["xg"],
                                 a["aux"], dy, dh_T, dc_T, dx, dk, dr, dbias, dh0, dc0, da, db, hprev)), _stream())
    return dx, dk, dr, dbias if cell == _GRU else dbias[0], dh0, dc0


def _forward(cell, x, kernel, recurrent_kernel, bias, h0, c0, act, return_cache, precision):
    names = ("x", "kernel", "recurrent_kernel", "bias", "h0", "c0")
    kind, mod = backend_of(x, kernel, recurrent_kernel, bias, h0, c0, names=names)
    precision = _precision(precision, kind)
    g = _GATES[cell]
    x = as_array(x, "x", ndim=3)
    recurrent_kernel = as_array(recurrent_kernel, "recurrent_kernel", ndim=2)
    h = recurrent_kernel.shape[0]
    check_shape(recurrent_kernel, "recurrent_kernel", (h, g * h))
    n, t, f = x.shape
    kernel = as_array(kernel, "kernel", ndim=2)
    check_shape(kernel, "kernel", (f, g * h))
    bias = as_array(bias, "bias")
    if cell == _GRU:
        if bias.shape == (g * h,):
            raise ValueError(f"bias: expected shape (2, {g * h}) (GRU with reset_after=True: input and "
                             f"recurrent bias rows), got {bias.shape}; reset_after=False is not supported")
        check_shape(bias, "bias", (2, g * h))
    else:
        check_shape(bias, "bias", (g * h,))
    if h0 is not None:
        h0 = as_array(h0, "h0", ndim=2)
        check_shape(h0, "h0", (n, h))
    if c0 is not None:
        c0 = as_array(c0, "c0", ndim=2)
        check_shape(c0, "c0", (n, h))
    if kind == "cuda":
        out = _forward_cuda(mod, cell, act, x, kernel, recurrent_kernel, bias, h0, c0)
        xp = __import__("cupy")
    else:
        out = mod.rnn_forward(cell, act, x, kernel, recurrent_kernel, bias, h0, c0, _FORCE_PARTS, return_cache,
                              precision == "bf16", _FORCE_LSTM_ROWS)
        out.update(h0=h0, c0=c0)
        xp = np
    y = out["y"]
    if t > 0:
        h_t = y[:, -1].copy()
        c_t = (out["c_T"] if kind == "cpu" else out["aux"][:, -1].copy()) if cell == _LSTM else None
    else:
        h_t = h0.copy() if h0 is not None else xp.zeros((n, h), xp.float32)
        c_t = (c0.copy() if c0 is not None else xp.zeros((n, h), xp.float32)) if cell == _LSTM else None
    result = (y, h_t) if cell != _LSTM else (y, h_t, c_t)
    if not return_cache:
        return result
    out["x"] = x
    return (*result, RecurrentCache(cell, act, out, (n, t, f, h), kind, precision))


def _grad(cell, cache, dy, dh_T, dc_T, precision):
    if not isinstance(cache, RecurrentCache):
        raise TypeError(f"cache: expected the cache a forward returned with return_cache=True, "
                        f"got {type(cache).__name__}")
    if cache.cell != cell:
        raise ValueError(f"cache: it comes from {_NAMES[cache.cell]}, not {_NAMES[cell]}")
    n, t, f, h = cache.shape
    kind, mod = backend_of(cache.arrays["y"], dy, dh_T, dc_T, names=("cache", "dy", "dh_T", "dc_T"))
    precision = cache.precision if precision is None else _precision(precision, kind)
    if dy is not None:
        dy = as_array(dy, "dy", ndim=3)
        check_shape(dy, "dy", (n, t, h))
    if dh_T is not None:
        dh_T = as_array(dh_T, "dh_T", ndim=2)
        check_shape(dh_T, "dh_T", (n, h))
    if dc_T is not None:
        dc_T = as_array(dc_T, "dc_T", ndim=2)
        check_shape(dc_T, "dc_T", (n, h))
    a = cache.arrays
    if kind == "cuda":
        dx, dk, dr, db, dh0, dc0 = _grad_cuda(mod, cache, dy, dh_T, dc_T)
        return RecurrentGrads(dx, dk, dr, db, dh0, dc0 if cell == _LSTM else None)
    dx, dk, dr, db, dh0, dc0 = mod.rnn_backward(
        cell, cache.act, a["split"], a["x"], a["kernel"], a["recurrent_kernel"], a["h0"], a["c0"], a["y"],
        a["xg"], a["aux"], dy, dh_T, dc_T, precision == "bf16")
    return RecurrentGrads(dx, dk, dr, db, dh0, dc0 if cell == _LSTM else None)


def simple_rnn(x, kernel, recurrent_kernel, bias, h0=None, activation="tanh", return_cache=False, precision=None):
    """Keras SimpleRNN over a whole sequence: h_t = act(x_t·kernel + h_{t-1}·recurrent_kernel + bias).

    x (N, T, F), kernel (F, H), recurrent_kernel (H, H), bias (H,), h0 (N, H) or None (zeros);
    activation is 'tanh', 'sigmoid', 'relu' or 'linear' (None). Returns (y (N, T, H), h_T (N, H)),
    plus the cache for :func:`simple_rnn_grad` when return_cache is true. precision: None /
    "float32", or "bf16" (the products on bf16 operands, float32 sums; CPU only)."""
    if activation not in _ACTS:
        raise ValueError(f"activation: expected one of 'tanh', 'sigmoid', 'relu', 'linear' or None, got {activation!r}")
    return _forward(_SIMPLE, x, kernel, recurrent_kernel, bias, h0, None, _ACTS[activation], return_cache, precision)


def lstm(x, kernel, recurrent_kernel, bias, h0=None, c0=None, return_cache=False, precision=None):
    """Keras LSTM over a whole sequence (gates i, f, c, o; sigmoid gates, tanh cell activation).

    z = x_t·kernel + h_{t-1}·recurrent_kernel + bias split in four H-wide blocks;
    c_t = σ(z_f)·c_{t-1} + σ(z_i)·tanh(z_c); h_t = σ(z_o)·tanh(c_t).
    x (N, T, F), kernel (F, 4H), recurrent_kernel (H, 4H), bias (4H,), h0/c0 (N, H) or None.
    Returns (y (N, T, H), h_T, c_T), plus the cache for :func:`lstm_grad` when return_cache is true.
    precision: None / "float32", or "bf16" (the products on bf16 operands, float32 sums; CPU only)."""
    return _forward(_LSTM, x, kernel, recurrent_kernel, bias, h0, c0, 0, return_cache, precision)


def gru(x, kernel, recurrent_kernel, bias, h0=None, return_cache=False, precision=None):
    """Keras GRU with reset_after=True over a whole sequence (gates z, r, h).

    a = x_t·kernel + bias[0], b = h_{t-1}·recurrent_kernel + bias[1]; z = σ(a_z + b_z),
    r = σ(a_r + b_r), h~ = tanh(a_h + r·b_h), h_t = z·h_{t-1} + (1 - z)·h~.
    x (N, T, F), kernel (F, 3H), recurrent_kernel (H, 3H), bias (2, 3H), h0 (N, H) or None.
    Returns (y (N, T, H), h_T), plus the cache for :func:`gru_grad` when return_cache is true.
    precision: None / "float32", or "bf16" (the products on bf16 operands, float32 sums; CPU only)."""
    return _forward(_GRU, x, kernel, recurrent_kernel, bias, h0, None, 0, return_cache, precision)


def simple_rnn_grad(cache, dy, dh_T=None, precision=None):
    """Backward of :func:`simple_rnn`: dy (N, T, H) or None, dh_T (N, H) or None -> RecurrentGrads.
    precision: None runs the products in the forward's precision (the cache's); "float32" or
    "bf16" chooses."""
    return _grad(_SIMPLE, cache, dy, dh_T, None, precision)


def lstm_grad(cache, dy, dh_T=None, dc_T=None, precision=None):
    """Backward of :func:`lstm`: dy (N, T, H) or None, dh_T/dc_T (N, H) or None -> RecurrentGrads.
    precision: None runs the products in the forward's precision (the cache's); "float32" or
    "bf16" chooses."""
    return _grad(_LSTM, cache, dy, dh_T, dc_T, precision)


def gru_grad(cache, dy, dh_T=None, precision=None):
    """Backward of :func:`gru`: dy (N, T, H) or None, dh_T (N, H) or None -> RecurrentGrads.
    precision: None runs the products in the forward's precision (the cache's); "float32" or
    "bf16" chooses."""
    return _grad(_GRU, cache, dy, dh_T, None, precision)
