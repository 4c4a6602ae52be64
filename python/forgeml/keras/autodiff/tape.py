"""Reverse-mode automatic differentiation over NumPy / CuPy arrays.

The graph is made of ``Tensor`` boxes: a value (a plain array), the tensors it was computed from
(``parents``) and ``vjp(g) -> [grad for each parent]``, the vector-Jacobian product written beside
the op's forward (HIPS/autograd's primitives, JAX's custom_vjp). A forgeml fused kernel (a Dense
matmul with its epilogue, a conv, an RNN, a loss fused with softmax) is one node whose vjp is its
hand-written backward.

Ops only build nodes when one of their inputs is a ``Tensor``. A ``GradientTape`` makes the
variables read inside it into leaf tensors, so a model run outside any tape costs nothing extra.
``gradient`` walks the nodes reachable from the target in reverse topological order.
"""

from __future__ import annotations

import contextlib
import threading
import warnings


__all__ = [
    "Tensor",
    "GradientTape",
    "make_node",
    "value_of",
    "is_tensor",
    "lift",
    "recording",
    "layer_scope",
    "current_layer",
    "NoGradientError",
]


class NoGradientError(TypeError):
    """An op without a derivative rule was applied to a tensor being differentiated."""


_state = threading.local()


def _tapes():
    t = getattr(_state, "tapes", None)
    if t is None:
        t = _state.tapes = []
    return t


def recording() -> bool:
    """True inside an active GradientTape (on this thread)."""
    return bool(_tapes())


def _layers():
    s = getattr(_state, "layers", None)
    if s is None:
        s = _state.layers = []
    return s


@contextlib.contextmanager
def layer_scope(layer):
    """Names the layer whose call is running, for error messages."""
    stack = _layers()
    stack.append(layer)
    try:
        yield
    finally:
        stack.pop()


def current_layer():
    stack = _layers()
    return stack[-1] if stack else None


class Tensor:
    """A value on the tape. Behaves like a read-only array for the ops in ``keras.ops``."""

    __slots__ = ("value", "parents", "vjp", "op", "__weakref__")
    __array_priority__ = 1000

    def __init__(self, value, parents=(), vjp=None, op="leaf"):
        self.value = value
        self.parents = parents
        self.vjp = vjp
        self.op = op

    # array-like surface
    shape = property(lambda self: tuple(self.value.shape))
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)
    size = property(lambda self: self.value.size)

    def __len__(self):
        return len(self.value)

    def numpy(self):
        from .. import backend

        return backend.to_numpy(self.value)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a.astype(dtype) if dtype is not None else a

    def __float__(self):
        return float(self.value)

    def __int__(self):
        return int(self.value)

    def __bool__(self):
        return bool(self.value)

    def __repr__(self):
        return f"<Tensor op={self.op} shape={self.shape} dtype={self.dtype}>"

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .. import ops

        fn = getattr(ops, ufunc.__name__, None) if method == "__call__" and not kwargs else None
        if fn is None:
            raise _no_rule(f"numpy.{ufunc.__name__}" + ("" if method == "__call__" else f".{method}"))
        return fn(*inputs)

    def __array_function__(self, func, types, args, kwargs):
        from .. import ops

        fn = getattr(ops, func.__name__, None)
        if fn is None:
            raise _no_rule(f"numpy.{func.__name__}")
        return fn(*args, **kwargs)


def _no_rule(opname):
    layer = current_layer()
    where = f" in layer {layer.name!r} ({type(layer).__name__}.call)" if layer is not None else ""
    return NoGradientError(
        f"{opname} has no gradient rule{where}: write it with forgeml.keras.ops "
        f"functions, or wrap the input in keras.ops.stop_gradient"
    )


def is_tensor(x) -> bool:
    return type(x) is Tensor


def value_of(x):
    """The plain array behind a Tensor or Variable; anything else unchanged."""
    t = type(x)
    if t is Tensor:
        return x.value
    v = getattr(x, "_is_variable", False)
    return x.value if v else x


