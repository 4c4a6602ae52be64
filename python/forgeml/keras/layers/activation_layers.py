"""ReLU, LeakyReLU, PReLU, ELU and Softmax as layers (Keras 3 arguments and defaults)."""

from __future__ import annotations

import numpy as np

from .. import activations, initializers
from ..activations_extra import ELU as _ELUAct, LeakyReLU as _LeakyAct
from .base import Layer

__all__ = ["ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"]


class _ActLayer(Layer):
    """Wraps an Activation object: y = act(x)."""

    def forward(self, x, training=False):
        self._x = x
        self._y = self._act.forward(x)
        return self._y

    def backward(self, dy, need_dx=True):
        return self._act.backward(dy.copy(), self._y, self._x) if need_dx else None


class ReLU(Layer):
    """max_value cap, negative_slope below threshold: x >= max: max; threshold <= x < max: x;
    x < threshold: negative_slope (x - threshold)."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if max_value is not None and max_value < 0:
            raise ValueError(f"max_value of a ReLU layer cannot be a negative value. Received: {max_value}")
        if negative_slope is None or negative_slope < 0:
            raise ValueError(f"negative_slope of a ReLU layer cannot be a negative value. Received: {negative_slope}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)

    def forward(self, x, training=False):
        xp = self.xp
        self._x = x
        y = xp.where(x >= self.threshold, x, self.negative_slope * (x - self.threshold))
        if self.max_value is not None:
            y = xp.minimum(y, self.max_value)
        return y.astype(x.dtype)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        x = self._x
        d = self.xp.where(x >= self.threshold, 1.0, self.negative_slope)
        if self.max_value is not None:
            d = self.xp.where(self.xp.where(x >= self.threshold, x, -np.inf) >= self.max_value, 0.0, d)
        return (dy * d).astype(dy.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


class LeakyReLU(_ActLayer):
    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # the Keras 2 name
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None or negative_slope < 0:
            raise ValueError(
                f"The negative_slope value of a Leaky ReLU layer cannot be None or negative value. "
                f"Expected a float. Received: negative_slope={negative_slope}"
            )
        self.negative_slope = float(negative_slope)
        self._act = _LeakyAct(self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(_ActLayer):
    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = float(alpha)
        self._act = _ELUAct(self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_ActLayer):
    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise NotImplementedError(f"Softmax: only axis=-1 is supported by forgeml.keras, got axis={axis}")
        self.axis = -1
        self._act = activations.softmax

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class PReLU(Layer):
    """x > 0: x; else alpha x with a learned alpha (shape of the input without the batch axis,
    size 1 on shared_axes)."""

    def __init__(
        self, alpha_initializer="zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None, **kwargs
    ):
        super().__init__(**kwargs)
        if alpha_regularizer is not None:
            raise NotImplementedError("PReLU: alpha_regularizer is not supported by forgeml.keras yet")
        self._set_constraints(alpha_constraint=alpha_constraint)
        self.alpha_initializer = initializers.get(alpha_initializer)
        if shared_axes is None:
            self.shared_axes = None
        else:
            self.shared_axes = [
                int(a) for a in (shared_axes if isinstance(shared_axes, (list, tuple)) else [shared_axes])
            ]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for ax in self.shared_axes or ():
            shape[ax - 1] = 1
        self.alpha = self.add_weight(tuple(shape), self.alpha_initializer, "alpha", constraint=self.alpha_constraint)

    def forward(self, x, training=False):
        self._x = x
        return self.xp.where(x > 0, x, self.alpha.value * x).astype(x.dtype)

    def backward(self, dy, need_dx=True):
        x = self._x
        if self._trainable:
            g = self.xp.where(x > 0, 0, dy * x).sum(axis=0)
            for ax in self.shared_axes or ():
                g = g.sum(axis=ax - 1, keepdims=True)
            self.alpha.grad[...] = g
        return self.xp.where(x > 0, dy, dy * self.alpha.value).astype(dy.dtype) if need_dx else None

    def get_config(self):
        return {
            **super().get_config(),
            "alpha_initializer": initializers.serialize(self.alpha_initializer),
            "alpha_regularizer": None,
            "shared_axes": self.shared_axes,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "alpha_initializer" in config:
            config["alpha_initializer"] = initializers.get(config["alpha_initializer"])
        return cls(**config)
