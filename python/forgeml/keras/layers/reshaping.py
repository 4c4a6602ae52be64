"""Flatten and Reshape: views of the input, gradients reshaped back."""
from __future__ import annotations

import math

from .base import Layer

__all__ = ["Flatten", "Reshape"]


class Flatten(Layer):
    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        return (input_shape[0], None if any(s is None for s in rest) else math.prod(rest))

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape) if need_dx else None


class Reshape(Layer):
    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(s) for s in target_shape)
        if sum(s == -1 for s in self.target_shape) > 1:
            raise ValueError(f"Reshape: at most one -1 in target_shape, got {self.target_shape}")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(s is None for s in rest):
            return (input_shape[0], *(None if s == -1 else s for s in self.target_shape))
        total, known = math.prod(rest), math.prod(s for s in self.target_shape if s != -1)
        if -1 in self.target_shape:
            if known == 0 or total % known:
                raise ValueError(f"Reshape {self.name!r}: cannot reshape input {tuple(input_shape)} "
                                 f"to {self.target_shape}")
            shape = tuple(total // known if s == -1 else s for s in self.target_shape)
        else:
            shape = self.target_shape
        if math.prod(shape) != total:
            raise ValueError(f"Reshape {self.name!r}: total size of the new array must be unchanged, "
                             f"input_shape = {tuple(rest)}, output_shape = {self.target_shape}")
        return (input_shape[0], *shape)

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], *self.target_shape)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._shape) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}
