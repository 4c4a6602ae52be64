"""MultiHeadAttention, Attention and Lambda: layers written with ``call`` on keras.ops, so their
gradients come from the ops' rules on the tape (keras/autodiff) rather than a hand-written backward.

MultiHeadAttention keeps Keras 3's weight layout: query/key/value kernels (d_in, heads, dim) with
biases (heads, dim), the output kernel (heads, value_dim, d_out) with bias (d_out,), in that order.
scores = softmax((q / sqrt(key_dim)) . k) over the keys, masked where attention_mask is False.
"""

from __future__ import annotations

import math

import numpy as np

from .. import initializers, ops
from .base import Layer

__all__ = ["MultiHeadAttention", "Attention", "Lambda"]


class MultiHeadAttention(Layer):
    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        attention_axes=None,
        flash_attention=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, val in (
            ("output_shape", output_shape),
            ("attention_axes", attention_axes),
            ("kernel_regularizer", kernel_regularizer),
            ("bias_regularizer", bias_regularizer),
            ("activity_regularizer", activity_regularizer),
        ):
            if val is not None:
                raise NotImplementedError(f"MultiHeadAttention: {arg} is not supported by forgeml.keras yet")
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout, self.use_bias, self.seed = float(dropout), bool(use_bias), seed
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._set_constraints(kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self._rng = None if seed is None else np.random.default_rng(seed)

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        h, kd, vd = self.num_heads, self.key_dim, self.value_dim
        kc, bc = self.kernel_constraint, self.bias_constraint
        for part, d_in, dim in (
            ("query", query_shape[-1], kd),
            ("key", key_shape[-1], kd),
            ("value", value_shape[-1], vd),
        ):
            kernel = self.add_weight((d_in, h, dim), self.kernel_initializer, f"{part}_kernel", constraint=kc)
            setattr(self, f"_{part}_kernel", kernel)
            bias = (
                self.add_weight((h, dim), self.bias_initializer, f"{part}_bias", constraint=bc)
                if self.use_bias
                else None
            )
            setattr(self, f"_{part}_bias", bias)
        d_out = query_shape[-1]
        self._output_kernel = self.add_weight(
            (h, vd, d_out), self.kernel_initializer, "attention_output_kernel", constraint=kc
        )
        self._output_bias = (
            self.add_weight((d_out,), self.bias_initializer, "attention_output_bias", constraint=bc)
            if self.use_bias
            else None
        )
        self.built = True

    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        return tuple(query_shape)

    def _project(self, x, part):
        y = ops.einsum("btd,dhk->bthk", x, getattr(self, f"_{part}_kernel"))
        bias = getattr(self, f"_{part}_bias")
        return y if bias is None else y + bias

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        key = value if key is None else key
        q = self._project(query, "query") * (1.0 / math.sqrt(self.key_dim))
        k = self._project(key, "key")
        v = self._project(value, "value")
        scores = ops.einsum("bshk,bthk->bhts", k, q)  # (batch, heads, query steps, key steps)
        mask = self._mask(attention_mask, use_causal_mask, q.shape[1], k.shape[1])
        if mask is not None:
            scores = ops.where(mask[:, None], scores, -1e9)
        weights = ops.softmax(scores, axis=-1)
        if training and self.dropout > 0:
            rng = self._rng
            if rng is None:
                from .. import utils

                rng = utils.global_rng()
            keep = (rng.random(tuple(weights.shape)) >= self.dropout).astype(np.float32) / (1 - self.dropout)
            weights = weights * keep
        context = ops.einsum("bhts,bshk->bthk", weights, v)
        out = ops.einsum("bthk,hkd->btd", context, self._output_kernel)
        if self._output_bias is not None:
            out = out + self._output_bias
        return (out, weights) if return_attention_scores else out

    def _mask(self, attention_mask, causal, tq, tk):
        mask = None if attention_mask is None else np.asarray(ops.convert_to_numpy(attention_mask)).astype(bool)
        if causal:
            tri = np.tril(np.ones((tq, tk), bool))[None]
            mask = tri if mask is None else mask & tri
        return mask

    def get_config(self):
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "seed": self.seed,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("kernel_initializer", "bias_initializer"):
            if key in config:
                config[key] = initializers.get(config[key])
        return cls(**config)


class Attention(Layer):
    """Dot-product attention over [query, value] or [query, value, key]: softmax(q . k^T) v
    (times a learned scale with use_scale=True; score_mode 'dot')."""

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode != "dot":
            raise NotImplementedError("Attention: only score_mode='dot' is supported by forgeml.keras yet")
        if dropout:
            raise NotImplementedError("Attention: dropout is not supported by forgeml.keras yet")
        self.use_scale, self.score_mode, self.dropout, self.seed = bool(use_scale), score_mode, 0.0, seed

    def build(self, input_shape):
        self.scale = self.add_weight((), "ones", "scale") if self.use_scale else None
        self.built = True

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def call(self, inputs, mask=None, training=None, return_attention_scores=False, use_causal_mask=False):
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)))
        if self.scale is not None:
            scores = scores * self.scale
        if use_causal_mask:
            tq, tk = scores.shape[1], scores.shape[2]
            scores = ops.where(np.tril(np.ones((tq, tk), bool))[None], scores, -1e9)
        weights = ops.softmax(scores, axis=-1)
        out = ops.matmul(weights, value)
        return (out, weights) if return_attention_scores else out

    def get_config(self):
        return {
            **super().get_config(),
            "use_scale": self.use_scale,
            "score_mode": self.score_mode,
            "dropout": self.dropout,
            "seed": self.seed,
        }


class Lambda(Layer):
    """Wraps a function of keras.ops as a layer; it trains through the tape. Like Keras in
    safe mode, a Lambda's Python function is not saved into the model file: loading needs the
    function back through custom_objects."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise ValueError(f"Lambda: expected a callable, got {function!r}")
        self.function, self.arguments = function, dict(arguments or {})
        self._lambda_output_shape = output_shape

    def call(self, inputs, training=None):
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        if self._lambda_output_shape is None:
            return super().compute_output_shape(input_shape)
        shape = self._lambda_output_shape
        return (input_shape[0], *shape) if not callable(shape) else tuple(shape(input_shape))

    def get_config(self):
        name = getattr(self.function, "__name__", "<lambda>")
        return {**super().get_config(), "function": name, "arguments": self.arguments}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        name = config.pop("function")
        from ..registry import CUSTOM_OBJECTS

        fn = (custom_objects or {}).get(name) or CUSTOM_OBJECTS.get(name)
        if fn is None:
            raise ValueError(
                f"Requested the deserialization of a Lambda layer whose function {name!r} is Python "
                "code; forgeml.keras never loads code from a file. Pass the function in "
                f"custom_objects={{{name!r}: fn}} or register it with register_keras_serializable."
            )
        return cls(fn, **config)
