"""What ``layer(...)`` does: a symbolic call (``keras.Input`` tensors) adds a node to a functional
graph; an eager call runs either the built-in forward (one tape node whose VJP is the layer's
hand-written backward) or a user's ``call`` (whose ops record themselves on the tape).
"""

from __future__ import annotations

import inspect

import numpy as np

from .. import backend
from ..autodiff import tape as _tape
from ..autodiff.tape import Tensor
from . import masking

__all__ = ["call_layer", "flatten", "map_structure", "is_builtin", "Node"]

_SIG_CACHE: dict = {}


def flatten(x):
    if isinstance(x, dict):
        return [v for k in x for v in flatten(x[k])]
    if isinstance(x, (list, tuple)):
        return [v for e in x for v in flatten(e)]
    return [x]


def map_structure(fn, x):
    if isinstance(x, dict):
        return {k: map_structure(fn, v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return (
            type(x)(map_structure(fn, e) for e in x) if type(x) in (list, tuple) else [map_structure(fn, e) for e in x]
        )
    return fn(x)


def is_builtin(layer) -> bool:
    """Built-in layers define forward/backward; user layers define call."""
    return type(layer).call is _layer_call()


def _layer_call():
    global _LAYER_CALL
    if _LAYER_CALL is None:  # base imports this module: resolved at the first call, not per call
        from .base import Layer

        _LAYER_CALL = Layer.call
    return _LAYER_CALL


_LAYER_CALL = None


def _keras_tensor():
    global _KERAS_TENSOR
    if _KERAS_TENSOR is None:  # as _layer_call: an import statement per call costs ~1.5 us
        from .base import KerasTensor

        _KERAS_TENSOR = KerasTensor
    return _KERAS_TENSOR


_KERAS_TENSOR = None


def _accepts(fn, name):
    key = (fn, name)
    ok = _SIG_CACHE.get(key)
    if ok is None:
        params = inspect.signature(fn).parameters
        ok = name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
        _SIG_CACHE[key] = ok
    return ok


def call_kwargs(fn, kwargs):
    """Drop training= / mask= when the user's call does not take them (Keras does the same)."""
    return {k: v for k, v in kwargs.items() if k not in ("training", "mask") or _accepts(fn, k)}


class Node:
    """One call of a layer on symbolic tensors: the layer, its arguments (with KerasTensors in
    them) and the KerasTensors it produced."""

    def __init__(self, layer, args, kwargs, outputs):
        self.layer, self.args, self.kwargs, self.outputs = layer, args, kwargs, outputs

    @property
    def inputs(self):
        from .base import KerasTensor

        return [t for t in flatten([self.args, list(self.kwargs.values())]) if isinstance(t, KerasTensor)]


def call_layer(layer, args, kwargs):
    if args:
        inputs, rest = args[0], tuple(args[1:])
    elif "inputs" in kwargs:
        kwargs = dict(kwargs)
        inputs, rest = kwargs.pop("inputs"), ()
    else:
        raise TypeError(f"Layer {layer.name!r} was called without inputs")
    if type(inputs) is not np.ndarray and any(isinstance(t, _keras_tensor()) for t in flatten(inputs)):
        return _symbolic(layer, inputs, rest, kwargs)
    if hasattr(layer, "_model_call"):  # a model used as a layer
        return layer._model_call(inputs, *rest, **kwargs)
    if is_builtin(layer):
        training = kwargs.get("training", rest[0] if rest else False)
        return builtin_call(layer, inputs, bool(training) if training is not None else False)
    if not layer.built:
        _build_custom(layer, inputs)
    with _tape.layer_scope(layer):
        return layer.call(inputs, *rest, **call_kwargs(layer.call, kwargs))


def _shape_of(x):
    return tuple(x.shape) if hasattr(x, "shape") else tuple(np.shape(x))


def _build_custom(layer, inputs):
    from .base import Layer

    first = flatten(inputs)[0]
    v = _tape.value_of(first)
    if hasattr(v, "shape"):
        layer.xp = backend.xp_of(v)
    shapes = map_structure(_shape_of, inputs)
    if type(layer).build is not Layer.build:
        with _tape.layer_scope(layer):
            layer.build(shapes)
    layer.built = True
    if not isinstance(inputs, (list, tuple, dict)):
        layer.input_shape = (None, *shapes[1:])


# ---------------------------------------------------------------- built-in layers as tape nodes
def builtin_call(layer, x, training):
    px = _tape.lift(x)
    xv = px.value if type(px) is Tensor else x
    xp = backend.xp_of(xv) if hasattr(xv, "shape") else layer.xp
    xv = backend.to_xp(xv, xp, dtype=layer._input_dtype(xv))
    layer._build_once((None, *xv.shape[1:]), xp)
    wvars = layer.trainable_weights
    leaves = [_tape.lift(v) for v in wvars] if _tape.recording() else []
    if type(px) is not Tensor and not leaves:
        out = layer.forward(xv, training)
        return masking.attach(out.copy(), masking.mask_of(out))  # the copy keeps the sequence mask
    saved = layer._bufs
    layer._bufs = {}  # this call's buffers stay with this node (a shared layer may run again)
    try:
        out = layer.forward(xv, training)
        state = dict(layer.__dict__)
    finally:
        layer._bufs = saved
    need_dx = type(px) is Tensor

    def vjp(g):
        current = dict(layer.__dict__)
        layer.__dict__.update(state)
        try:
            dx = layer.backward(g.astype(np.float32, copy=True), need_dx)
            grads = [v.grad.copy() for v in wvars]
        finally:
            layer.__dict__.clear()
            layer.__dict__.update(current)
        return [dx, *grads] if leaves else [dx]

    parents = (px, *leaves) if leaves else (px,)
    return Tensor(out, parents, vjp, layer)  # op: the layer itself (keras/traced.py reads the chain)


# ---------------------------------------------------------------- symbolic calls
def symbolic_call(layer, inputs, kwargs):
    """A graph node learned from a trial run, whatever the layer's outputs (an RNN's
    return_state) and however its tensors arrive (initial_state=...)."""
    return _symbolic(layer, inputs, (), kwargs, general=True)


def _symbolic(layer, inputs, rest, kwargs, general=False):
    from .base import KerasTensor

    xs = flatten(inputs)
    if not general and not hasattr(layer, "_model_call") and is_builtin(layer) and len(xs) == 1:
        x = xs[0]
        out_shape = layer._build_once((None, *x.shape[1:]) if x.shape else x.shape)
        out = KerasTensor(out_shape, name=layer.name, source=layer, parent=x)
        out._node = Node(layer, (inputs, *rest), kwargs, [out])
        layer._inbound_nodes.append(out._node)
        return out

    # run the layer once on small concrete inputs to learn its output structure and shapes
    def dummy(t):
        if not isinstance(t, KerasTensor):
            return t
        dt = np.int64 if str(t.dtype).startswith("int") else np.float32
        return np.zeros((2, *[1 if s is None else s for s in t.shape[1:]]), dtype=dt)

    concrete = map_structure(dummy, inputs)
    crest = map_structure(dummy, list(rest))
    ckw = {k: map_structure(dummy, v) for k, v in kwargs.items()}
    ckw.setdefault("training", False)
    try:
        result = call_layer(layer, (concrete, *crest), ckw)
    except NotImplementedError:
        raise
    except Exception as exc:
        shapes = [tuple(t.shape) for t in xs if isinstance(t, KerasTensor)]
        raise ValueError(
            f"Layer {layer.name!r} ({type(layer).__name__}) cannot be called on inputs of shapes {shapes}: {exc}"
        ) from exc
    if hasattr(layer, "_clear_losses"):
        layer._clear_losses()
    outs = []

    def to_symbolic(v):
        v = _tape.value_of(v)
        t = KerasTensor(
            (None, *v.shape[1:]),
            dtype=str(v.dtype),
            name=layer.name,
            source=layer,
            parent=xs[0] if len(xs) == 1 else None,
        )
        outs.append(t)
        return t

    out = map_structure(to_symbolic, result)
    node = Node(layer, (inputs, *rest), kwargs, outs)
    for t in outs:
        t._node = node
    if hasattr(layer, "_inbound_nodes"):
        layer._inbound_nodes.append(node)
    if not hasattr(layer, "_model_call") and len(outs) == 1:
        layer.output_shape = outs[0].shape
    return out
