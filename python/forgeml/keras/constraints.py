"""keras.constraints: MaxNorm, NonNeg, UnitNorm, MinMaxNorm and the Constraint base for your own.

A constraint is a projection of a weight, applied right after each optimizer update as Keras 3
does (``variable.assign(constraint(variable))``). A layer hands ``kernel_constraint=...`` to
``add_weight``, which stores it on the Variable; the trainers (models.py's step, the tape's
``apply_gradients``, traced.py's chain step) call ``apply`` on the variables they updated. A
model with constraints leaves the fused whole-epoch kernel, which cannot stop between steps.
"""

from __future__ import annotations

import numpy as np

from .registry import CUSTOM_OBJECTS, lookup

__all__ = [
    "Constraint",
    "MaxNorm",
    "NonNeg",
    "UnitNorm",
    "MinMaxNorm",
    "max_norm",
    "non_neg",
    "unit_norm",
    "min_max_norm",
    "get",
    "serialize",
    "deserialize",
    "apply",
]

EPSILON = 1e-7  # keras.backend.epsilon()


class Constraint:
    """Override ``__call__(w)`` to return the projected weight (an array of w's shape)."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _xp(w):
    if type(w).__module__.split(".", 1)[0] == "cupy":
        import cupy

        return cupy
    return np


def _norms(w, axis):
    xp = _xp(w)
    return xp.sqrt(xp.sum(xp.square(w), axis=_axis(axis), keepdims=True))


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _value(w):
    from .autodiff import tape as _tape

    v = _tape.value_of(w)
    return v.value if getattr(v, "_is_variable", False) else v


class MaxNorm(Constraint):
    """Each slice along ``axis`` (axis=0: the weights into one unit) rescaled to norm <= max_value."""

    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        w = _value(w)
        norms = _norms(w, self.axis)
        desired = _xp(w).clip(norms, 0, self.max_value)
        return w * (desired / (EPSILON + norms))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """max(w, 0)."""

    def __call__(self, w):
        w = _value(w)
        return _xp(w).maximum(w, 0)


class UnitNorm(Constraint):
    """Each slice along ``axis`` divided by its norm."""

    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        w = _value(w)
        return w / (EPSILON + _norms(w, self.axis))

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Norms moved to ``rate * clip(norm, min_value, max_value) + (1 - rate) * norm``."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        w = _value(w)
        norms = _norms(w, self.axis)
        desired = self.rate * _xp(w).clip(norms, self.min_value, self.max_value) + (1 - self.rate) * norms
        return w * (desired / (EPSILON + norms))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate, "axis": self.axis}


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
_BUILTIN = (Constraint, MaxNorm, NonNeg, UnitNorm, MinMaxNorm)
_BY_NAME = {c.__name__: c for c in _BUILTIN}
_BY_NAME.update(
    {
        "constraint": Constraint,
        "max_norm": MaxNorm,
        "non_neg": NonNeg,
        "unit_norm": UnitNorm,
        "min_max_norm": MinMaxNorm,
    }
)


def _fail(identifier):
    raise ValueError(f"Could not interpret constraint identifier: {identifier}")


def get(identifier):
    """None, a Constraint, any callable of a weight, a name ('max_norm', 'MaxNorm') or a config dict
    (the built-ins, and user classes registered with register_keras_serializable)."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier)
        return cls() if cls is not None else _fail(identifier)
    if isinstance(identifier, type):
        return identifier() if callable(identifier) else _fail(identifier)
    return identifier if callable(identifier) else _fail(identifier)


def serialize(constraint):
    if constraint is None:
        return None
    cls = type(constraint)
    if not hasattr(constraint, "get_config"):
        raise ValueError(
            f"Cannot serialize constraint {constraint!r}: give it get_config() (subclass "
            "keras.constraints.Constraint) and register its class"
        )
    out = {
        "module": "keras.constraints",
        "class_name": cls.__name__,
        "config": constraint.get_config(),
        "registered_name": None,
    }
    if cls not in _BUILTIN:
        out["module"] = cls.__module__
        out["registered_name"] = next((k for k, v in CUSTOM_OBJECTS.items() if v is cls and ">" in k), cls.__name__)
    return out


def deserialize(config, custom_objects=None):
    if config is None:
        return None
    if not isinstance(config, dict):
        return get(config)
    if "class_name" not in config:  # a dict that names no class (a damaged file): not a loop back into get
        _fail(config)
    name = config["class_name"]
    registered = config.get("registered_name")
    cls = (custom_objects or {}).get(name) or lookup(registered, name) or _BY_NAME.get(name)
    if cls is None:
        raise ValueError(
            f"Could not locate constraint class {name!r}: pass it in custom_objects or register it "
            "with @keras.saving.register_keras_serializable()"
        )
    return cls.from_config(dict(config.get("config") or {}))


def apply(variables):
    """Project each variable that carries a constraint (after an optimizer step)."""
    for var in variables:
        c = getattr(var, "constraint", None)
        if c is not None:
            var.assign(c(var.value))
