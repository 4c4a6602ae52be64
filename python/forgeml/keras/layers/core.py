"""Dense, Activation and Embedding."""
from __future__ import annotations

import numpy as np

from .. import activations, backend, initializers, regularizers
from .base import Layer

__all__ = ["Dense", "Activation", "Embedding"]


class Dense(Layer):
    """y = activation(x @ kernel + bias) over the last axis; kernel (in, units), bias (units,).

    The bias and relu/sigmoid/tanh/gelu run in the matmul's epilogue. With ``logits=True``
    (the model fuses the output activation into the loss) forward stops before the activation
    and backward takes the gradient wrt the pre-activation.

    Compression: under a mixed_bfloat16 policy the three products run on the bf16 GEMM
    (mixed_precision.py); after ``quantize("int8")`` forward runs the int8 GEMM (quantization.py)."""

    supports_bf16 = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"Received an invalid value for `units`, expected a positive integer. "
                             f"Received: units={units!r}")
        from .. import regularizers
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        if activity_regularizer is not None:
            raise NotImplementedError("Dense: activity_regularizer is not supported by forgeml.keras yet")
        self._set_constraints(kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense {self.name!r}: the last dimension of the input must be known, "
                             f"got input shape {tuple(input_shape)}")
        self.kernel = self.add_weight((input_shape[-1], self.units), self.kernel_initializer, "kernel",
                                      constraint=self.kernel_constraint)
        self.bias = self.add_weight((self.units,), self.bias_initializer, "bias",
                                    constraint=self.bias_constraint) if self.use_bias else None

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    _sparse = None  # (kernel version, ops.SparseWeights) after pruning.strip_pruning

    def forward(self, x, training=False, logits=False):
        if self._quantization_mode:
            from ..quantization import dense_forward_int8
            return dense_forward_int8(self, x, logits)
        if self._sparse is not None:
            if not training and self._sparse[0] == self.kernel.version and type(x) is np.ndarray:
                from ..pruning import dense_forward_sparse
                return dense_forward_sparse(self, x, logits)
            self._sparse = None  # trained or assigned since: back to the dense kernel
        lead = x.shape[:-1]
        self._x_in = x
        if x.ndim != 2:
            x = x.reshape(-1, x.shape[-1])
        n = x.shape[0]
        act = activations.linear if logits else self.activation
        bias = self.bias.value if self.use_bias else None
        self._x, self._act = x, act
        prec = self._precision = self.dtype_policy.matmul_precision
        if act.kernel is not None and not act.needs_input or act is activations.linear:
            y = backend.matmul(x, self.kernel.value, bias=bias, activation=act.kernel,
                               out=self._buffer("y", (n, self.units), x.dtype), precision=prec)
            self._z = None
        else:
            z = backend.matmul(x, self.kernel.value, bias=bias, out=self._buffer("z", (n, self.units), x.dtype),
                               precision=prec)
            y = act.forward(z, out=self._buffer("y", (n, self.units), x.dtype))
            self._z = z
        self._y = y
        if len(lead) == 1:
            return y
        from .masking import attach, mask_of  # a sequence mask passes through, as Keras's Dense

        return attach(y.reshape(*lead, self.units), mask_of(self._x_in))

    def backward(self, dy, need_dx=True):
        dz = self._act.backward(dy.reshape(-1, self.units), self._y, self._z)
        if self._trainable:
            backend.matmul(self._x, dz, trans_a=True, out=self.kernel.grad, precision=self._precision)
            if self.use_bias:
                dz.sum(axis=0, out=self.bias.grad)
        if not need_dx:
            return None
        dx = backend.matmul(dz, self.kernel.value, trans_b=True, out=self._buffer("dx", self._x.shape, self._x.dtype),
                            precision=self._precision)
        return dx.reshape(*dy.shape[:-1], dx.shape[-1])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation.name,
                "use_bias": self.use_bias, "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self.bias_regularizer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("kernel_initializer", "bias_initializer"):
            if key in config:
                config[key] = initializers.get(config[key])
        for key in ("kernel_regularizer", "bias_regularizer"):
            if key in config:
                config[key] = regularizers.get(config[key])
        return cls(**config)


class Activation(Layer):
    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x, training=False, logits=False):
        self._act = activations.linear if logits else self.activation
        self._x = x
        self._y = self._act.forward(x, out=self._buffer("y", x.shape, x.dtype)) if self._act is not activations.linear else x
        if x.ndim > 2:
            from .masking import attach, mask_of

            attach(self._y, mask_of(x))
        return self._y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return self._act.backward(dy, self._y, self._x)

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}


class Embedding(Layer):
    """Integer ids (batch, ...) -> rows of embeddings (input_dim, output_dim)."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, input_length=None, **kwargs):
        super().__init__(**kwargs)
        if int(input_dim) <= 0 or int(output_dim) <= 0:
            raise ValueError(f"Embedding: input_dim and output_dim must be > 0, got {input_dim}, {output_dim}")
        if embeddings_regularizer is not None:
            raise NotImplementedError("Embedding: embeddings_regularizer is not supported by forgeml.keras yet")
        self._set_constraints(embeddings_constraint=embeddings_constraint)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.mask_zero = bool(mask_zero)  # id 0 is padding: the output carries a mask (layers/masking.py)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        if input_length is not None and self._declared_input_shape is None:
            self._declared_input_shape = (int(input_length),)

    def build(self, input_shape):
        self.embeddings = self.add_weight((self.input_dim, self.output_dim), self.embeddings_initializer,
                                          "embeddings", constraint=self.embeddings_constraint)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def _input_dtype(self, x):
        return np.int64

    def forward(self, x, training=False):
        xp = self.xp
        if x.dtype.kind not in "iu":
            if x.dtype.kind == "f" and x.size and not bool(xp.all(x == xp.floor(x))):
                raise ValueError(f"Embedding {self.name!r}: expected integer ids, got non-integer values")
            x = x.astype(np.int64)
        if x.size:
            lo, hi = int(x.min()), int(x.max())
            if lo < 0 or hi >= self.input_dim:
                raise ValueError(f"Embedding {self.name!r}: ids must be in [0, {self.input_dim}), got values "
                                 f"in [{lo}, {hi}]")
        self._ids = x
        out = self._buffer("y", (*x.shape, self.output_dim), self.embeddings.value.dtype)
        xp.take(self.embeddings.value, x, axis=0, out=out)
        if self.mask_zero:
            from .masking import attach
            attach(out, x != 0)
        return out

    def backward(self, dy, need_dx=True):
        if self._trainable:
            g = self.embeddings.grad
            g.fill(0)
            backend.scatter_add(self.xp, g, self._ids.ravel(), dy.reshape(-1, self.output_dim))
        return None  # no gradient flows into integer ids

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "embeddings_initializer" in config:
            config["embeddings_initializer"] = initializers.get(config["embeddings_initializer"])
        return cls(**config)
