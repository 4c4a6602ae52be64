"""Losses on the tape: a built-in loss is one node whose VJP is its hand-written gradient; a loss
function or a Loss subclass's ``call`` (written with keras.ops) records its own ops, and its
per-sample values are reduced as Keras does (sum over batch size, sample weights)."""

from __future__ import annotations

import numpy as np

from . import backend
from .autodiff import tape as _tape
from .autodiff.tape import Tensor
from .loss_mask import mask_weights, masked_rows
from .ops import numpy as knp

__all__ = ["apply_loss"]


def _as_target(y, like):
    v = _tape.value_of(y)
    xp = backend.xp_of(_tape.value_of(like))
    a = backend.to_xp(v, xp)
    return a.astype(np.float32) if a.dtype == np.float64 else a


def _builtin_loss_node(loss, y, y_pred, sw, mask=None):
    """A built-in loss as one tape node: value total/n, VJP its hand-written gradient. A sequence
    mask makes each (sample, step) a row weighted as Keras does (loss_mask.py)."""
    pv = _tape.value_of(y_pred)
    n = pv.shape[0]
    yt = loss.prepare_targets(_as_target(y, pv), pv.shape)
    swv = None if sw is None else backend.to_xp(sw, backend.xp_of(pv), dtype=np.float64).reshape(-1)
    p32 = pv.astype(np.float32, copy=False)
    rows = masked_rows(yt, p32, swv, mask, True)
    if rows is not None:
        n = rows.n * rows.steps
        total, g = loss.step(rows.y, rows.y_pred, rows.weights, n)
        g = g.reshape(pv.shape)
    else:
        total, g = loss.step(yt, p32, swv, n)
    value = np.float32(total / max(n, 1))
    if type(y_pred) is not Tensor:
        return value
    return Tensor(backend.xp_of(pv).asarray(value), (y_pred,), lambda gr: (g * gr,), type(loss).__name__)


def _reduce(per, sw, who, mask=None):
    """Keras's sum_over_batch_size: the (weighted) mean of what a loss function returned."""
    v = _tape.value_of(per)
    if np.ndim(v) == 0:
        return per
    if mask is not None and tuple(v.shape) == tuple(mask.shape):  # per-step values of a masked output
        w = mask_weights(mask, sw, True).astype(v.dtype)
        return knp.divide(knp.sum(knp.multiply(per, w)), float(v.size))
    if sw is not None:
        swv = backend.to_xp(sw, backend.xp_of(v), dtype=v.dtype).reshape(-1)
        if v.ndim > 1:
            per = knp.mean(per, axis=tuple(range(1, v.ndim)))
        if v.shape[0] != swv.shape[0]:
            raise ValueError(
                f"{who}: returned shape {tuple(v.shape)}, expected one value per sample ({swv.shape[0]}) to weight"
            )
        return knp.divide(knp.sum(knp.multiply(per, swv)), float(v.shape[0]))
    return knp.mean(per)


def apply_loss(loss, y, y_pred, sw=None, mask=None):
    """The scalar loss for one output (a Tensor when y_pred is one); mask: the output's sequence
    mask (N, T) or None."""
    if getattr(loss, "_is_builtin_loss", lambda: False)():
        return _builtin_loss_node(loss, y, y_pred, sw, mask)
    fn = loss.call if hasattr(loss, "_is_builtin_loss") else loss
    who = f"loss {getattr(loss, 'name', getattr(loss, '__name__', type(loss).__name__))!r}"
    per = fn(_as_target(y, y_pred), y_pred)
    if per is None or not hasattr(_tape.value_of(per), "shape") and not isinstance(per, (float, int)):
        raise ValueError(f"{who}: expected an array of per-sample losses or a scalar, got {type(per).__name__}")
    v = _tape.value_of(per)
    batch = _tape.value_of(y_pred).shape[0]
    if np.ndim(v) and v.shape[0] != batch:
        raise ValueError(
            f"{who}: returned shape {tuple(v.shape)}; a loss must return a scalar or one value per "
            f"sample (leading dimension {batch})"
        )
    return _reduce(per, sw, who, mask)
