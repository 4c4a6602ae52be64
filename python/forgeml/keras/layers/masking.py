"""Masks that travel with arrays, and the Masking layer.

Keras attaches a mask to a tensor (``_keras_mask``); NumPy/CuPy arrays take no attributes, so a
producer (Embedding(mask_zero=True), Masking, an RNN with return_sequences) records
``(array, mask)`` here and the next layer asks ``mask_of(x)``. An entry answers only for the very
array object it was recorded with, and only the last few entries are kept: a mask lives for the
hop from one layer to the next, as in a forward pass.

mask: bool (N, T), True where the time step is real.
"""

from __future__ import annotations

from collections import OrderedDict

from .base import Layer

__all__ = ["attach", "mask_of", "Masking"]

_KEEP = 32
_MASKS: OrderedDict = OrderedDict()


def attach(out, mask):
    """Record `mask` for the array `out` (None forgets it); returns `out`."""
    key = id(out)
    _MASKS.pop(key, None)
    if mask is not None:
        _MASKS[key] = (out, mask)
        while len(_MASKS) > _KEEP:
            _MASKS.popitem(last=False)
    return out


def mask_of(x):
    entry = _MASKS.get(id(x))
    return entry[1] if entry is not None and entry[0] is x else None


class Masking(Layer):
    """Masks the time steps whose features all equal mask_value (and zeroes them, as Keras)."""

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def forward(self, x, training=False):
        xp = self.xp
        keep = xp.any(x != self.mask_value, axis=-1)
        self._keep = keep[..., None].astype(x.dtype)
        return attach(x * self._keep, keep)

    def backward(self, dy, need_dx=True):
        return dy * self._keep if need_dx else None

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


def as_bool_mask(xp, mask, n, t):
    """A user or upstream mask as bool (N, T); None when every step is real (nothing to mask)."""
    if mask is None:
        return None
    m = xp.asarray(mask).astype(bool)
    if m.shape != (n, t):
        raise ValueError(f"mask: expected shape {(n, t)}, got {tuple(m.shape)}")
    return None if bool(m.all()) else m
