"""The ``tf.*`` names tf.keras tutorials use beside keras, for ``import forgeml as tf`` programs.

Tensors are NumPy arrays here: ``tf.constant`` makes one (Python floats become float32, as in
TensorFlow), and the reductions / casts / one_hot / argmax are the NumPy operations with
TensorFlow's argument names and defaults. ``tf.random.set_seed`` seeds forgeml.keras.
"""

from __future__ import annotations

import types

import numpy as np

__all__ = [
    "constant",
    "convert_to_tensor",
    "cast",
    "reduce_mean",
    "reduce_sum",
    "reduce_max",
    "reduce_min",
    "reduce_prod",
    "reduce_any",
    "reduce_all",
    "one_hot",
    "argmax",
    "argmin",
    "reshape",
    "expand_dims",
    "squeeze",
    "concat",
    "stack",
    "matmul",
    "transpose",
    "shape",
    "zeros",
    "ones",
    "zeros_like",
    "ones_like",
    "range",
    "exp",
    "log",
    "sqrt",
    "square",
    "abs",
    "maximum",
    "minimum",
    "clip_by_value",
    "random",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool",
    "string",
    "is_tensor",
    "Tensor",
    "math",
    "newaxis",
]

float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, uint8 = np.int8, np.int16, np.int32, np.int64, np.uint8
bool = np.bool_  # noqa: A001  (tf.bool)
string = np.str_
newaxis = None
Tensor = np.ndarray


def _dtype(dtype):
    return None if dtype is None else np.dtype(dtype)


def constant(value, dtype=None, shape=None, name=None):
    a = np.asarray(value, dtype=_dtype(dtype))
    if dtype is None and a.dtype == np.float64:
        a = a.astype(np.float32)
    if dtype is None and a.dtype == np.int64 and not isinstance(value, np.ndarray):
        a = a.astype(np.int32)  # Python ints become int32 tensors in TensorFlow
    if shape is not None:
        a = np.broadcast_to(a, tuple(shape)).copy() if a.size == 1 else a.reshape(tuple(shape))
    return a


def convert_to_tensor(value, dtype=None, dtype_hint=None, name=None):
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return constant(value, dtype or (dtype_hint if not hasattr(value, "dtype") else None))


def is_tensor(x):
    return isinstance(x, np.ndarray)


def cast(x, dtype, name=None):
    return np.asarray(x).astype(np.dtype(dtype))


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def reduce_mean(input_tensor, axis=None, keepdims=False, name=None):
    a = np.asarray(input_tensor)
    r = a.mean(axis=_axis(axis), keepdims=keepdims)
    return r.astype(a.dtype) if a.dtype.kind == "f" else r.astype(a.dtype)  # TF keeps the dtype (ints truncate)


def reduce_sum(input_tensor, axis=None, keepdims=False, name=None):
    a = np.asarray(input_tensor)
    return a.sum(axis=_axis(axis), keepdims=keepdims).astype(a.dtype)


def reduce_max(input_tensor, axis=None, keepdims=False, name=None):
    return np.asarray(input_tensor).max(axis=_axis(axis), keepdims=keepdims)


def reduce_min(input_tensor, axis=None, keepdims=False, name=None):
    return np.asarray(input_tensor).min(axis=_axis(axis), keepdims=keepdims)


def reduce_prod(input_tensor, axis=None, keepdims=False, name=None):
    a = np.asarray(input_tensor)
    return a.prod(axis=_axis(axis), keepdims=keepdims).astype(a.dtype)


def reduce_any(input_tensor, axis=None, keepdims=False, name=None):
    return np.asarray(input_tensor).any(axis=_axis(axis), keepdims=keepdims)


def reduce_all(input_tensor, axis=None, keepdims=False, name=None):
    return np.asarray(input_tensor).all(axis=_axis(axis), keepdims=keepdims)


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype=None, name=None):
    idx = np.asarray(indices).astype(np.int64)
    on = 1 if on_value is None else on_value
    off = 0 if off_value is None else off_value
    out = np.where(idx[..., None] == np.arange(depth), on, off).astype(np.dtype(dtype or np.float32))
    return out if axis in (None, -1) else np.moveaxis(out, -1, axis)


