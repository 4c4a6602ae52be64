"""``apply_gradients(zip(grads, variables))``: the Keras / TensorFlow update of a list of variables,
for custom training loops and models trained through the tape. The variables are bound to the
optimizer as one flat buffer (the model's packed weights where they already are one), so clipping,
weight decay and the update (the fused C++ kernel, else ``update_step``) are the flat path's own."""

from __future__ import annotations

import numpy as np

from .. import backend, constraints
from ..autodiff import tape as _tape

__all__ = ["apply_gradients"]


def _flat_binding(opt, variables):
    """One flat parameter buffer for these variables, in this order: the views they already are (a
    built model packs its weights) or a new buffer they become views of. The optimizer is bound to it
    once, so a step is the same few whole-array passes as in fit."""
    key = tuple(id(v) for v in variables)
    cached = opt.__dict__.get("_binding")
    if cached is not None and cached[0] == key and all(v.value is val for v, val in zip(variables, cached[1])):
        return cached[2], cached[3]
    xp = backend.xp_of(variables[0].value)
    sizes = [int(v.value.size) for v in variables]
    base = variables[0].value.base
    start = 0
    if base is not None and xp is np:
        start = (variables[0].value.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 4
    off, views = start, True
    for v, n in zip(variables, sizes):
        a = v.value
        if (
            base is None
            or a.base is not base
            or not a.flags.c_contiguous
            or (a.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 4 != off
        ):
            views = False
            break
        off += n
    total = sum(sizes)
    if views and xp is np and base.dtype == np.float32 and base.ndim == 1:
        params = base[start : start + total]
    else:
        params = xp.empty(total, np.float32)
        off = 0
        for v, n in zip(variables, sizes):
            params[off : off + n] = v.value.reshape(-1)
            v.value = params[off : off + n].reshape(v.shape)
            off += n
    grads = xp.zeros(total, np.float32)
    segments, off = [], 0
    for n in sizes:
        segments.append((off, off + n))
        off += n
    if opt._params is None or opt._params.shape != params.shape or opt.__dict__.get("_binding") is None:
        opt._params = None  # fresh slots for a new variable list
    opt.build(params, grads, segments, [(0, total)])
    pending = opt.__dict__.pop("_pending_slots", None)
    for k, s in opt.slots.items() if pending else ():  # state restored by load_model
        if k in pending and tuple(pending[k].shape) == tuple(s.shape):
            s[...] = xp.asarray(pending[k])
    opt.__dict__["_binding"] = (key, [v.value for v in variables], params, grads)
    return params, grads


def apply_gradients(opt, grads_and_vars):
    pairs = []
    for g, v in grads_and_vars:
        if g is None:
            continue
        if not getattr(v, "_is_variable", False):
            raise TypeError(f"apply_gradients: expected (gradient, Variable) pairs, got a {type(v).__name__}")
        if not v.trainable:
            continue
        v.version += 1  # updated below: derived caches (sparse kernels) are stale
        gv = backend.to_xp(_tape.value_of(g), backend.xp_of(v.value), dtype=np.float32).reshape(-1)
        if gv.size != v.value.size:
            raise ValueError(
                f"apply_gradients: gradient of shape {tuple(np.shape(_tape.value_of(g)))} for "
                f"variable {v.path!r} of shape {v.shape}"
            )
        pairs.append((gv, v))
    if not pairs:
        raise ValueError("apply_gradients: no gradients provided for any variable")
    variables = [v for _, v in pairs]
    _, flat_grads = _flat_binding(opt, variables)
    off = 0
    for g, _ in pairs:
        n = g.size
        flat_grads[off : off + n] = g
        off += n
    opt._apply_flat()
    constraints.apply(variables)  # Keras 3 projects constrained variables right after the update
