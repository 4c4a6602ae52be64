"""Layer, Variable and Input: what every layer shares.

A layer follows Keras's shape: ``__init__`` stores config, ``build(input_shape)`` creates weights
with ``add_weight``, ``forward(x, training)`` computes the output and keeps what ``backward``
needs, ``backward(dy, need_dx)`` writes the weight gradients into ``var.grad`` (only while the layer
is trainable) and returns the input gradient. ``get_config`` makes it serialisable. Subclasses
register themselves by class name, so adding a layer (part 2: convolution, pooling, recurrent)
needs no change to the model or saving code.

Arrays: ``self.xp`` is numpy or cupy (set by the model before build). Outputs of ``forward`` may
be buffers reused at the next call with the same shape: callers copy what they keep.
"""
from __future__ import annotations

import itertools
import re
import threading

import numpy as np

from .. import backend, constraints, initializers, mixed_precision
from ..variables import Variable

__all__ = ["Layer", "Variable", "InputLayer", "Input", "KerasTensor", "LAYER_CLASSES", "unique_name"]

LAYER_CLASSES: dict[str, type] = {}
_NAME_COUNTERS: dict[str, itertools.count] = {}


def unique_name(prefix: str) -> str:
    """dense, dense_1, dense_2, ... per prefix (Keras's naming)."""
    counter = _NAME_COUNTERS.setdefault(prefix, itertools.count())
    i = next(counter)
    return prefix if i == 0 else f"{prefix}_{i}"