def argmax(input, axis=None, output_type=np.int64, name=None):  # noqa: A002  (TensorFlow's name)
    return np.asarray(input).argmax(axis=0 if axis is None else axis).astype(output_type)


def argmin(input, axis=None, output_type=np.int64, name=None):  # noqa: A002
    return np.asarray(input).argmin(axis=0 if axis is None else axis).astype(output_type)


def reshape(tensor, shape, name=None):
    return np.reshape(tensor, tuple(shape))


def expand_dims(input, axis, name=None):  # noqa: A002
    return np.expand_dims(input, axis)


def squeeze(input, axis=None, name=None):  # noqa: A002
    return np.squeeze(input, axis=_axis(axis))


def concat(values, axis, name="concat"):
    return np.concatenate([np.asarray(v) for v in values], axis=axis)


def stack(values, axis=0, name="stack"):
    return np.stack([np.asarray(v) for v in values], axis=axis)


def matmul(a, b, transpose_a=False, transpose_b=False, name=None):
    a, b = np.asarray(a), np.asarray(b)
    return (np.swapaxes(a, -1, -2) if transpose_a else a) @ (np.swapaxes(b, -1, -2) if transpose_b else b)


def transpose(a, perm=None, name="transpose"):
    return np.transpose(a, perm)


def shape(input, out_type=np.int32, name=None):  # noqa: A002
    return np.asarray(np.shape(input), dtype=out_type)


def zeros(shape, dtype=np.float32, name=None):
    return np.zeros(tuple(np.atleast_1d(shape)) if not isinstance(shape, int) else (shape,), dtype)


def ones(shape, dtype=np.float32, name=None):
    return np.ones(tuple(np.atleast_1d(shape)) if not isinstance(shape, int) else (shape,), dtype)


def zeros_like(input, dtype=None, name=None):  # noqa: A002
    return np.zeros_like(input, dtype=_dtype(dtype))


def ones_like(input, dtype=None, name=None):  # noqa: A002
    return np.ones_like(input, dtype=_dtype(dtype))


def range(start, limit=None, delta=1, dtype=None, name="range"):  # noqa: A001
    out = np.arange(start, limit, delta) if limit is not None else np.arange(start)
    if dtype is not None:
        return out.astype(np.dtype(dtype))
    return out.astype(np.int32) if out.dtype.kind == "i" else out.astype(np.float32)


def exp(x, name=None):
    return np.exp(x)


def log(x, name=None):
    return np.log(x)


def sqrt(x, name=None):
    return np.sqrt(x)


def square(x, name=None):
    return np.square(x)


def abs(x, name=None):  # noqa: A001
    return np.abs(x)


def maximum(x, y, name=None):
    return np.maximum(x, y)


def minimum(x, y, name=None):
    return np.minimum(x, y)


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    return np.clip(t, clip_value_min, clip_value_max)


def _set_seed(seed):
    from .keras import utils

    utils.set_random_seed(seed)


def _random_normal(shape, mean=0.0, stddev=1.0, dtype=np.float32, seed=None, name=None):
    from .keras import random as krandom

    return krandom.normal(shape, mean, stddev, dtype, seed)


def _random_uniform(shape, minval=0, maxval=None, dtype=np.float32, seed=None, name=None):
    from .keras import random as krandom

    if np.dtype(dtype).kind in "iu":
        if maxval is None:
            raise ValueError("Must specify maxval for integer dtype")
        return krandom.randint(shape, minval, maxval, dtype, seed)
    return krandom.uniform(shape, minval, 1.0 if maxval is None else maxval, dtype, seed)


def _random_shuffle(value, seed=None, name=None):
    from .keras import random as krandom

    return krandom.shuffle(value, 0, seed)


random = types.SimpleNamespace(
    set_seed=_set_seed, normal=_random_normal, uniform=_random_uniform, shuffle=_random_shuffle
)
math = types.SimpleNamespace(
    reduce_mean=reduce_mean,
    reduce_sum=reduce_sum,
    reduce_max=reduce_max,
    reduce_min=reduce_min,
    exp=exp,
    log=log,
    sqrt=sqrt,
    square=square,
    abs=abs,
    maximum=maximum,
    minimum=minimum,
    argmax=argmax,
    argmin=argmin,
)
