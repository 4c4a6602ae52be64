"""Layers over sequences (N, T, C): Conv1D, 1-D pooling, global 1-D pooling (mask aware),
UpSampling1D, ZeroPadding1D, Cropping1D, RepeatVector and Permute.

Conv1D and the windowed pools run the 2-D kernels on an (N, 1, T, C) view of the input with a
(1, K) window, so they take the same CPU/CUDA code paths as Conv2D and MaxPooling2D.
"""

from __future__ import annotations

import numpy as np

from .. import activations, initializers, regularizers
from . import masking
from .base import Layer
from .convolutional import Conv2D, auto_name, check_data_format, conv_ops, normalize_tuple, out_size, reject_unsupported

__all__ = [
    "Conv1D",
    "Convolution1D",
    "MaxPooling1D",
    "AveragePooling1D",
    "MaxPool1D",
    "AvgPool1D",
    "GlobalAveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalAvgPool1D",
    "GlobalMaxPool1D",
    "UpSampling1D",
    "ZeroPadding1D",
    "Cropping1D",
    "RepeatVector",
    "Permute",
]


def _check_3d(layer, input_shape):
    if len(input_shape) != 3:
        raise ValueError(
            f"{type(layer).__name__} {layer.name!r}: expected input of shape (batch, steps, "
            f"channels), got {tuple(input_shape)}"
        )


class Conv1D(Layer):
    """y = activation(conv1d(x, kernel) + bias); kernel (K, C, filters). padding 'causal' pads
    (K - 1) * dilation zeros on the left only."""

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        data_format=None,
        dilation_rate=1,
        groups=1,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**auto_name(self, kwargs))
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(
                f"Invalid value for argument `filters`. Expected a strictly positive value. "
                f"Received filters={filters!r}."
            )
        reject_unsupported(
            "Conv1D",
            activity_regularizer=activity_regularizer,
        )
        self._set_constraints(kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        if groups != 1:
            raise NotImplementedError(f"Conv1D: groups={groups} is not supported by forgeml.keras yet (only 1)")
        p = padding.lower() if isinstance(padding, str) else padding
        if p not in ("valid", "same", "causal"):
            raise ValueError(f"The `padding` argument must be one of 'valid', 'same', 'causal'. Received: {padding!r}")
        self.filters, self.padding, self.groups = int(filters), p, 1
        self.kernel_size = normalize_tuple(kernel_size, 1, "kernel_size")
        self.strides = normalize_tuple(strides, 1, "strides")
        self.dilation_rate = normalize_tuple(dilation_rate, 1, "dilation_rate")
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(
                f"`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}"
            )
        self.data_format = check_data_format(data_format, "Conv1D")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"Conv1D {self.name!r}: expected input of shape (batch, steps, channels) with known "
                f"channels, got {tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            (self.kernel_size[0], input_shape[-1], self.filters),
            self.kernel_initializer,
            "kernel",
            constraint=self.kernel_constraint,
        )
        self.bias = (
            self.add_weight((self.filters,), self.bias_initializer, "bias", constraint=self.bias_constraint)
            if self.use_bias
            else None
        )
        self.compute_output_shape(input_shape)

    def _left_pad(self):
        return (self.kernel_size[0] - 1) * self.dilation_rate[0] if self.padding == "causal" else 0

    def compute_output_shape(self, input_shape):
        n, t = input_shape[:2]
        if t is not None:
            t = t + self._left_pad()
        pad = "valid" if self.padding == "causal" else self.padding
        ot = out_size(t, self.kernel_size[0], self.strides[0], self.dilation_rate[0], pad)
        if ot == 0:
            raise ValueError(
                f"Conv1D {self.name!r}: the kernel {self.kernel_size} is larger than the input "
                f"{tuple(input_shape)} with padding='valid'"
            )
        return (n, ot, self.filters)

    def _args(self):
        return {
            "strides": (1, self.strides[0]),
            "dilation": (1, self.dilation_rate[0]),
            "padding": "valid" if self.padding == "causal" else self.padding,
        }

    def forward(self, x, training=False):
        ops, act, xp = conv_ops(), self.activation, self.xp
        lp = self._left_pad()
        if lp:
            x = xp.concatenate([xp.zeros((x.shape[0], lp, x.shape[2]), x.dtype), x], axis=1)
        x4 = xp.ascontiguousarray(x[:, None])
        fused = act is activations.linear or (act.kernel is not None and not act.needs_input)
        z = ops.conv2d(
            x4,
            self.kernel.value[None],
            self.bias.value if self.use_bias else None,
            activation=act.kernel if fused else None,
            **self._args(),
        )[:, 0]
        self._x4 = x4
        self._z, self._y = (None, z) if fused else (z, act.forward(z))
        return self._y

    def backward(self, dy, need_dx=True):
        dz = self.activation.backward(dy.copy(), self._y, self._z)
        dx, dw, db = conv_ops().conv2d_grad(
            self._x4, self.kernel.value[None], self.xp.ascontiguousarray(dz[:, None]), need_dx=need_dx, **self._args()
        )
        if self._trainable:
            self.kernel.grad[...] = dw[0]
            if self.use_bias:
                self.bias.grad[...] = db
        return dx[:, 0, self._left_pad() :] if need_dx else None

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
            "groups": self.groups,
            "activation": self.activation.name,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
        }

    @classmethod
    def from_config(cls, config):
        return Conv2D.from_config.__func__(cls, config)  # the same initializer/regularizer lookups


