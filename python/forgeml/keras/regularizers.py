"""keras.regularizers: L1, L2, L1L2 and OrthogonalRegularizer, each a penalty with its gradient.

A layer keeps ``<weight>_regularizer`` beside the weight (Dense.kernel_regularizer for
Dense.kernel, ...). The model adds every trainable layer's penalties to the loss it reports, and
their gradients to the weights' gradients after backward and before the optimizer step
(``add_penalties``), as Keras adds ``model.losses`` to the loss it differentiates.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "Regularizer",
    "L1",
    "L2",
    "L1L2",
    "OrthogonalRegularizer",
    "l1",
    "l2",
    "l1_l2",
    "orthogonal_regularizer",
    "get",
    "serialize",
    "deserialize",
    "penalty_total",
    "add_penalties",
]

# the weights a regularizer can sit on, by the attribute names layers use
WEIGHT_ATTRS = (
    "kernel",
    "bias",
    "recurrent_kernel",
    "embeddings",
    "depthwise_kernel",
    "pointwise_kernel",
    "gamma",
    "beta",
)


class Regularizer:
    def __call__(self, w) -> float:
        raise NotImplementedError

    def grad(self, w):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class L1L2(Regularizer):
    """l1 * sum|w| + l2 * sum w^2."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _validate(l1, "l1"), _validate(l2, "l2")

    def __call__(self, w):
        w = np.asarray(_host(w), np.float64)
        return float(self.l1 * np.abs(w).sum() + self.l2 * (w * w).sum())

    def grad(self, w):
        xp = _xp(w)
        g = xp.zeros_like(w)
        if self.l1:
            g += self.l1 * xp.sign(w)
        if self.l2:
            g += (2 * self.l2) * w
        return g

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """factor * mean over pairs of |<u_i, u_j>| for the L2-normalised rows (or columns) u of w."""

    def __init__(self, factor=0.01, mode="rows"):
        if mode not in ("rows", "columns"):
            raise ValueError(
                f"Invalid value for argument `mode`. Expected one of {{'rows', 'columns'}}. Received: mode={mode}"
            )
        self.factor, self.mode = _validate(factor, "factor"), mode

    def _rows(self, w):
        w = np.asarray(_host(w), np.float64)
        if w.ndim != 2:
            raise ValueError(f"Inputs to OrthogonalRegularizer must have rank 2. Received: inputs.shape={w.shape}")
        return w if self.mode == "rows" else w.T

    def __call__(self, w):
        r = self._rows(w)
        u = r / np.sqrt(np.maximum((r * r).sum(axis=1, keepdims=True), 1e-12))
        p = u @ u.T
        k = p.shape[0]
        return float(self.factor * 0.5 * np.abs(p * (1 - np.eye(k))).sum() / (k * (k - 1) / 2))

    def grad(self, w):
        r = self._rows(w)
        norm = np.sqrt(np.maximum((r * r).sum(axis=1, keepdims=True), 1e-12))
        u = r / norm
        k = u.shape[0]
        s = np.sign(u @ u.T) * (1 - np.eye(k))
        du = self.factor * 0.5 / (k * (k - 1) / 2) * 2 * (s @ u)
        dr = np.where(norm > np.sqrt(1e-12), (du - (du * u).sum(axis=1, keepdims=True) * u) / norm, du / norm)
        g = dr if self.mode == "rows" else dr.T
        return _xp(w).asarray(g.astype(np.float32))

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


def _validate(v, name):
    v = float(v)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"Value for argument `{name}` must be a non-negative float. Received: {name}={v}")
    return v


def _host(a):
    return a.get() if type(a).__module__.split(".", 1)[0] == "cupy" else a


def _xp(a):
    if type(a).__module__.split(".", 1)[0] == "cupy":
        import cupy

        return cupy
    return np


l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer
_BY_NAME = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer}
_BY_CLASS = {c.__name__: c for c in (L1, L2, L1L2, OrthogonalRegularizer)}


def get(identifier):
    """None, a Regularizer, a name ('l2'), a config dict, or any callable of a weight."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower()) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_CLASS.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}")
        return cls.from_config(identifier.get("config", {}))
    raise ValueError(f"Could not interpret regularizer identifier: {identifier!r}")


def serialize(reg):
    if reg is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(reg).__name__, "config": reg.get_config()}


def deserialize(config):
    return get(config)


def _pairs(layer):
    for attr in WEIGHT_ATTRS:
        reg = getattr(layer, attr + "_regularizer", None)
        var = getattr(layer, attr, None)
        if reg is not None and var is not None:
            yield reg, var
    for inner in getattr(layer, "_inner_layers", ()):  # wrappers (Bidirectional, TimeDistributed)
        yield from _pairs(inner)


def has_penalties(layers) -> bool:
    return any(hasattr(layer, "_activity_loss") or any(True for _ in _pairs(layer)) for layer in layers)


def penalty_total(layers) -> float:
    """The sum of every regularizer's penalty on the given layers' weights, plus the activity
    penalties their last forward recorded."""
    return sum(reg(var.value) for layer in layers for reg, var in _pairs(layer)) + sum(
        getattr(layer, "_activity_loss", 0.0) for layer in layers
    )


def add_penalties(layers):
    """Add each penalty's gradient to its weight's gradient (trainable layers only)."""
    for layer in layers:
        if layer.trainable:
            for reg, var in _pairs(layer):
                if var.grad is not None:
                    var.grad += reg.grad(var.value)
