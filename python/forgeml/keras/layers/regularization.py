"""Dropout: inverted dropout, the mask kept for backward."""
from __future__ import annotations

import numpy as np

from .. import utils
from .base import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= float(rate) <= 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float value between "
                             f"0 and 1. Received: rate={rate}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def forward(self, x, training=False):
        self._mask = None
        if not training or self.rate == 0:
            return x
        rng = self._rng or utils.global_rng()
        shape = x.shape if self.noise_shape is None else tuple(
            x.shape[i] if s is None else s for i, s in enumerate(self.noise_shape))
        keep = rng.random(shape, dtype=np.float32) >= self.rate
        if self.xp is not np:
            keep = self.xp.asarray(keep)
        self._mask = keep
        self._scale = 1.0 / (1.0 - self.rate) if self.rate < 1 else 0.0
        y = self.xp.multiply(x, keep, out=self._buffer("y", x.shape, x.dtype))
        y *= self._scale
        from .masking import attach, mask_of
        return attach(y, mask_of(x))  # a mask passes through dropout

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self._mask is not None:
            dy *= self._mask
            dy *= self._scale
        return dy

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}
