"""Sequence masks in losses and metrics, as Keras 3 applies them.

When a model's output carries a mask (Embedding(mask_zero=True) or Masking upstream, passed on by
recurrent, Dense and TimeDistributed layers), Keras weights each time step by the mask: a loss
becomes sum(loss * sample_weight * mask) / (number of real steps) -- the mask scaled by
total / valid under the sum-over-batch-size reduction -- and mean metrics (accuracy, mae, ...)
average over the real steps only. Here every (sample, step) pair becomes one row: the
predictions (N, T, ...) are viewed as (N*T, ...), the targets likewise, and the weights are
sample_weight x mask (x total / valid for a loss). The losses' own ``step`` then gives values and
gradients unchanged.

mask: bool (N, T), True where the step is real.
"""

from __future__ import annotations

import numpy as np

from .backend import xp_of

__all__ = ["MaskedRows", "masked_rows", "mask_weights"]


class MaskedRows:
    """y, y_pred and weights with one row per (sample, step); ``steps`` = T."""

    __slots__ = ("y", "y_pred", "weights", "n", "steps")

    def __init__(self, y, y_pred, weights, n, steps):
        self.y, self.y_pred, self.weights, self.n, self.steps = y, y_pred, weights, n, steps


def mask_weights(mask, sample_weight, for_loss):
    """(N, T) float64 weights: mask (x total / valid for a loss) x sample_weight per sample."""
    xp = xp_of(mask)
    w = mask.astype(np.float64)
    if for_loss:
        valid = float(w.sum())
        w *= (w.size / valid) if valid else 0.0
    if sample_weight is not None:
        w *= xp.asarray(sample_weight, dtype=np.float64).reshape(-1, 1)
    return w


def masked_rows(y, y_pred, sample_weight, mask, for_loss):
    """The (sample, step) rows for a prediction that carries a mask, or None when the mask does
    not cover the prediction's first two axes (then nothing is masked, as before)."""
    if mask is None or y_pred.ndim < 3 or tuple(mask.shape) != tuple(y_pred.shape[:2]):
        return None
    n, t = mask.shape
    rows = n * t
    if y.shape[:2] == (n, t) and y.ndim >= 2:
        y2 = y.reshape(rows, *y.shape[2:])
    elif y.shape[0] == rows:  # sparse labels already flattened by prepare_targets
        y2 = y
    else:
        return None
    w = mask_weights(mask, sample_weight, for_loss).reshape(-1)
    return MaskedRows(y2, y_pred.reshape(rows, *y_pred.shape[2:]), w, n, t)
