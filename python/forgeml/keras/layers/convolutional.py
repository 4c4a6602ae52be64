"""Conv2D on forgeml.ops.conv2d / conv2d_grad (channels last, Keras 3 arguments and layout).

x is (N, H, W, C), kernel (KH, KW, C, filters), bias (filters,), y (N, OH, OW, filters). The bias
and relu/sigmoid/tanh run in the convolution's epilogue; other activations run after it.
"""
from __future__ import annotations

import re

import numpy as np

from .. import activations, initializers, regularizers
from .base import Layer, unique_name

__all__ = ["Conv2D", "Convolution2D", "normalize_tuple", "check_data_format", "reject_unsupported", "auto_name"]

_ops = None


def conv_ops():
    """forgeml.ops, looked up once (keeps ``import forgeml.keras`` free of the kernels; tests swap
    it for float64 references)."""
    global _ops
    if _ops is None:
        from ... import ops
        _ops = ops
    return _ops


def auto_name(layer, kwargs):
    """kwargs with Keras's default name (conv2d, max_pooling2d: digits stay glued to the word)."""
    if kwargs.get("name") is None:
        cls = type(layer).__name__
        snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls)).lower()
        kwargs = {**kwargs, "name": unique_name(snake)}
    return kwargs


def normalize_tuple(value, n, name, allow_zero=False):
    """An int or n ints -> a tuple of n positive ints, with Keras's error message."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        out = (int(value),) * n
    else:
        try:
            out = tuple(int(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. Received: {value!r}") from None
        if len(out) != n:
            raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. Received: {value!r}")
    if any(v < (0 if allow_zero else 1) for v in out):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} positive integers. Received: {value!r}")
    return out


def normalize_padding(padding):
    p = padding.lower() if isinstance(padding, str) else padding
    if p not in ("valid", "same"):
        raise ValueError(f"The `padding` argument must be one of 'valid', 'same'. Received: {padding!r}")
    return p


def check_data_format(data_format, cls):
    if data_format in (None, "channels_last"):
        return "channels_last"
    if data_format == "channels_first":
        raise NotImplementedError(f"{cls}: forgeml.keras is channels_last only (x is (N, H, W, C)); "
                                  "transpose the input with np.moveaxis(x, 1, -1)")
    raise ValueError(f"The `data_format` argument must be one of 'channels_first', 'channels_last'. "
                     f"Received: {data_format!r}")


def reject_unsupported(cls, **args):
    for arg, val in args.items():
        if val is not None:
            raise NotImplementedError(f"{cls}: {arg} is not supported by forgeml.keras yet")


def out_size(size, k, stride, dilation, padding):
    """Keras's conv_output_length (None stays None)."""
    if size is None:
        return None
    eff = (k - 1) * dilation + 1
    if padding == "same":
        return -(-size // stride)
    return max((size - eff) // stride + 1, 0)


class Conv2D(Layer):
    """2-D convolution: y = activation(conv(x, kernel) + bias)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(**auto_name(self, kwargs))
        if isinstance(filters, bool) or not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(f"Invalid value for argument `filters`. Expected a strictly positive value. "
                             f"Received filters={filters!r}.")
        reject_unsupported("Conv2D", activity_regularizer=activity_regularizer)
        self._set_constraints(kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        from .. import regularizers
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if groups != 1:
            raise NotImplementedError(f"Conv2D: groups={groups} is not supported by forgeml.keras yet (only 1)")
        self.filters = int(filters)
        self.kernel_size = normalize_tuple(kernel_size, 2, "kernel_size")
        self.strides = normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = check_data_format(data_format, "Conv2D")
        self.dilation_rate = normalize_tuple(dilation_rate, 2, "dilation_rate")
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                             f"Received: strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.groups = 1
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"Conv2D {self.name!r}: expected input of shape (batch, height, width, channels) "
                             f"with known channels, got {tuple(input_shape)}")
        kh, kw = self.kernel_size
        self.kernel = self.add_weight((kh, kw, input_shape[-1], self.filters), self.kernel_initializer, "kernel",
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight((self.filters,), self.bias_initializer, "bias",
                                    constraint=self.bias_constraint) if self.use_bias else None
        self.compute_output_shape(input_shape)  # a window larger than the input fails here

    def compute_output_shape(self, input_shape):
        n, h, w = input_shape[:3]
        oh = out_size(h, self.kernel_size[0], self.strides[0], self.dilation_rate[0], self.padding)
        ow = out_size(w, self.kernel_size[1], self.strides[1], self.dilation_rate[1], self.padding)
        if oh == 0 or ow == 0:
            raise ValueError(f"Conv2D {self.name!r}: the kernel {self.kernel_size} (dilation "
                             f"{self.dilation_rate}) is larger than the input {tuple(input_shape)} with "
                             f"padding='valid'")
        return (n, oh, ow, self.filters)

    def _conv_args(self):
        return {"strides": self.strides, "padding": self.padding, "dilation": self.dilation_rate}

    def forward(self, x, training=False):
        if self._quantization_mode:  # model.quantize("int8"): quantization.py
            from ..quantization import conv_forward_int8
            return conv_forward_int8(self, x)
        ops, act = conv_ops(), self.activation
        bias = self.bias.value if self.use_bias else None
        fused = act is activations.linear or (act.kernel is not None and not act.needs_input)
        self._cols = None
        if self.dtype_policy.matmul_precision == "bf16" and type(x) is np.ndarray:
            z = self._forward_bf16(x, bias, act.kernel if fused else None)
        else:
            z = ops.conv2d(x, self.kernel.value, bias, activation=act.kernel if fused else None,
                           **self._conv_args())
        self._x = x
        if fused:
            self._z, self._y = None, z
        else:
            self._z, self._y = z, act.forward(z)
        return self._y

    supports_bf16 = True  # mixed_bfloat16: the forward product and the kernel gradient (_forward_bf16)

    def _forward_bf16(self, x, bias, act):
        """mixed_bfloat16: im2col patches (float32) times the kernel on the bf16 GEMM (operands
        rounded to bfloat16, float32 sums), bias and activation in its epilogue."""
        from ... import ops as all_ops
        from ..quantization import _patches

        cols, (n, oh, ow) = _patches(x, self)
        self._cols = cols
        w = self.kernel.value.reshape(-1, self.filters)
        y = all_ops.matmul(cols, w, bias=bias, activation=act, precision="bf16")
        return y.reshape(n, oh, ow, self.filters)

    def backward(self, dy, need_dx=True):
        dz = self.activation.backward(dy, self._y, self._z)
        dx, dw, db = conv_ops().conv2d_grad(self._x, self.kernel.value, dz, **self._conv_args(), need_dx=need_dx)
        if self._cols is not None:  # mixed_bfloat16: the kernel gradient on the bf16 GEMM too
            from ... import ops as all_ops

            dz2 = np.ascontiguousarray(dz).reshape(-1, self.filters)
            dw = all_ops.matmul(self._cols, dz2, trans_a=True, precision="bf16").reshape(self.kernel.value.shape)
        if self._trainable:
            self.kernel.grad[...] = dw
            if self.use_bias:
                self.bias.grad[...] = db
        return dx if need_dx else None

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": list(self.dilation_rate), "groups": self.groups,
                "activation": self.activation.name, "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer), "activity_regularizer": None}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("kernel_initializer", "bias_initializer"):
            if key in config:
                config[key] = initializers.get(config[key])
        for key in ("kernel_regularizer", "bias_regularizer"):
            if config.get(key) is not None:
                config[key] = regularizers.get(config[key])
        return cls(**config)


Convolution2D = Conv2D
