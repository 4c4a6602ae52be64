"""BatchNormalization over the last axis (channels last), Keras defaults and weight order
(gamma, beta, moving_mean, moving_variance)."""
from __future__ import annotations

import numpy as np

from .. import initializers
from .base import Layer

__all__ = ["BatchNormalization"]


class BatchNormalization(Layer):
    """Training: normalise with the batch's mean and biased variance and update the moving
    statistics (moving = moving * momentum + batch * (1 - momentum)). Inference, or a frozen layer
    (trainable=False, as in Keras 3): use the moving statistics."""

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", moving_mean_initializer="zeros",
                 moving_variance_initializer="ones", beta_regularizer=None, gamma_regularizer=None,
                 beta_constraint=None, gamma_constraint=None, synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1,) and not isinstance(axis, int):
            raise ValueError(f"BatchNormalization: axis must be an int, got {axis!r}")
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self._set_constraints(beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape):
        ndim = len(input_shape)
        if self.axis not in (-1, ndim - 1):
            raise NotImplementedError(f"BatchNormalization: only the last axis is supported, got axis={self.axis} "
                                      f"for inputs of rank {ndim}")
        c = input_shape[-1]
        self.gamma = self.add_weight((c,), self.gamma_initializer, "gamma",
                                     constraint=self.gamma_constraint) if self.scale else None
        self.beta = self.add_weight((c,), self.beta_initializer, "beta",
                                    constraint=self.beta_constraint) if self.center else None
        self.moving_mean = self.add_weight((c,), self.moving_mean_initializer, "moving_mean", trainable=False)
        self.moving_variance = self.add_weight((c,), self.moving_variance_initializer, "moving_variance",
                                               trainable=False)

    def forward(self, x, training=False):
        xp = self.xp
        c = x.shape[-1]
        x2 = x.reshape(-1, c)
        self._shape = x.shape
        self._training = bool(training) and self._trainable
        if self._training:
            mean = x2.mean(axis=0, dtype=np.float64)
            var = x2.var(axis=0, dtype=np.float64)
            m = self.momentum
            self.moving_mean.value[...] = self.moving_mean.value * m + mean * (1 - m)
            self.moving_variance.value[...] = self.moving_variance.value * m + var * (1 - m)
        else:
            mean, var = self.moving_mean.value, self.moving_variance.value
        inv = (1.0 / xp.sqrt(var + self.epsilon)).astype(x.dtype)
        xhat = xp.subtract(x2, mean.astype(x.dtype), out=self._buffer("xhat", x2.shape, x.dtype))
        xhat *= inv
        self._xhat, self._inv = xhat, inv
        y = self._buffer("y", x2.shape, x.dtype)
        if self.scale:
            xp.multiply(xhat, self.gamma.value, out=y)
        else:
            y[...] = xhat
        if self.center:
            y += self.beta.value
        return y.reshape(self._shape)

    def backward(self, dy, need_dx=True):
        c = self._shape[-1]
        dy2 = dy.reshape(-1, c)
        xhat, inv = self._xhat, self._inv
        if self._trainable:
            if self.scale:
                (dy2 * xhat).sum(axis=0, out=self.gamma.grad)
            if self.center:
                dy2.sum(axis=0, out=self.beta.grad)
        if not need_dx:
            return None
        g = dy2 * self.gamma.value if self.scale else dy2.copy()
        if self._training:  # the batch statistics depend on x too
            n = dy2.shape[0]
            g -= g.mean(axis=0)
            g -= xhat * ((dy2 * self.gamma.value if self.scale else dy2) * xhat).sum(axis=0) / n
        g *= inv
        return g.reshape(self._shape)

    def get_config(self):
        ser = initializers.serialize
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                "center": self.center, "scale": self.scale, "beta_initializer": ser(self.beta_initializer),
                "gamma_initializer": ser(self.gamma_initializer),
                "moving_mean_initializer": ser(self.moving_mean_initializer),
                "moving_variance_initializer": ser(self.moving_variance_initializer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for k in ("beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer"):
            if k in config:
                config[k] = initializers.get(config[k])
        return cls(**config)