def lift(x):
    """A Variable read inside a tape becomes that tape's leaf tensor (one per variable)."""
    if getattr(x, "_is_variable", False):
        tapes = _tapes()
        if not tapes:
            return x.value
        key = id(x)
        for tape in tapes:
            leaf = tape._leaves.get(key)
            if leaf is not None and leaf.value is x.value:
                break
        else:
            leaf = Tensor(x.value)
        for tape in tapes:
            tape._leaves[key] = leaf
            tape._vars[key] = x
        return leaf
    return x


def make_node(value, parents, vjp, op):
    """A new tensor when some parent is a tensor, else the plain value."""
    if any(type(p) is Tensor for p in parents):
        return Tensor(value, tuple(parents), vjp, op)
    return value


class GradientTape:
    """Records the ops run while it is active (``with GradientTape() as tape:``) and gives the
    gradient of a target with respect to variables or tensors: ``tape.gradient(loss, vars)``."""

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = bool(persistent)
        self._leaves: dict[int, Tensor] = {}
        self._vars: dict[int, object] = {}
        self._used = False

    def __enter__(self):
        _tapes().append(self)
        return self

    def __exit__(self, *exc):
        tapes = _tapes()
        if self in tapes:
            tapes.remove(self)
        return False

    def watch(self, x):
        """Variables are watched automatically; a Tensor already is. Arrays cannot be watched
        (wrap them with ``keras.ops.convert_to_tensor`` inside the tape instead)."""
        if getattr(x, "_is_variable", False):
            lift(x) if self in _tapes() else None
        elif type(x) is not Tensor:
            raise TypeError(
                f"GradientTape.watch: expected a Variable or a Tensor made by keras.ops (got {type(x).__name__})"
            )

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        if self._used and not self.persistent:
            raise RuntimeError(
                "A non-persistent GradientTape can only be used to compute one set of "
                "gradients (use GradientTape(persistent=True))"
            )
        self._used = True
        single = not isinstance(sources, (list, tuple))
        srcs = [sources] if single else list(sources)
        leaves = [self._leaf_for(s) for s in srcs]
        grads = backward(target, leaves, output_gradients)
        if unconnected_gradients == "zero":
            grads = [_zeros_like(value_of(s)) if g is None else g for s, g in zip(srcs, grads)]
        return grads[0] if single else grads

    def _leaf_for(self, s):
        if type(s) is Tensor:
            return s
        if getattr(s, "_is_variable", False):
            return self._leaves.get(id(s))
        if s is None:
            raise TypeError("GradientTape.gradient: a source is None")
        return None  # a plain array: nothing depends on it through the tape


def _zeros_like(a):
    from .. import backend

    return backend.xp_of(a).zeros_like(a)


def _topo(target):
    """Nodes reachable from target, parents before children."""
    order, seen = [], set()
    stack = [(target, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in node.parents:
            if type(p) is Tensor and id(p) not in seen:
                stack.append((p, False))
    return order


def backward(target, leaves, output_gradient=None):
    """Gradients of sum(target * output_gradient) for each leaf (None where unconnected)."""
    if type(target) is not Tensor:
        return [None] * len(leaves)
    from .. import backend

    xp = backend.xp_of(target.value)
    if output_gradient is None:
        seed = xp.ones_like(target.value)
    else:
        seed = xp.asarray(value_of(output_gradient), dtype=target.value.dtype).reshape(target.value.shape)
    grads = {id(target): seed}
    for node in reversed(_topo(target)):
        g = grads.get(id(node))
        if g is None or not node.parents:
            continue
        pg = node.vjp(g)
        for p, gp in zip(node.parents, pg):
            if gp is None or type(p) is not Tensor:
                continue
            prev = grads.get(id(p))
            grads[id(p)] = gp if prev is None else prev + gp
    return [None if leaf is None else grads.get(id(leaf)) for leaf in leaves]


def warn_missing(variables, grads):
    """Keras's warning for trainable variables that received no gradient."""
    missing = [getattr(v, "path", getattr(v, "name", "?")) for v, g in zip(variables, grads) if g is None]
    if missing:
        warnings.warn(
            f"Gradients do not exist for variables {missing} when minimizing the loss. If using "
            f"`model.compile()`, did you forget to provide a `loss` argument?",
            UserWarning,
            stacklevel=3,
        )