Convolution1D = Conv1D


class _Pooling1D(Layer):
    _kind = ""

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.pool_size = normalize_tuple(pool_size, 1, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 1, "strides")
        p = padding.lower() if isinstance(padding, str) else padding
        if p not in ("valid", "same"):
            raise ValueError(f"The `padding` argument must be one of 'valid', 'same'. Received: {padding!r}")
        self.padding = p
        self.data_format = check_data_format(data_format, type(self).__name__)

    def build(self, input_shape):
        _check_3d(self, input_shape)
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape):
        n, t, c = input_shape
        ot = out_size(t, self.pool_size[0], self.strides[0], 1, self.padding)
        if ot == 0:
            raise ValueError(
                f"{type(self).__name__} {self.name!r}: pool_size {self.pool_size} is larger than the "
                f"input {tuple(input_shape)} with padding='valid'"
            )
        return (n, ot, c)

    def forward(self, x, training=False):
        self._x4 = self.xp.ascontiguousarray(x[:, None])
        fn = getattr(conv_ops(), f"{self._kind}_pool2d")
        return fn(self._x4, (1, self.pool_size[0]), (1, self.strides[0]), self.padding)[:, 0]

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        fn = getattr(conv_ops(), f"{self._kind}_pool2d_grad")
        return fn(
            self._x4, self.xp.ascontiguousarray(dy[:, None]), (1, self.pool_size[0]), (1, self.strides[0]), self.padding
        )[:, 0]

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "padding": self.padding,
            "strides": list(self.strides),
            "data_format": self.data_format,
        }


class MaxPooling1D(_Pooling1D):
    _kind = "max"


class AveragePooling1D(_Pooling1D):
    _kind = "avg"


class _GlobalPooling1D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.data_format = check_data_format(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)

    def build(self, input_shape):
        _check_3d(self, input_shape)

    def compute_output_shape(self, input_shape):
        n, c = input_shape[0], input_shape[-1]
        return (n, 1, c) if self.keepdims else (n, c)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over steps; with a mask, over the unmasked steps only (Keras)."""

    def forward(self, x, training=False):
        xp = self.xp
        n, t, c = x.shape
        m = masking.as_bool_mask(xp, masking.mask_of(x), n, t)
        self._shape = x.shape
        if m is None:
            self._w = xp.full((n, t, 1), 1.0 / max(t, 1), x.dtype)
        else:
            mf = m[..., None].astype(x.dtype)
            self._w = mf / mf.sum(axis=1, keepdims=True)
        y = (x * self._w).sum(axis=1, keepdims=True)
        return y if self.keepdims else y[:, 0]

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return (dy.reshape(self._shape[0], 1, self._shape[2]) * self._w).astype(dy.dtype)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over steps (Keras ignores masks here); tied maxima share the gradient evenly."""

    def forward(self, x, training=False):
        self._x = x
        self._m = x.max(axis=1, keepdims=True)
        return self._m if self.keepdims else self._m[:, 0]

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        n, c = self._x.shape[0], self._x.shape[2]
        hit = self._x == self._m
        share = dy.reshape(n, 1, c) / hit.sum(axis=1, keepdims=True, dtype=dy.dtype)
        return self.xp.multiply(hit, share, dtype=dy.dtype)  # in dy's dtype throughout (no float64 temporary)


