"""Variable: a weight's value (float32, on the model's device) and its gradient buffer. Inside a
tape, ops read a Variable as a leaf tensor; the arithmetic operators dispatch to keras.ops."""

from __future__ import annotations

from . import backend
from .autodiff import tape as _tape
from .ops import _install_operators

__all__ = ["Variable"]


class Variable:
    """A weight: ``value`` (float32, on the model's device) and ``grad`` of the same shape.

    Inside a built model both are views into the model's flat buffers, so they are updated in
    place (``assign``), never rebound by layers."""

    __slots__ = ("name", "value", "grad", "trainable", "path", "constraint", "version")
    _is_variable = True  # the tape lifts variables read inside a GradientTape into leaves
    __array_priority__ = 1000

    def __init__(self, value, name: str, trainable: bool = True, path: str = ""):
        self.value = value
        self.grad = None
        self.name = name
        self.trainable = trainable
        self.path = path or name
        self.constraint = None  # keras.constraints: projected after each optimizer step
        self.version = 0  # bumped by assign and apply_gradients: caches derived from the value check it

    @property
    def shape(self):
        return tuple(self.value.shape)

    @property
    def dtype(self):
        return self.value.dtype

    def numpy(self):
        return backend.to_numpy(self.value).copy()

    def assign(self, new):
        new = backend.to_xp(_tape.value_of(new), _xp_of(self.value), dtype=self.value.dtype)
        if tuple(new.shape) != self.shape and new.size == self.value.size == 1:
            new = new.reshape(self.shape)  # a scalar for a scalar variable
        if tuple(new.shape) != self.shape:
            raise ValueError(f"Variable {self.path!r}: expected shape {self.shape}, got {tuple(new.shape)}")
        self.value[...] = new
        self.version += 1

    def __array__(self, dtype=None, copy=None):
        a = backend.to_numpy(self.value)
        return a.astype(dtype) if dtype is not None else a

    def assign_add(self, delta):
        self.assign(self.value + backend.to_xp(_tape.value_of(delta), _xp_of(self.value), dtype=self.value.dtype))

    def assign_sub(self, delta):
        self.assign(self.value - backend.to_xp(_tape.value_of(delta), _xp_of(self.value), dtype=self.value.dtype))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .. import ops

        fn = getattr(ops, ufunc.__name__, None) if method == "__call__" and not kwargs else None
        if fn is None:  # no rule: compute on the values (nothing to differentiate here)
            return getattr(ufunc, method)(*(_tape.value_of(a) for a in inputs), **kwargs)
        return fn(*inputs)

    def __repr__(self):
        return f"<Variable path={self.path} shape={self.shape} dtype={self.dtype}>"


def _xp_of(a):
    return backend.xp_of(a)


_install_operators(Variable)
