"""LayerNormalization, GroupNormalization and UnitNormalization (channels last), forward and
backward side by side. Statistics are per sample, so training and inference compute the same."""

from __future__ import annotations

import numpy as np

from .. import initializers
from .base import Layer

__all__ = ["LayerNormalization", "GroupNormalization", "UnitNormalization"]


def _row_kernels():
    """forgeml.ops.rows, imported on first use (keeps ``import forgeml.keras`` free of the kernels)."""
    from ...ops import rows

    return rows


def _norm_backward(dxhat, xhat, inv, axes):
    """dx for xhat = (x - mean) * inv with mean and variance over `axes`."""
    m = dxhat.mean(axis=axes, keepdims=True)
    mx = (dxhat * xhat).mean(axis=axes, keepdims=True)
    return inv * (dxhat - m - xhat * mx)


class _AffineNorm(Layer):
    def __init__(
        self,
        epsilon,
        center,
        scale,
        beta_initializer,
        gamma_initializer,
        beta_regularizer,
        gamma_regularizer,
        beta_constraint,
        gamma_constraint,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._set_constraints(beta_constraint=beta_constraint, gamma_constraint=gamma_constraint)
        from .. import regularizers

        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)

    def _affine_weights(self, c):
        self.gamma = (
            self.add_weight((c,), self.gamma_initializer, "gamma", constraint=self.gamma_constraint)
            if self.scale
            else None
        )
        self.beta = (
            self.add_weight((c,), self.beta_initializer, "beta", constraint=self.beta_constraint)
            if self.center
            else None
        )

    def _affine(self, xhat):
        y = xhat * self.gamma.value if self.scale else xhat.copy()
        if self.center:
            y += self.beta.value
        return y

    def _affine_backward(self, dy, xhat):
        lead = tuple(range(dy.ndim - 1))
        if self._trainable:
            if self.scale:
                self.gamma.grad[...] = (dy * xhat).sum(axis=lead)
            if self.center:
                self.beta.grad[...] = dy.sum(axis=lead)
        return dy * self.gamma.value if self.scale else dy

    def get_config(self):
        from .. import regularizers

        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": initializers.serialize(self.beta_initializer),
            "gamma_initializer": initializers.serialize(self.gamma_initializer),
            "beta_regularizer": regularizers.serialize(self.beta_regularizer),
            "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
        }

    @classmethod
    def from_config(cls, config):
        from .. import regularizers

        config = dict(config)
        for k in ("beta_initializer", "gamma_initializer"):
            if k in config:
                config[k] = initializers.get(config[k])
        for k in ("beta_regularizer", "gamma_regularizer"):
            if config.get(k) is not None:
                config[k] = regularizers.get(config[k])
        return cls(**config)


class LayerNormalization(_AffineNorm):
    """Normalise each sample over the last axis: (x - mean) / sqrt(var + eps), then gamma, beta."""

    def __init__(
        self,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        rms_scaling=False,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        super().__init__(
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
            **kwargs,
        )
        if rms_scaling:
            raise NotImplementedError("LayerNormalization: rms_scaling=True is not supported by forgeml.keras yet")
        self.axis, self.rms_scaling = axis, False

    def build(self, input_shape):
        if self.axis not in (-1, len(input_shape) - 1, [-1], (-1,)):
            raise NotImplementedError(f"LayerNormalization: only the last axis is supported, got axis={self.axis}")
        self._affine_weights(input_shape[-1])

    def forward(self, x, training=False):
        if type(x) is np.ndarray and x.dtype == np.float32 and x.size:  # forgeml's row kernel
            gamma = self.gamma.value if self.scale else None
            beta = self.beta.value if self.center else None
            y, self._xhat, self._inv = _row_kernels().layer_norm(x, gamma, beta, self.epsilon)
            return y
        mean = x.mean(axis=-1, keepdims=True)
        d = x - mean
        inv = 1.0 / self.xp.sqrt((d * d).mean(axis=-1, keepdims=True) + self.epsilon)
        self._xhat, self._inv = d * inv, inv
        return self._affine(self._xhat)

    def backward(self, dy, need_dx=True):
        if type(dy) is np.ndarray and dy.dtype == np.float32 and type(self._xhat) is np.ndarray and dy.size:
            dx, dgamma, dbeta = _row_kernels().layer_norm_backward(
                dy,
                self._xhat,
                self._inv,
                self.gamma.value if self.scale else None,
                need_dx=need_dx,
                need_params=self._trainable,
            )
            if dgamma is not None:
                self.gamma.grad[...] = dgamma
            if dbeta is not None and self.center:
                self.beta.grad[...] = dbeta
            return dx
        dxhat = self._affine_backward(dy, self._xhat)
        return _norm_backward(dxhat, self._xhat, self._inv, -1) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "rms_scaling": self.rms_scaling}


class GroupNormalization(_AffineNorm):
    """Channels split into `groups`; each sample normalised over (spatial axes, channels of a group)."""

    def __init__(
        self,
        groups=32,
        axis=-1,
        epsilon=1e-3,
        center=True,
        scale=True,
        beta_initializer="zeros",
        gamma_initializer="ones",
        beta_regularizer=None,
        gamma_regularizer=None,
        beta_constraint=None,
        gamma_constraint=None,
        **kwargs,
    ):
        super().__init__(
            epsilon,
            center,
            scale,
            beta_initializer,
            gamma_initializer,
            beta_regularizer,
            gamma_regularizer,
            beta_constraint,
            gamma_constraint,
            **kwargs,
        )
        self.groups, self.axis = int(groups), axis

    def build(self, input_shape):
        if self.axis not in (-1, len(input_shape) - 1):
            raise NotImplementedError(f"GroupNormalization: only the last axis is supported, got axis={self.axis}")
        c = input_shape[-1]
        if c % self.groups:
            raise ValueError(f"Number of groups ({self.groups}) must be a multiple of the number of channels ({c}).")
        self._affine_weights(c)

    def _grouped(self, a):
        n, c = a.shape[0], a.shape[-1]
        return a.reshape(n, -1, self.groups, c // self.groups)

    def forward(self, x, training=False):
        g = self._grouped(x)
        mean = g.mean(axis=(1, 3), keepdims=True)
        d = g - mean
        inv = 1.0 / self.xp.sqrt((d * d).mean(axis=(1, 3), keepdims=True) + self.epsilon)
        self._gxhat, self._inv, self._shape = d * inv, inv, x.shape
        return self._affine(self._gxhat.reshape(x.shape))

    def backward(self, dy, need_dx=True):
        dxhat = self._affine_backward(dy, self._gxhat.reshape(self._shape))
        if not need_dx:
            return None
        return _norm_backward(self._grouped(dxhat), self._gxhat, self._inv, (1, 3)).reshape(self._shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis}


class UnitNormalization(Layer):
    """x / ||x|| over the last axis (norm floored at 1e-6, Keras's epsilon on the squared sum 1e-12)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1, [-1], (-1,)):
            raise NotImplementedError(f"UnitNormalization: only axis=-1 is supported, got axis={axis}")
        self.axis = -1

    def forward(self, x, training=False):
        sq = (x * x).sum(axis=-1, keepdims=True)
        self._norm = self.xp.sqrt(self.xp.maximum(sq, 1e-12)).astype(x.dtype)
        self._floored = sq < 1e-12
        self._y = x / self._norm
        return self._y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        proj = (dy * self._y).sum(axis=-1, keepdims=True) * self._y
        return self.xp.where(self._floored, dy, dy - proj) / self._norm

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
