"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot, and their
lowercase functions (``layers.add([a, b])``). Each is a ``call`` written with keras.ops, so its
gradient comes from the ops' rules."""

from __future__ import annotations

from .. import ops
from .base import Layer

__all__ = [
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Dot",
    "add",
    "subtract",
    "multiply",
    "average",
    "maximum",
    "minimum",
    "concatenate",
    "dot",
]


class _Merge(Layer):
    min_inputs = 2

    def _check(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < self.min_inputs:
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) expects a list of at least "
                f"{self.min_inputs} inputs, got {type(inputs).__name__}"
            )
        shapes = [tuple(ops.shape(x))[1:] for x in inputs]
        if self.same_shape and any(s != shapes[0] for s in shapes):
            raise ValueError(
                f"Layer {self.name!r} ({type(self).__name__}) requires inputs with matching shapes, "
                f"got shapes {[(None, *s) for s in shapes]}"
            )

    same_shape = True

    def build(self, input_shape):
        pass

    def call(self, inputs):
        self._check(inputs)
        out = inputs[0]
        for x in inputs[1:]:
            out = self._merge(out, x)
        return out


class Add(_Merge):
    def _merge(self, a, b):
        return ops.add(a, b)


class Subtract(_Merge):
    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"Layer {self.name!r} (Subtract) expects exactly 2 inputs")
        self._check(inputs)
        return ops.subtract(inputs[0], inputs[1])


class Multiply(_Merge):
    def _merge(self, a, b):
        return ops.multiply(a, b)


class Maximum(_Merge):
    def _merge(self, a, b):
        return ops.maximum(a, b)


class Minimum(_Merge):
    def _merge(self, a, b):
        return ops.minimum(a, b)


class Average(_Merge):
    def call(self, inputs):
        self._check(inputs)
        out = inputs[0]
        for x in inputs[1:]:
            out = ops.add(out, x)
        return ops.divide(out, float(len(inputs)))


class Concatenate(_Merge):
    same_shape = False

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def call(self, inputs):
        self._check(inputs)
        shapes = [tuple(ops.shape(x)) for x in inputs]
        rank = len(shapes[0])
        ax = self.axis % rank
        for s in shapes[1:]:
            if len(s) != rank or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i not in (0, ax)):
                raise ValueError(
                    f"Layer {self.name!r} (Concatenate) requires inputs with matching shapes except "
                    f"for the concatenation axis {self.axis}, got shapes {shapes}"
                )
        return ops.concatenate(list(inputs), axis=ax)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class Dot(_Merge):
    same_shape = False

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        self.axes = axes
        self.normalize = bool(normalize)

    def call(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError(f"Layer {self.name!r} (Dot) expects exactly 2 inputs")
        a, b = inputs
        ra, rb = len(ops.shape(a)), len(ops.shape(b))
        axes = self.axes if isinstance(self.axes, (list, tuple)) else (self.axes, self.axes)
        if ra != 2 or rb != 2 or tuple(a % 2 for a in axes) != (1, 1):
            raise NotImplementedError("Dot: only 2-D inputs over their feature axis (axes=1 or -1)")
        if ops.shape(a)[1] != ops.shape(b)[1]:
            raise ValueError(f"Layer {self.name!r} (Dot): dimension mismatch {ops.shape(a)} vs {ops.shape(b)}")
        if self.normalize:
            a, b = ops.normalize(a, axis=1), ops.normalize(b, axis=1)
        return ops.sum(ops.multiply(a, b), axis=1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "axes": self.axes, "normalize": self.normalize}


def _fn(cls):
    def f(inputs, **kwargs):
        return cls(**kwargs)(inputs)

    f.__name__ = cls.__name__.lower()
    return f


add, subtract, multiply, average = _fn(Add), _fn(Subtract), _fn(Multiply), _fn(Average)
maximum, minimum = _fn(Maximum), _fn(Minimum)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes, normalize=False, **kwargs):
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
