"""MaxPooling2D and AveragePooling2D on forgeml.ops (channels last), and the global poolings.

x is (N, H, W, C). Windowed pools call max_pool2d / avg_pool2d and their grads; the global
ones reduce over (H, W) with xp: GlobalMaxPooling2D splits the gradient evenly between tied maxima
(as TensorFlow's reduce_max does).
"""
from __future__ import annotations

from .base import Layer
from .convolutional import auto_name, check_data_format, conv_ops, normalize_padding, normalize_tuple, out_size

__all__ = ["MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
           "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D"]


def _check_4d(layer, input_shape):
    if len(input_shape) != 4:
        raise ValueError(f"{type(layer).__name__} {layer.name!r}: expected input of shape "
                         f"(batch, height, width, channels), got {tuple(input_shape)}")


class _Pooling2D(Layer):
    _kind = ""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.pool_size = normalize_tuple(pool_size, 2, "pool_size")
        self.strides = self.pool_size if strides is None else normalize_tuple(strides, 2, "strides")
        self.padding = normalize_padding(padding)
        self.data_format = check_data_format(data_format, type(self).__name__)

    def build(self, input_shape):
        _check_4d(self, input_shape)
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        oh = out_size(h, self.pool_size[0], self.strides[0], 1, self.padding)
        ow = out_size(w, self.pool_size[1], self.strides[1], 1, self.padding)
        if oh == 0 or ow == 0:
            raise ValueError(f"{type(self).__name__} {self.name!r}: pool_size {self.pool_size} is larger than "
                             f"the input {tuple(input_shape)} with padding='valid'")
        return (n, oh, ow, c)

    def forward(self, x, training=False):
        self._x = x
        fn = getattr(conv_ops(), f"{self._kind}_pool2d")
        return fn(x, self.pool_size, self.strides, self.padding)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        fn = getattr(conv_ops(), f"{self._kind}_pool2d_grad")
        return fn(self._x, dy, self.pool_size, self.strides, self.padding)

    def get_config(self):
        return {**super().get_config(), "pool_size": list(self.pool_size), "padding": self.padding,
                "strides": list(self.strides), "data_format": self.data_format}


class MaxPooling2D(_Pooling2D):
    """Max over pool_size windows; strides default to pool_size."""
    _kind = "max"


class AveragePooling2D(_Pooling2D):
    """Mean over pool_size windows ("same": over the real elements of each window, as Keras)."""
    _kind = "avg"


class _GlobalPooling2D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**auto_name(self, kwargs))
        self.data_format = check_data_format(data_format, type(self).__name__)
        self.keepdims = bool(keepdims)

    def build(self, input_shape):
        _check_4d(self, input_shape)

    def compute_output_shape(self, input_shape):
        n, c = input_shape[0], input_shape[-1]
        return (n, 1, 1, c) if self.keepdims else (n, c)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format, "keepdims": self.keepdims}


class GlobalAveragePooling2D(_GlobalPooling2D):
    def forward(self, x, training=False):
        self._shape = x.shape
        return x.mean(axis=(1, 2), keepdims=self.keepdims)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        n, h, w, c = self._shape
        g = dy.reshape(n, 1, 1, c) * (1.0 / max(h * w, 1))
        return self.xp.broadcast_to(g, self._shape).astype(dy.dtype)


class GlobalMaxPooling2D(_GlobalPooling2D):
    def forward(self, x, training=False):
        self._x = x
        self._m = x.max(axis=(1, 2), keepdims=True)
        return self._m if self.keepdims else self._m.reshape(x.shape[0], x.shape[3])

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        n, c = self._x.shape[0], self._x.shape[3]
        hit = self._x == self._m
        share = dy.reshape(n, 1, 1, c) / hit.sum(axis=(1, 2), keepdims=True)
        return (hit * share).astype(dy.dtype)


MaxPool2D, AvgPool2D = MaxPooling2D, AveragePooling2D
GlobalAvgPool2D, GlobalMaxPool2D = GlobalAveragePooling2D, GlobalMaxPooling2D
