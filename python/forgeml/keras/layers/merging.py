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
        sa, sb = ops.shape(a), ops.shape(b)
        ra, rb = len(sa), len(sb)
        axes = self.axes if isinstance(self.axes, (list, tuple)) else (self.axes, self.axes)
        a1, a2 = int(axes[0]) % ra, int(axes[1]) % rb
        if a1 == 0 or a2 == 0:
            raise ValueError(f"Layer {self.name!r} (Dot): cannot contract the batch axis, got axes={self.axes}")
        if sa[a1] != sb[a2]:
            raise ValueError(
                f"Layer {self.name!r} (Dot): dimension incompatibility using axes {self.axes}: "
                f"{sa[a1]} != {sb[a2]} (shapes {tuple(sa)} and {tuple(sb)})"
            )
        if self.normalize:
            a, b = ops.normalize(a, axis=a1), ops.normalize(b, axis=a2)
        # Keras's batch_dot: the free axes of the first input, then those of the second
        la = "b" + "".join("cdefghij"[i] for i in range(ra - 1))
        lb = "b" + "".join("klmnopqr"[i] for i in range(rb - 1))
        lb = lb[:a2] + la[a1] + lb[a2 + 1 :]
        out = "b" + "".join(c for c in la[1:] if c != la[a1]) + "".join(c for c in lb[1:] if c != la[a1])
        y = ops.einsum(f"{la},{lb}->{out}", a, b)
        return ops.expand_dims(y, -1) if len(out) == 1 else y

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
