"""SpatialDropout1D/2D, GaussianNoise, GaussianDropout and ActivityRegularization.

The noise layers act only when training; their masks or noise are kept for backward.
ActivityRegularization leaves its input unchanged and adds a penalty on it to the loss (the
per-sample mean, as Keras divides an activity penalty by the batch size); regularizers.py finds
the penalty in ``_activity_loss``.
"""

from __future__ import annotations

import numpy as np

from .. import utils
from . import masking
from .base import Layer

__all__ = ["SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"]


def _check_rate(rate):
    if not 0 <= float(rate) <= 1:
        raise ValueError(
            f"Invalid value received for argument `rate`. Expected a float value between 0 and 1. Received: rate={rate}"
        )
    return float(rate)


class _Noise(Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _random(self):
        return self._rng or utils.global_rng()

    def _to_xp(self, a):
        return a if self.xp is np else self.xp.asarray(a)

    def forward(self, x, training=False):
        self._factor = None
        if not training:
            return x
        self._factor = self._to_xp(self._draw(x.shape).astype(x.dtype))
        return masking.attach(x * self._factor if self._multiplies else x + self._factor, masking.mask_of(x))

    _multiplies = True

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return dy * self._factor if self._factor is not None and self._multiplies else dy


class SpatialDropout1D(_Noise):
    """Drops whole channels: one keep/drop draw per (sample, channel) for (N, T, C)."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.rate = _check_rate(rate)

    def _draw(self, shape):
        keep = self._random().random((shape[0],) + (1,) * (len(shape) - 2) + (shape[-1],)) >= self.rate
        return np.broadcast_to(keep / (1 - self.rate) if self.rate < 1 else keep * 0.0, shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class SpatialDropout2D(SpatialDropout1D):
    """Drops whole feature maps of (N, H, W, C)."""


class GaussianNoise(_Noise):
    """x + N(0, stddev^2) noise."""

    _multiplies = False

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        if not 0 <= stddev:
            raise ValueError(
                f"Invalid value received for argument `stddev`. Expected a float value >= 0. Received: stddev={stddev}"
            )
        self.stddev = float(stddev)

    def _draw(self, shape):
        return self._random().normal(0.0, self.stddev, shape)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Noise):
    """x * N(1, rate / (1 - rate)) noise."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.rate = _check_rate(rate)

    def _draw(self, shape):
        if not 0 < self.rate < 1:
            return np.ones(shape)
        return self._random().normal(1.0, np.sqrt(self.rate / (1 - self.rate)), shape)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class ActivityRegularization(Layer):
    """Identity; adds (l1 sum|x| + l2 sum x^2) / batch size to the loss."""

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        from ..regularizers import L1L2

        self.l1, self.l2 = float(l1), float(l2)
        self._reg = L1L2(self.l1, self.l2)
        self._activity_loss = 0.0

    def forward(self, x, training=False):
        self._x = x
        self._activity_loss = self._reg(x) / max(x.shape[0], 1)
        return x

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return dy + self._reg.grad(self._x) / max(self._x.shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}
