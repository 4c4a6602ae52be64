"""``apply_gradients(zip(grads, variables))``: the Keras / TensorFlow update of a list of variables,
for custom training loops and models trained through the tape. Slots (momenta) are kept per
variable; the update rule is the optimizer's own (the fused C++ kernel where the optimizer has
one, else its ``update_step``), so both paths give the same numbers as the flat-buffer path."""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autodiff import tape as _tape

__all__ = ["apply_gradients"]


def _slots_for(opt, var):
    store = opt.__dict__.setdefault("_var_slots", {})
    entry = store.get(id(var))
    if entry is None or entry[0] is not var:
        xp = backend.xp_of(var.value)
        entry = (var, {k: xp.zeros(var.value.size, np.float32) for k in opt.slot_names})
        store[id(var)] = entry
    return entry[1]


def _clip(opt, pairs):
    if opt.clipvalue is not None:
        return [(backend.xp_of(g).clip(g, -opt.clipvalue, opt.clipvalue), v) for g, v in pairs]
    if opt.clipnorm is not None:
        out = []
        for g, v in pairs:
            n = math.sqrt(float((g.astype(np.float64) ** 2).sum()))
            out.append((g * (opt.clipnorm / n) if n > opt.clipnorm else g, v))
        return out
    if opt.global_clipnorm is not None:
        n = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g, _ in pairs))
        if n > opt.global_clipnorm:
            return [(g * (opt.global_clipnorm / n), v) for g, v in pairs]
    return pairs


def apply_gradients(opt, grads_and_vars):
    from . import _KERNEL_TYPES
    pairs = []
    for g, v in grads_and_vars:
        if g is None:
            continue
        if not getattr(v, "_is_variable", False):
            raise TypeError(f"apply_gradients: expected (gradient, Variable) pairs, got a {type(v).__name__}")
        if not v.trainable:
            continue
        gv = backend.to_xp(_tape.value_of(g), backend.xp_of(v.value), dtype=np.float32).reshape(-1)
        if gv.size != v.value.size:
            raise ValueError(f"apply_gradients: gradient of shape {tuple(np.shape(_tape.value_of(g)))} for "
                             f"variable {v.path!r} of shape {v.shape}")
        pairs.append((gv, v))
    if not pairs:
        raise ValueError("apply_gradients: no gradients provided for any variable")
    pairs = _clip(opt, pairs)
    lr = opt._current_lr()
    spec = opt.kernel_spec() if type(opt) in _KERNEL_TYPES else None
    t = opt.iterations.value + 1
    for g, v in pairs:
        if not v.value.flags.c_contiguous if hasattr(v.value, "flags") else False:
            v.value = backend.xp_of(v.value).ascontiguousarray(v.value)
        p = v.value.reshape(-1)
        slots = _slots_for(opt, v)
        if spec is not None and backend.xp_of(p) is np:
            from ... import ops
            hyper = {**spec[1], "clipnorm": 0.0, "clipvalue": 0.0, "global_clipnorm": 0.0}
            ops.optimizer_update(p, np.ascontiguousarray(g), optimizer=spec[0], hyper=hyper, slots=slots, lr=lr, t=t)
            continue
        if opt.weight_decay:
            p -= p * (opt.weight_decay * lr)
        opt.update_step(p, g, lr, slots, backend.xp_of(p).empty_like(p))
    opt.iterations.value += 1