def _snake(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", s).lower()


class KerasTensor:
    """The symbolic input of ``keras.Input(shape=...)``: a shape (batch dim None) and a history of
    the layers applied to it, so ``keras.Model(inputs, outputs)`` can rebuild a chain."""

    def __init__(self, shape, dtype="float32", name=None, source=None, parent=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.name = name
        self.source = source  # the layer that produced it (None for an Input)
        self.parent = parent
        self._node = None  # the layers/_calling.Node that produced it (None for an Input)

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return f"<KerasTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"


def _normalize_shape(shape, name="shape"):
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(None if s is None else int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{name}: expected a tuple of ints, got {shape!r}") from None
    if any(s is not None and s < 0 for s in shape):
        raise ValueError(f"{name}: dimensions must be >= 0, got {shape}")
    return shape


class Layer:
    """Base class. Subclasses set ``self.input_spec_ndim`` (min rank) where it matters."""

    _quantization_mode = None  # models built without Layer.__init__'s arguments are never quantized
    _takes_strings = False  # text layers (lookup.py): models holding one train on the tape, strings passed through

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        LAYER_CLASSES[cls.__name__] = cls

    def __init__(self, *, name=None, trainable=True, dtype=None, input_shape=None, batch_input_shape=None,
                 input_dim=None, batch_size=None, dtype_policy=None, quantization_mode=None, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        self.name = name or unique_name(_snake(type(self).__name__))
        self._trainable = bool(trainable)
        # compression (mixed_precision.py, quantization.py): dtype may name a policy as in Keras 3;
        # weights stay float32 either way. quantization_mode comes back from a saved config.
        self.dtype_policy = mixed_precision.get(dtype_policy if dtype_policy is not None else dtype)
        self.dtype = "float32"
        self._quantization_mode = quantization_mode
        shape = None
        if batch_input_shape is not None:
            shape = _normalize_shape(batch_input_shape, "batch_input_shape")[1:]
        elif input_shape is not None:
            shape = _normalize_shape(input_shape, "input_shape")
        elif input_dim is not None:
            shape = (int(input_dim),)
        self._declared_input_shape = shape  # (features...) without the batch dim
        self.built = False
        self.xp = np
        self._weights: list[Variable] = []
        self._bufs: dict = {}
        self.input_shape = None
        self.output_shape = None
        self._losses: list = []
        self._inbound_nodes: list = []

    def __setattr__(self, name, value):
        # layers assigned as attributes (or in lists) of a custom layer are tracked, as in Keras
        if name[0] != "_" and isinstance(value, (Layer, list, tuple)) and name != "layers":
            subs = self.__dict__.setdefault("_sublayers", [])
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if isinstance(item, Layer) and item is not self and all(item is not t for t in subs):
                    subs.append(item)
        object.__setattr__(self, name, value)

    @property
    def compute_dtype(self) -> str:
        """The policy's compute dtype, as Keras 3 names it (the products' operand dtype)."""
        return self.dtype_policy.compute_dtype

    @property
    def variable_dtype(self) -> str:
        return self.dtype_policy.variable_dtype

    # ---------------------------------------------------------------- weights
    @property
    def trainable(self) -> bool:
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool):
        self._trainable = bool(value)

    def add_weight(self, shape=None, initializer="glorot_uniform", name=None, trainable=True, dtype=None,
                   regularizer=None, constraint=None, autocast=True, aggregation=None):
        if regularizer is not None:
            raise NotImplementedError(f"Layer {self.name!r}: add_weight regularizer is not supported; set "
                                      "<weight>_regularizer on the layer (keras/regularizers.py)")
        shape = () if shape is None else tuple(int(s) for s in shape)
        init = initializers.get("glorot_uniform" if initializer is None else initializer)
        value = backend.to_xp(init(shape), self.xp, dtype=np.float32)
        var = Variable(value, name or f"variable_{len(self._weights)}", trainable, f"{self.name}/{name}")
        var.grad = self.xp.zeros_like(value) if trainable else None
        var.constraint = constraints.get(constraint)
        self._weights.append(var)
        return var

    @property
    def weights(self) -> list[Variable]:
        out = list(self._weights)
        for sub in self.__dict__.get("_sublayers", ()):
            out += [w for w in sub.weights if all(w is not o for o in out)]
        return out

    @property
    def variables(self):
        return self.weights

    @property
    def trainable_weights(self) -> list[Variable]:
        if not self._trainable:
            return []
        out = [w for w in self._weights if w.trainable]
        for sub in self.__dict__.get("_sublayers", ()):
            out += [w for w in sub.trainable_weights if all(w is not o for o in out)]
        return out

    @property
    def non_trainable_weights(self) -> list[Variable]:
        train = self.trainable_weights
        return [w for w in self.weights if all(w is not t for t in train)]

    @property
    def losses(self) -> list:
        """Values passed to ``add_loss`` during the last call (of this layer and its sublayers)."""
        out = list(self._losses)
        for sub in self.__dict__.get("_sublayers", ()):
            out += sub.losses
        return out

    def add_loss(self, loss):
        self._losses.append(loss)

    def _clear_losses(self):
        self._losses = []
        for sub in self.__dict__.get("_sublayers", ()):
            sub._clear_losses()

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    def get_weights(self) -> list:
        return [w.numpy() for w in self._weights]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise ValueError(f"Layer {self.name!r} expected {len(self._weights)} weights, but received "
                             f"{len(weights)} weights (shapes {[w.shape for w in self._weights]})")
        for var, w in zip(self._weights, weights):
            if tuple(np.shape(w)) != var.shape:
                raise ValueError(f"Layer {self.name!r} weight shape {var.shape} is not compatible with "
                                 f"provided weight shape {tuple(np.shape(w))}")
        for var, w in zip(self._weights, weights):
            var.assign(w)

    def count_params(self) -> int:
        return int(sum(int(np.prod(w.shape)) for w in self._weights))

    def _set_constraints(self, **named):
        """Store ``kernel_constraint=...`` and the like (resolved by keras.constraints.get) as
        attributes that get_config writes; build passes them to add_weight."""
        for key, value in named.items():
            object.__setattr__(self, key, constraints.get(value))
        self._constraint_keys = tuple(named)

    # ---------------------------------------------------------------- shapes and building
    def build(self, input_shape) -> None:
        """input_shape includes the batch dim (None)."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _build_once(self, input_shape, xp=None):
        input_shape = tuple(input_shape)
        if xp is not None and not self.built:
            self.xp = xp
        if not self.built:
            self.build(input_shape)
            self.built = True
            if self._quantization_mode:  # a quantized layer from a saved config
                from ..quantization import quantize_layer
                quantize_layer(self, self._quantization_mode)
        else:
            self._check_input_shape(input_shape)
        self.input_shape = input_shape
        self.output_shape = tuple(self.compute_output_shape(input_shape))
        return self.output_shape

    def _check_input_shape(self, input_shape):
        """Built layers refuse an input whose fixed dims differ from the ones they were built for."""
        if self.input_shape is None:
            return
        want = self.input_shape
        if len(want) != len(input_shape):
            raise ValueError(f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                             f"ndim={len(want)}, found ndim={len(input_shape)}. Full shape received: "
                             f"{tuple(input_shape)}")
        for ax in range(1, len(want)):
            if want[ax] is not None and input_shape[ax] is not None and want[ax] != input_shape[ax]:
                raise ValueError(f'Input 0 of layer "{self.name}" is incompatible with the layer: expected '
                                 f"axis {ax - len(want)} of input shape to have value {want[ax]}, but "
                                 f"received input with shape {tuple(input_shape)}")

    # ---------------------------------------------------------------- compute
    def forward(self, x, training=False):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, dy, need_dx=True):
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def _buffer(self, key, shape, dtype=np.float32):
        """A scratch array reused while its shape stays the same (no allocation per step). One set
        per thread: threads predicting with the same model never share an output buffer."""
        key = (threading.get_ident(), key)
        buf = self._bufs.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self.xp.empty(shape, dtype=dtype)
            self._bufs[key] = buf
        return buf

    def call(self, inputs, training=None):
        """Built-in layers compute with forward/backward (see _builtin_call); subclasses override call."""
        raise NotImplementedError(f"{type(self).__name__}.call")

    def __call__(self, *args, **kwargs):
        from . import _calling
        return _calling.call_layer(self, args, kwargs)

    def _input_dtype(self, x):
        return np.float32

    # ---------------------------------------------------------------- config
    @property
    def output(self):
        """The symbolic output of this layer's first call on keras.Input tensors."""
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called on symbolic inputs: it has no output")
        outs = self._inbound_nodes[0].outputs
        return outs[0] if len(outs) == 1 else outs

    @property
    def input(self):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called on symbolic inputs: it has no input")
        ins = self._inbound_nodes[0].inputs
        return ins[0] if len(ins) == 1 else ins

    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype_policy.name}
        if self._quantization_mode:
            cfg["quantization_mode"] = self._quantization_mode
        if self._declared_input_shape is not None:
            cfg["batch_input_shape"] = [None, *self._declared_input_shape]
        for key in self.__dict__.get("_constraint_keys", ()):
            cfg[key] = constraints.serialize(getattr(self, key))
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class InputLayer(Layer):
    """The model's input: only carries a shape."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, batch_shape=None,
                 input_shape=None, **kwargs):
        if shape is None and batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        if shape is None:
            shape = input_shape
        if shape is None:
            raise ValueError("InputLayer: pass shape=(features, ...)")
        super().__init__(name=name or unique_name("input_layer"), dtype=dtype, **kwargs)
        self._declared_input_shape = _normalize_shape(shape)

    def forward(self, x, training=False):
        return x

    def backward(self, dy, need_dx=True):
        return dy

    def get_config(self):
        return {"batch_shape": [None, *self._declared_input_shape], "dtype": self.dtype, "name": self.name}


def Input(shape=None, batch_size=None, dtype=None, name=None, batch_shape=None, **kwargs):
    """keras.Input: a symbolic tensor to start a Sequential or a functional chain."""
    if shape is None and batch_shape is not None:
        shape = tuple(batch_shape)[1:]
    if shape is None:
        raise ValueError("Input: pass shape=(features, ...)")
    shape = _normalize_shape(shape)
    return KerasTensor((None, *shape), dtype=dtype or "float32", name=name or unique_name("input_layer"))
