"""keras.ops: the Keras 3 ops namespace on NumPy (CPU) and CuPy (GPU) arrays, differentiable.

``keras.ops.numpy`` holds the NumPy-like ops, ``keras.ops.nn`` the activations, losses' building
blocks, conv and pooling; both are re-exported here, as in Keras. Importing this module also gives
tape Tensors and Variables their arithmetic operators (``x * w + b`` records on the tape).
"""

from __future__ import annotations

from . import nn, numpy
from .nn import *  # noqa: F401,F403
from .numpy import *  # noqa: F401,F403
from ..autodiff.tape import Tensor, value_of

__all__ = [*numpy.__all__, *nn.__all__, "nn", "numpy", "convert_to_numpy", "is_tensor"]


def convert_to_numpy(x):
    from ..backend import to_numpy

    return to_numpy(value_of(x))


def is_tensor(x):
    return type(x) is Tensor or hasattr(x, "__array_namespace__") or hasattr(x, "shape")


def _install_operators(cls):
    """x + y, x @ y, -x, x[i], x.T ... dispatch to the ops (so they record on the tape)."""
    ops = numpy
    pairs = {
        "add": ops.add,
        "sub": ops.subtract,
        "mul": ops.multiply,
        "truediv": ops.divide,
        "matmul": ops.matmul,
        "pow": ops.power,
    }
    for name, fn in pairs.items():
        setattr(cls, f"__{name}__", lambda a, b, fn=fn: fn(a, b))
        setattr(cls, f"__r{name}__", lambda a, b, fn=fn: fn(b, a))
    for name, fn in (
        ("lt", ops.less),
        ("le", ops.less_equal),
        ("gt", ops.greater),
        ("ge", ops.greater_equal),
        ("floordiv", ops.floor_divide),
        ("mod", ops.mod),
    ):
        setattr(cls, f"__{name}__", lambda a, b, fn=fn: fn(a, b))
    cls.__neg__ = lambda a: ops.negative(a)
    cls.__pos__ = lambda a: a
    cls.__abs__ = lambda a: ops.abs(a)
    cls.__getitem__ = lambda a, key: ops.get_item(a, key)
    cls.T = property(lambda a: ops.transpose(a))
    cls.reshape = lambda a, *shape: ops.reshape(a, shape[0] if len(shape) == 1 else shape)
    cls.sum = lambda a, axis=None, keepdims=False: ops.sum(a, axis, keepdims)
    cls.mean = lambda a, axis=None, keepdims=False: ops.mean(a, axis, keepdims)
    cls.astype = lambda a, dtype: ops.cast(a, dtype)


_install_operators(Tensor)