MaxPool1D, AvgPool1D = MaxPooling1D, AveragePooling1D
GlobalAvgPool1D, GlobalMaxPool1D = GlobalAveragePooling1D, GlobalMaxPooling1D


class UpSampling1D(Layer):
    """Repeat each step `size` times."""

    def __init__(self, size=2, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.size = int(size)

    def compute_output_shape(self, input_shape):
        n, t, c = input_shape
        return (n, None if t is None else t * self.size, c)

    def forward(self, x, training=False):
        return self.xp.repeat(x, self.size, axis=1)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        n, t, c = dy.shape
        return dy.reshape(n, t // self.size, self.size, c).sum(axis=2)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _pair_1d(value, name):
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    out = tuple(int(v) for v in value)
    if len(out) != 2 or min(out) < 0:
        raise ValueError(f"`{name}` should be an int or a tuple of 2 non-negative ints. Received: {value!r}")
    return out


class ZeroPadding1D(Layer):
    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.padding = _pair_1d(padding, "padding")
        self.data_format = check_data_format(data_format, "ZeroPadding1D")

    def compute_output_shape(self, input_shape):
        n, t, c = input_shape
        return (n, None if t is None else t + sum(self.padding), c)

    def forward(self, x, training=False):
        a, b = self.padding
        return self.xp.pad(x, ((0, 0), (a, b), (0, 0)))

    def backward(self, dy, need_dx=True):
        a, b = self.padding
        return dy[:, a : dy.shape[1] - b] if need_dx else None

    def get_config(self):
        return {**super().get_config(), "padding": list(self.padding), "data_format": self.data_format}


class Cropping1D(Layer):
    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.cropping = _pair_1d(cropping, "cropping")

    def compute_output_shape(self, input_shape):
        n, t, c = input_shape
        if t is not None and t - sum(self.cropping) <= 0:
            raise ValueError(
                f"`cropping` parameter of `Cropping1D` layer must be smaller than the input length. "
                f"Received: input_shape={tuple(input_shape)}, cropping={self.cropping}"
            )
        return (n, None if t is None else t - sum(self.cropping), c)

    def forward(self, x, training=False):
        self._t = x.shape[1]
        a, b = self.cropping
        return x[:, a : x.shape[1] - b]

    def backward(self, dy, need_dx=True):
        a, b = self.cropping
        return self.xp.pad(dy, ((0, 0), (a, b), (0, 0))) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "cropping": list(self.cropping)}


class RepeatVector(Layer):
    """(N, F) -> (N, n, F)."""

    def __init__(self, n, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.n = int(n)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def forward(self, x, training=False):
        return self.xp.repeat(x[:, None], self.n, axis=1)

    def backward(self, dy, need_dx=True):
        return dy.sum(axis=1) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Permute(Layer):
    """Permute the non-batch axes; dims are 1-based as in Keras."""

    def __init__(self, dims, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.dims = tuple(int(d) for d in dims)
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                f"Invalid permutation argument `dims` for Permute Layer. The set of indices in `dims` "
                f"must be consecutive and start from 1. Received dims={dims}"
            )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *(input_shape[d] for d in self.dims))

    def forward(self, x, training=False):
        return x.transpose(0, *self.dims)

    def backward(self, dy, need_dx=True):
        inv = np.argsort((0, *self.dims))
        return dy.transpose(*inv) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}
