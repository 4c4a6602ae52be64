"""Fused training steps for stacks of Dense layers (csrc/cpu/dense_step): the whole forward,
softmax cross-entropy, backward and optimizer update of many steps in one call.

A network is described once by a ``DenseLayout`` (layer sizes, hidden activations and where each
kernel and bias sits in a flat float32 parameter vector); forgeml.keras builds it from a
Sequential of Dense layers. CPU (NumPy) only; callers fall back to the layer-by-layer path
elsewhere.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import _backend

__all__ = ["DenseLayout", "dense_train_steps", "dense_forward", "optimizer_update", "OPTIMIZERS", "HIDDEN_ACTIVATIONS"]

OPTIMIZERS = {"sgd": 0, "adam": 1, "rmsprop": 2}
HIDDEN_ACTIVATIONS = {None: 0, "linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3}


@dataclasses.dataclass(frozen=True)
class DenseLayout:
    """dims: (L + 1,) sizes; acts: (L,) hidden activation codes (the last layer emits logits);
    w_off / b_off: offsets of each kernel (dims[l], dims[l+1]) and bias (dims[l+1]) in the flat
    parameters (-1: no bias)."""
    dims: np.ndarray
    acts: np.ndarray
    w_off: np.ndarray
    b_off: np.ndarray

    @classmethod
    def build(cls, dims, activations, w_off, b_off, n_params):
        dims = np.ascontiguousarray(dims, dtype=np.int64)
        L = dims.size - 1
        if L < 1 or np.any(dims <= 0):
            raise ValueError(f"dims: expected at least two positive sizes, got {dims.tolist()}")
        try:
            acts = np.array([HIDDEN_ACTIVATIONS[a] for a in activations], dtype=np.intc)
        except KeyError as exc:
            raise ValueError(f"activations: expected {sorted(k for k in HIDDEN_ACTIVATIONS if k)} or None, "
                             f"got {exc.args[0]!r}") from None
        w_off = np.ascontiguousarray(w_off, dtype=np.int64)
        b_off = np.ascontiguousarray(b_off, dtype=np.int64)
        if acts.size != L or w_off.size != L or b_off.size != L:
            raise ValueError(f"activations, w_off, b_off: expected {L} entries each")
        ends = w_off + dims[:-1] * dims[1:]
        if np.any(w_off < 0) or np.any(ends > n_params) or np.any((b_off >= 0) & (b_off + dims[1:] > n_params)):
            raise ValueError("w_off, b_off: a kernel or bias lies outside the parameters")
        return cls(dims, acts, w_off, b_off)


def _f32_vector(a, name):
    if type(a) is not np.ndarray or a.dtype != np.float32 or a.ndim != 1 or not a.flags.c_contiguous:
        raise TypeError(f"{name}: expected a contiguous float32 NumPy vector (updated in place)")
    return a


def dense_train_steps(layout: DenseLayout, x, y, params, grads, *, optimizer: str, hyper: dict, slots: dict,
                      lrs, t0: int, batch_size: int, first_step: int = 0, steps: int | None = None, perm=None,
                      sample_weight=None):
    """Run `steps` training steps (default: all batches from first_step) of the Dense stack on
    x (n, dims[0]) float32 with integer labels y (n,) in [0, dims[-1]), rows taken in the order
    `perm` (default 0..n-1). params, grads and the slot arrays (Keras names: momentum, velocity,
    velocity_hat, average_gradient) are flat float32 vectors updated in place. lrs[s] is the
    learning rate of step s; t0 the optimizer's iteration count before the first step.
    Returns (sum of weighted losses, number of argmax hits, samples) as floats."""
    if _backend.is_cupy(x):
        raise TypeError("dense_train_steps runs on the CPU: x is a CuPy array")
    x = _backend.as_array(x, "x", ndim=2)
    n = x.shape[0]
    if x.shape[1] != layout.dims[0]:
        raise ValueError(f"x: expected shape (n, {layout.dims[0]}), got {x.shape}")
    y = np.ascontiguousarray(y, dtype=np.int64)
    if y.shape != (n,):
        raise ValueError(f"y: expected shape ({n},), got {y.shape}")
    params, grads = _f32_vector(params, "params"), _f32_vector(grads, "grads")
    if grads.size != params.size:
        raise ValueError("grads: expected the size of params")
    if isinstance(batch_size, bool) or int(batch_size) <= 0:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    batch_size = int(batch_size)
    total = -(-n // batch_size)
    steps = total - first_step if steps is None else int(steps)
    if first_step < 0 or steps < 0 or first_step + steps > total:
        raise ValueError(f"steps: {first_step} + {steps} exceeds the {total} batches of {n} rows")
    if perm is not None:
        perm = np.ascontiguousarray(perm, dtype=np.int64)
        if perm.shape != (n,):
            raise ValueError(f"perm: expected shape ({n},), got {perm.shape}")
    if sample_weight is not None:
        sample_weight = np.ascontiguousarray(sample_weight, dtype=np.float64).reshape(-1)
        if sample_weight.shape != (n,):
            raise ValueError(f"sample_weight: expected shape ({n},), got {sample_weight.shape}")
    lrs = np.ascontiguousarray(np.broadcast_to(np.asarray(lrs, dtype=np.float64), (steps,)))
    try:
        kind = OPTIMIZERS[optimizer]
    except KeyError:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {optimizer!r}") from None
    return _backend.cpu.dense_train_steps(x, perm, y, sample_weight, params, grads, layout.dims, layout.acts,
                                          layout.w_off, layout.b_off, batch_size, int(first_step), steps, kind,
                                          hyper, slots, lrs, int(t0))


def dense_forward(layout: DenseLayout, x, params, *, softmax=True, batch_size=1024, out=None):
    """Probabilities (softmax=True) or logits (n, dims[-1]) of the Dense stack for x (n, dims[0])."""
    if _backend.is_cupy(x):
        raise TypeError("dense_forward runs on the CPU: x is a CuPy array")
    x = _backend.as_array(x, "x", ndim=2)
    if x.shape[1] != layout.dims[0]:
        raise ValueError(f"x: expected shape (n, {layout.dims[0]}), got {x.shape}")
    shape = (x.shape[0], int(layout.dims[-1]))
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out: expected a contiguous float32 array of shape {shape}")
    _backend.cpu.dense_forward(x, _f32_vector(params, "params"), layout.dims, layout.acts, layout.w_off,
                               layout.b_off, int(batch_size), bool(softmax), out)
    return out


def optimizer_update(params, grads, *, optimizer: str, hyper: dict, slots: dict, lr: float, t: int):
    """One SGD / Adam(W) / RMSprop step (Keras 3 rules, no clipping) in place on flat float32
    vectors: params, grads and the slot arrays (same length)."""
    params, grads = _f32_vector(params, "params"), _f32_vector(grads, "grads")
    try:
        kind = OPTIMIZERS[optimizer]
    except KeyError:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {optimizer!r}") from None
    _backend.cpu.optimizer_update(params, grads, kind, hyper, slots, float(lr), int(t))
