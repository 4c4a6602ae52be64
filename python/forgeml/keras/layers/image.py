"""Image layers around the conv kernels: Conv2DTranspose, UpSampling2D, ZeroPadding2D, Cropping2D
(channels last, (N, H, W, C)).

Conv2DTranspose is the transpose of Conv2D: its forward is Conv2D's input gradient
(forgeml.ops.conv2d_grad) and its input gradient is a plain Conv2D (forgeml.ops.conv2d) of dy, so
it runs on the same CPU/CUDA kernels. Kernel layout (KH, KW, filters, in_channels), as Keras.
"""

from __future__ import annotations

import numpy as np

from .. import activations, initializers, regularizers
from .base import Layer
from .convolutional import (
    Conv2D,
    auto_name,
    check_data_format,
    conv_ops,
    normalize_padding,
    normalize_tuple,
    reject_unsupported,
)

__all__ = ["Conv2DTranspose", "Convolution2DTranspose", "UpSampling2D", "ZeroPadding2D", "Cropping2D"]


class Conv2DTranspose(Layer):
    def __init__(
        self,
        filters,
        kernel_size,
        strides=(1, 1),
        padding="valid",
        output_padding=None,
        data_format=None,
        dilation_rate=(1, 1),
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
            "Conv2DTranspose",
            output_padding=output_padding,
            activity_regularizer=activity_regularizer,
        )
        self._set_constraints(kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size")
        self.strides = normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate")
        if max(self.dilation_rate) > 1:
            raise NotImplementedError("Conv2DTranspose: dilation_rate > 1 is not supported by forgeml.keras yet")
        self.data_format = check_data_format(data_format, "Conv2DTranspose")
        self.output_padding = None
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                f"Conv2DTranspose {self.name!r}: expected input of shape (batch, height, width, "
                f"channels) with known channels, got {tuple(input_shape)}"
            )
        kh, kw = self.kernel_size
        self.kernel = self.add_weight(
            (kh, kw, self.filters, input_shape[-1]),
            self.kernel_initializer,
            "kernel",
            constraint=self.kernel_constraint,
        )
        self.bias = (
            self.add_weight((self.filters,), self.bias_initializer, "bias", constraint=self.bias_constraint)
            if self.use_bias
            else None
        )

    def _size(self, n, k, s):
        if n is None:
            return None
        return n * s if self.padding == "same" else (n - 1) * s + k

    def compute_output_shape(self, input_shape):
        n, h, w = input_shape[:3]
        return (
            n,
            self._size(h, self.kernel_size[0], self.strides[0]),
            self._size(w, self.kernel_size[1], self.strides[1]),
            self.filters,
        )

    def _args(self):
        return {"strides": self.strides, "padding": self.padding}

    def forward(self, x, training=False):
        xp = self.xp
        out_shape = self.compute_output_shape(x.shape)
        zero = getattr(self, "_zero", None)
        if zero is None or zero.shape != out_shape or zero.dtype != x.dtype:
            zero = self._zero = xp.zeros(out_shape, x.dtype)  # only its shape matters to the kernel
        z = conv_ops().conv2d_grad(zero, self.kernel.value, x, **self._args())[0]
        if self.use_bias:
            z = z + self.bias.value
        self._x = x
        act = self.activation
        self._z, self._y = (None, z) if act is activations.linear else (z, act.forward(z))
        return self._y

    def backward(self, dy, need_dx=True):
        dz = self.activation.backward(dy.copy(), self._y, self._z)
        ops = conv_ops()
        if self._trainable:
            # sum(dz * convT(x, w)) == sum(conv(dz, w) * x): the kernel gradient of a conv of dz
            self.kernel.grad[...] = ops.conv2d_grad(dz, self.kernel.value, self._x, **self._args())[1]
            if self.use_bias:
                self.bias.grad[...] = dz.sum(axis=(0, 1, 2))
        return ops.conv2d(dz, self.kernel.value, None, **self._args()) if need_dx else None

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "output_padding": None,
            "data_format": self.data_format,
            "dilation_rate": list(self.dilation_rate),
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


Convolution2DTranspose = Conv2DTranspose


class UpSampling2D(Layer):
    """Nearest-neighbour upsampling: each pixel repeated size[0] x size[1] times."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.size = normalize_tuple(size, 2, "size")
        self.data_format = check_data_format(data_format, "UpSampling2D")
        if interpolation != "nearest":
            raise NotImplementedError(
                f"UpSampling2D: interpolation={interpolation!r} is not supported by forgeml.keras yet (only 'nearest')"
            )
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h * self.size[0], None if w is None else w * self.size[1], c)

    def forward(self, x, training=False):
        return self.xp.repeat(self.xp.repeat(x, self.size[0], axis=1), self.size[1], axis=2)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        n, h, w, c = dy.shape
        a, b = self.size
        return dy.reshape(n, h // a, a, w // b, b, c).sum(axis=(2, 4))

    def get_config(self):
        return {
            **super().get_config(),
            "size": list(self.size),
            "data_format": self.data_format,
            "interpolation": self.interpolation,
        }


def _pads(value, name):
    """int, (sym_h, sym_w) or ((top, bottom), (left, right)) -> ((t, b), (l, r))."""
    if isinstance(value, (int, np.integer)):
        return ((int(value),) * 2,) * 2
    value = tuple(value)
    if len(value) != 2:
        raise ValueError(f"`{name}` should have two elements. Received: {value!r}")
    out = tuple((int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(u) for u in v) for v in value)
    if any(len(p) != 2 or min(p) < 0 for p in out):
        raise ValueError(f"`{name}` should be non-negative ints or pairs of them. Received: {value!r}")
    return out


class ZeroPadding2D(Layer):
    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.padding = _pads(padding, "padding")
        self.data_format = check_data_format(data_format, "ZeroPadding2D")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        (t, b), (l, r) = self.padding
        return (n, None if h is None else h + t + b, None if w is None else w + l + r, c)

    def forward(self, x, training=False):
        return self.xp.pad(x, ((0, 0), *self.padding, (0, 0)))

    def backward(self, dy, need_dx=True):
        (t, b), (l, r) = self.padding
        return dy[:, t : dy.shape[1] - b, l : dy.shape[2] - r] if need_dx else None

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding], "data_format": self.data_format}


class Cropping2D(Layer):
    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.cropping = _pads(cropping, "cropping")
        self.data_format = check_data_format(data_format, "Cropping2D")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        (t, b), (l, r) = self.cropping
        if (h is not None and h - t - b <= 0) or (w is not None and w - l - r <= 0):
            raise ValueError(
                f"Values in `cropping` argument should be smaller than the corresponding spatial "
                f"dimension of the input. Received: input_shape={tuple(input_shape)}, "
                f"cropping={self.cropping}"
            )
        return (n, None if h is None else h - t - b, None if w is None else w - l - r, c)

    def forward(self, x, training=False):
        (t, b), (l, r) = self.cropping
        return x[:, t : x.shape[1] - b, l : x.shape[2] - r]

    def backward(self, dy, need_dx=True):
        return self.xp.pad(dy, ((0, 0), *self.cropping, (0, 0))) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping], "data_format": self.data_format}
