"""keras.ops.numpy: NumPy-like ops, each forward with its vector-Jacobian product beside it.

Inputs may be arrays, Python numbers, Variables or tape Tensors; the output is a plain array
unless some input is a Tensor (then a Tensor recording how to send gradients back). Arrays keep
their dtype (float64 in the gradient checks) and their device (NumPy or CuPy).
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..autodiff.tape import Tensor, lift, make_node, value_of
from ..backend import scatter_add, xp_of

__all__ = [
    "add",
    "subtract",
    "multiply",
    "divide",
    "true_divide",
    "negative",
    "power",
    "square",
    "sqrt",
    "abs",
    "absolute",
    "exp",
    "log",
    "log1p",
    "expm1",
    "sin",
    "cos",
    "tanh",
    "reciprocal",
    "sign",
    "maximum",
    "minimum",
    "clip",
    "where",
    "matmul",
    "dot",
    "einsum",
    "sum",
    "mean",
    "max",
    "min",
    "amax",
    "amin",
    "prod",
    "var",
    "std",
    "argmax",
    "argmin",
    "reshape",
    "transpose",
    "expand_dims",
    "squeeze",
    "concatenate",
    "stack",
    "split",
    "take",
    "take_along_axis",
    "one_hot",
    "cast",
    "convert_to_tensor",
    "stop_gradient",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_not",
    "floor",
    "ceil",
    "round",
    "zeros",
    "ones",
    "zeros_like",
    "ones_like",
    "full",
    "arange",
    "eye",
    "shape",
    "size",
    "ndim",
    "get_item",
    "logsumexp",
    "norm",
    "broadcast_to",
    "tile",
    "flip",
    "linspace",
    "isnan",
    "isfinite",
    "any",
    "all",
    "floor_divide",
    "mod",
]


def _v(x):
    """(tensor-or-value for parents, plain value)."""
    x = lift(x)
    if type(x) is Tensor:
        return x, x.value
    if isinstance(x, (list, tuple)):
        x = np.asarray([value_of(e) for e in x])
    return x, x


def _unbroadcast(g, shape):
    """Sum g down to `shape` (the reverse of broadcasting)."""
    if g.shape == tuple(shape):
        return g
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _shape(a):
    return np.shape(a)


# ---------------------------------------------------------------- arithmetic
def add(x1, x2):
    p1, a = _v(x1)
    p2, b = _v(x2)
    s1, s2 = _shape(a), _shape(b)
    return make_node(a + b, (p1, p2), lambda g: (_unbroadcast(g, s1), _unbroadcast(g, s2)), "add")


def subtract(x1, x2):
    p1, a = _v(x1)
    p2, b = _v(x2)
    s1, s2 = _shape(a), _shape(b)
    return make_node(a - b, (p1, p2), lambda g: (_unbroadcast(g, s1), _unbroadcast(-g, s2)), "subtract")


def multiply(x1, x2):
    p1, a = _v(x1)
    p2, b = _v(x2)

    def vjp(g):
        return (
            _unbroadcast(g * b, _shape(a)) if type(p1) is Tensor else None,
            _unbroadcast(g * a, _shape(b)) if type(p2) is Tensor else None,
        )

    return make_node(a * b, (p1, p2), vjp, "multiply")


def divide(x1, x2):
    p1, a = _v(x1)
    p2, b = _v(x2)
    out = a / b

    def vjp(g):
        return (
            _unbroadcast(g / b, _shape(a)) if type(p1) is Tensor else None,
            _unbroadcast(-g * out / b, _shape(b)) if type(p2) is Tensor else None,
        )

    return make_node(out, (p1, p2), vjp, "divide")


true_divide = divide


def floor_divide(x1, x2):
    return value_of(lift(x1)) // value_of(lift(x2))


def mod(x1, x2):
    return value_of(lift(x1)) % value_of(lift(x2))


def negative(x):
    p, a = _v(x)
    return make_node(-a, (p,), lambda g: (-g,), "negative")


def power(x1, x2):
    p1, a = _v(x1)
    p2, b = _v(x2)
    out = a**b

    def vjp(g):
        ga = _unbroadcast(g * b * a ** (b - 1), _shape(a)) if type(p1) is Tensor else None
        gb = None
        if type(p2) is Tensor:
            xp = xp_of(out)
            safe = xp.where(a > 0, a, 1)
            gb = _unbroadcast(g * out * xp.log(safe), _shape(b))
        return ga, gb

    return make_node(out, (p1, p2), vjp, "power")


def _unary(name, f, df):
    """An element-wise op whose derivative df(a, out) is a function of its input and output."""

    def op(x):
        p, a = _v(x)
        out = f(xp_of(a), a)
        return make_node(out, (p,), lambda g: (g * df(xp_of(a), a, out),), name)

    op.__name__ = name
    op.__doc__ = f"Element-wise {name} (with its derivative)."
    return op


square = _unary("square", lambda xp, a: a * a, lambda xp, a, o: 2 * a)
sqrt = _unary("sqrt", lambda xp, a: xp.sqrt(a), lambda xp, a, o: 0.5 / o)
abs = _unary("abs", lambda xp, a: xp.abs(a), lambda xp, a, o: xp.sign(a))
absolute = abs
exp = _unary("exp", lambda xp, a: xp.exp(a), lambda xp, a, o: o)
log = _unary("log", lambda xp, a: xp.log(a), lambda xp, a, o: 1 / a)
log1p = _unary("log1p", lambda xp, a: xp.log1p(a), lambda xp, a, o: 1 / (1 + a))
expm1 = _unary("expm1", lambda xp, a: xp.expm1(a), lambda xp, a, o: o + 1)
sin = _unary("sin", lambda xp, a: xp.sin(a), lambda xp, a, o: xp.cos(a))
cos = _unary("cos", lambda xp, a: xp.cos(a), lambda xp, a, o: -xp.sin(a))
tanh = _unary("tanh", lambda xp, a: xp.tanh(a), lambda xp, a, o: 1 - o * o)
reciprocal = _unary("reciprocal", lambda xp, a: 1 / a, lambda xp, a, o: -o * o)


def _nograd(name, f):
    """Piecewise-constant or boolean results: no gradient flows (their derivative is zero)."""

    def op(*args, **kwargs):
        return f(*(value_of(lift(a)) for a in args), **kwargs)

    op.__name__ = name
    return op


sign = _nograd("sign", lambda a: xp_of(a).sign(a))
floor = _nograd("floor", lambda a: xp_of(a).floor(a))
ceil = _nograd("ceil", lambda a: xp_of(a).ceil(a))
round = _nograd("round", lambda a, decimals=0: xp_of(a).round(a, decimals))
equal = _nograd("equal", lambda a, b: a == b)
not_equal = _nograd("not_equal", lambda a, b: a != b)
less = _nograd("less", lambda a, b: a < b)
less_equal = _nograd("less_equal", lambda a, b: a <= b)
greater = _nograd("greater", lambda a, b: a > b)
greater_equal = _nograd("greater_equal", lambda a, b: a >= b)
logical_and = _nograd("logical_and", lambda a, b: np.logical_and(a, b))
logical_or = _nograd("logical_or", lambda a, b: np.logical_or(a, b))
logical_not = _nograd("logical_not", lambda a: np.logical_not(a))
isnan = _nograd("isnan", lambda a: xp_of(a).isnan(a))
isfinite = _nograd("isfinite", lambda a: xp_of(a).isfinite(a))
argmax = _nograd("argmax", lambda a, axis=None, keepdims=False: xp_of(a).argmax(a, axis=axis, keepdims=keepdims))
argmin = _nograd("argmin", lambda a, axis=None, keepdims=False: xp_of(a).argmin(a, axis=axis, keepdims=keepdims))
any = _nograd("any", lambda a, axis=None, keepdims=False: xp_of(a).any(a, axis=axis, keepdims=keepdims))
all = _nograd("all", lambda a, axis=None, keepdims=False: xp_of(a).all(a, axis=axis, keepdims=keepdims))


def maximum(x1, x2):
    p1, a = _v(x1)
    p2, b = _v(x2)
    xp = xp_of(a if hasattr(a, "shape") else b)
    out = xp.maximum(a, b)
    pick = a >= b  # ties send the gradient to x1

    def vjp(g):
        return (_unbroadcast(g * pick, _shape(a)), _unbroadcast(g * ~pick, _shape(b)))

    return make_node(out, (p1, p2), vjp, "maximum")


def minimum(x1, x2):
    p1, a = _v(x1)
    p2, b = _v(x2)
    xp = xp_of(a if hasattr(a, "shape") else b)
    out = xp.minimum(a, b)
    pick = a <= b

    def vjp(g):
        return (_unbroadcast(g * pick, _shape(a)), _unbroadcast(g * ~pick, _shape(b)))

    return make_node(out, (p1, p2), vjp, "minimum")


def clip(x, x_min, x_max):
    p, a = _v(x)
    lo, hi = value_of(x_min), value_of(x_max)
    out = xp_of(a).clip(a, lo, hi)
    inside = (a >= lo) & (a <= hi)
    return make_node(out, (p,), lambda g: (g * inside,), "clip")


def where(condition, x1=None, x2=None):
    c = value_of(lift(condition))
    if x1 is None and x2 is None:
        return xp_of(c).nonzero(c)
    p1, a = _v(x1)
    p2, b = _v(x2)
    out = xp_of(c).where(c, a, b)

    def vjp(g):
        return (_unbroadcast(g * c, _shape(a)), _unbroadcast(g * ~c.astype(bool), _shape(b)))

    return make_node(out, (p1, p2), vjp, "where")


# ---------------------------------------------------------------- products
def _mm(a, b):
    """float32 products of matrices, and on the CPU of a batch (B, rows, cols) with a matrix or an
    equal batch, go to forgeml's GEMM kernel (its batched GEMM: NumPy's stacked matmul of the
    attention products took 1.3-2.5x as long; on a GPU forgeml runs a batch one matrix a launch,
    so CuPy's batched matmul keeps it); everything else to the array library."""
    batched = a.ndim == 3 or b.ndim == 3
    if (
        a.dtype == np.float32
        and b.dtype == np.float32
        and a.ndim in (2, 3)
        and b.ndim in (2, 3)
        and (not batched or (type(a) is np.ndarray and type(b) is np.ndarray))
        and (a.ndim == 2 or b.ndim == 2 or a.shape[0] == b.shape[0])
        and a.size
        and b.size
    ):
        from ..backend import matmul as kernel

        return kernel(a, b)
    return xp_of(a).matmul(a, b)


def matmul(x1, x2):
    p1, a = _v(x1)
    p2, b = _v(x2)
    out = _mm(a, b)

    def vjp(g):
        xp = xp_of(g)
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = xp.expand_dims(g2, -2)
        if b.ndim == 1:
            g2 = xp.expand_dims(g2, -1)
        ga = gb = None
        if type(p1) is Tensor:
            ga = _unbroadcast(_mm(g2, xp.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
        if type(p2) is Tensor:
            gb = _unbroadcast(_mm(xp.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
        return ga, gb

    return make_node(out, (p1, p2), vjp, "matmul")


def dot(x1, x2):
    a, b = value_of(lift(x1)), value_of(lift(x2))
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return multiply(x1, x2)
    if np.ndim(b) > 2:
        raise NotImplementedError("keras.ops.dot: x2 with rank > 2 is not supported; use einsum or matmul")
    return matmul(x1, x2)


def _einsum(xp, spec, *vals):
    """Two-operand contractions (MultiHeadAttention's projections, scores, context and their
    gradients) become one 2-D or batched product on forgeml's GEMM: NumPy's einsum loops in C
    without BLAS, and its BLAS route (optimize=True) oversubscribes the cores next to forgeml's
    OpenMP threads."""
    if len(vals) == 2:
        key = (spec, vals[0].shape, vals[0].strides, vals[1].shape, vals[1].strides)
        plan = _PLANS.get(key)
        if plan is None:
            plan = _PLANS[key] = _product_plan(spec, vals[0].shape, vals[0].strides, vals[1].shape, vals[1].strides)
            if len(_PLANS) > 512:
                _PLANS.pop(next(iter(_PLANS)))
        if plan:
            first, second, shape, perm = plan
            r = _mm(_as_matrix(xp, vals[first[0]], first), _as_matrix(xp, vals[second[0]], second))
            r = r.reshape(shape)
            return r if perm is None else r.transpose(perm)
    return xp.einsum(spec, *vals)


_PLANS: dict = {}  # (spec, shapes, strides) -> _product_plan's answer; most recent last


def _product_plan(spec, shape_a, strides_a, shape_b, strides_b):
    """How a two-operand einsum is one product: for each operand (which one, axes order, the
    matrix shape, copy or view, transposed), the result's shape by letters and its permutation to
    the output. None when the spec is not a plain product (repeated letters, a letter summed in one
    operand only, broadcasting)."""
    ins, out = spec.split("->")
    parts = ins.split(",")
    if len(parts) != 2 or builtins.any(len(set(p)) != len(p) for p in parts) or len(set(out)) != len(out):
        return None
    (sa, sb), shapes, strides = parts, (shape_a, shape_b), (strides_a, strides_b)
    dims = {}
    for s, shape in zip(parts, shapes):
        for c, n in zip(s, shape):
            if dims.setdefault(c, n) != n:  # broadcasting: NumPy's einsum
                return None
    batch = [c for c in sa if c in sb and c in out]
    contracted = [c for c in sa if c in sb and c not in out]
    free_a = [c for c in sa if c not in sb]
    free_b = [c for c in sb if c not in sa]
    if not contracted or sorted(out) != sorted(batch + free_a + free_b):
        return None
    first, second = (0, free_a), (1, free_b)
    if list(out) == batch + free_b + free_a != batch + free_a + free_b:  # B^T A^T: the output's order as computed
        first, second = second, first
    size = lambda cs: math.prod(dims[c] for c in cs)  # noqa: E731
    operands = []
    for (i, free), rows_first in ((first, True), (second, False)):
        s, strides_i = parts[i], strides[i]
        rows, cols = (free, contracted) if rows_first else (contracted, free)
        layouts = [((batch, rows, cols), False), ((batch, cols, rows), True)]  # stored (cols, rows): transposed
        viewable = [lay for lay in layouts if _merges(s, dims, strides_i, lay[0])]
        if viewable:
            (groups, trans), copy = viewable[0], False
        else:  # copied into the layout that keeps the operand's fastest axis innermost
            fastest = builtins.min(s, key=lambda c: builtins.abs(strides_i[s.index(c)]) if dims[c] > 1 else math.inf)
            groups, trans = layouts[1] if rows[-1:] == [fastest] != cols[-1:] else layouts[0]
            copy = True
        axes = tuple(s.index(c) for g in groups for c in g)
        shape = tuple(size(g) for g in (groups if batch else groups[1:]))
        operands.append((i, axes, shape, copy, trans))
    order = batch + first[1] + second[1]
    perm = None if list(out) == order else tuple(order.index(c) for c in out)
    return operands[0], operands[1], tuple(dims[c] for c in order), perm


def _merges(s, dims, strides, groups):
    """Whether the axes of s, grouped as given, merge into one dimension each without a copy: a
    group's axes (size-1 axes aside) nested, each outer stride the inner stride times its extent."""
    for group in groups:
        axes = [s.index(c) for c in group if dims[c] > 1]
        for outer, inner in zip(axes, axes[1:]):
            if strides[outer] != strides[inner] * dims[s[inner]]:
                return False
    return True


def _as_matrix(xp, x, plan):
    """One operand of a product as planned: transposed into its order, merged to a (batch of)
    matrix (a view, or a copy where the strides do not merge), transposed back if it is stored
    (cols, rows)."""
    _, axes, shape, copy, trans = plan
    t = x.transpose(axes)
    t = (xp.ascontiguousarray(t) if copy else t).reshape(shape)
    return t.swapaxes(-1, -2) if trans else t


def _explicit_spec(spec, ndims):
    """einsum subscripts with '...' spelled out in letters and the output written (NumPy's rule
    when it is implicit: the ellipsis dimensions, then the letters used once, sorted)."""
    ins, _, out = spec.partition("->")
    ins = ins.split(",")
    if len(ins) != len(ndims):
        raise ValueError(f"keras.ops.einsum: {len(ins)} operand subscripts for {len(ndims)} operands in {spec!r}")
    used = set(spec) - set(".,->")
    free = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" if c not in used]
    widths = [nd - (len(s) - 3) if "..." in s else 0 for s, nd in zip(ins, ndims)]
    ell = "".join(free[: builtins.max(widths, default=0)])
    ins = [s.replace("...", ell[len(ell) - w :] if w else "") for s, w in zip(ins, widths)]
    if "->" not in spec:
        letters = "".join(ins)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return ",".join(ins) + "->" + out


def einsum(subscripts, *operands):
    pv = [_v(o) for o in operands]
    parents = [p for p, _ in pv]
    vals = [v for _, v in pv]
    spec = subscripts.replace(" ", "")
    if "." in spec or "->" not in spec:
        spec = _explicit_spec(spec, [np.ndim(v) for v in vals])
    ins, out_spec = spec.split("->")
    ins = ins.split(",")
    xp = xp_of(vals[0])
    out = _einsum(xp, spec, *vals)

    def vjp(g):
        grads = []
        for i, (p, s) in enumerate(zip(parents, ins)):
            if type(p) is not Tensor:
                grads.append(None)
                continue
            full = s
            if len(set(s)) != len(s):  # a diagonal ('ii->i'): the gradient of the distinct letters, placed on it
                s = "".join(dict.fromkeys(s))
            others = [ins[j] for j in range(len(ins)) if j != i]
            known = set(out_spec).union(*others) if others else set(out_spec)
            kept = "".join(c for c in s if c in known)
            terms = ",".join([out_spec] + others)
            gi = _einsum(xp, f"{terms}->{kept}", g, *[vals[j] for j in range(len(ins)) if j != i])
            dims = {c: vals[i].shape[full.index(c)] for c in s}
            shape_s = tuple(dims[c] for c in s)
            if kept != s:  # indices summed away only here: broadcast back over them
                gi = xp.broadcast_to(gi.reshape([dims[c] if c in kept else 1 for c in s]), shape_s) if s else gi
            if full != s:
                diag = xp.zeros(vals[i].shape, gi.dtype)
                idx = tuple(xp.arange(dims[c]).reshape([dims[c] if d == c else 1 for d in s]) for c in full)
                diag[idx] = gi
                gi = diag
            if gi.shape != vals[i].shape:  # an ellipsis dimension broadcast from 1
                gi = gi.sum(
                    axis=tuple(k for k, d in enumerate(vals[i].shape) if d == 1 and gi.shape[k] != 1), keepdims=True
                )
            grads.append(gi)
        return grads

    return make_node(out, parents, vjp, "einsum")


# ---------------------------------------------------------------- reductions
def _ax(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(a % ndim for a in axis)


def _expand(g, shape, axis):
    """Broadcast a reduced gradient back to `shape`."""
    axes = _axes(axis, len(shape))
    if g.ndim != len(shape):
        g = g.reshape([1 if i in axes else s for i, s in enumerate(shape)])
    return xp_of(g).broadcast_to(g, shape)


def sum(x, axis=None, keepdims=False):
    axis = _ax(axis)
    p, a = _v(x)
    out = xp_of(a).sum(a, axis=axis, keepdims=keepdims)
    return make_node(out, (p,), lambda g: (_expand(g, a.shape, axis),), "sum")


def mean(x, axis=None, keepdims=False):
    axis = _ax(axis)
    p, a = _v(x)
    xp = xp_of(a)
    if a.dtype.kind in "biu":
        a = a.astype(np.float32)
    out = xp.mean(a, axis=axis, keepdims=keepdims)
    count = int(np.prod([a.shape[i] for i in _axes(axis, a.ndim)])) if a.ndim else 1
    return make_node(out, (p,), lambda g: (_expand(g / count, a.shape, axis),), "mean")


def _extreme(name, fn):
    def op(x, axis=None, keepdims=False, initial=None):
        axis = _ax(axis)
        p, a = _v(x)
        out = fn(xp_of(a), a, axis=axis, keepdims=keepdims)

        def vjp(g):
            o = _expand(out, a.shape, axis)
            hit = a == o
            count = _expand(hit.sum(axis=axis, keepdims=True), a.shape, axis) if axis is not None else hit.sum()
            return (_expand(g, a.shape, axis) * hit / count,)

        return make_node(out, (p,), vjp, name)

    op.__name__ = name
    return op


max = _extreme("max", lambda xp, a, **k: xp.max(a, **k))
min = _extreme("min", lambda xp, a, **k: xp.min(a, **k))
amax, amin = max, min


def prod(x, axis=None, keepdims=False):
    axis = _ax(axis)
    p, a = _v(x)
    out = xp_of(a).prod(a, axis=axis, keepdims=keepdims)
    # d prod / d a_i = prod / a_i (inputs with zeros get no exact gradient here)
    return make_node(out, (p,), lambda g: (_expand(g * out, a.shape, axis) / a,), "prod")


def var(x, axis=None, keepdims=False):
    d = subtract(x, mean(x, axis=axis, keepdims=True))
    return mean(square(d), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def logsumexp(x, axis=None, keepdims=False):
    axis = _ax(axis)
    p, a = _v(x)
    xp = xp_of(a)
    m = xp.max(a, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    s = xp.sum(xp.exp(a - m), axis=axis, keepdims=True)
    out_k = xp.log(s) + m
    out = out_k if keepdims else xp.squeeze(out_k, axis=_axes(axis, a.ndim))
    return make_node(out, (p,), lambda g: (_expand(g, a.shape, axis) * xp.exp(a - out_k),), "logsumexp")


def norm(x, ord=None, axis=None, keepdims=False):
    if ord not in (None, 2, "fro", "euclidean"):
        raise NotImplementedError("keras.ops.norm: only the 2-norm / Frobenius norm has a gradient rule here")
    return sqrt(sum(square(x), axis=axis, keepdims=keepdims))


# ---------------------------------------------------------------- shapes
def reshape(x, newshape):
    p, a = _v(x)
    return make_node(a.reshape(newshape), (p,), lambda g: (g.reshape(a.shape),), "reshape")


def transpose(x, axes=None):
    p, a = _v(x)
    out = xp_of(a).transpose(a, axes)
    inv = None if axes is None else np.argsort(axes)
    return make_node(out, (p,), lambda g: (xp_of(g).transpose(g, inv),), "transpose")


def expand_dims(x, axis):
    p, a = _v(x)
    return make_node(xp_of(a).expand_dims(a, axis), (p,), lambda g: (g.reshape(a.shape),), "expand_dims")


def squeeze(x, axis=None):
    axis = _ax(axis)
    p, a = _v(x)
    return make_node(xp_of(a).squeeze(a, axis), (p,), lambda g: (g.reshape(a.shape),), "squeeze")


def broadcast_to(x, shape):
    p, a = _v(x)
    return make_node(xp_of(a).broadcast_to(a, shape), (p,), lambda g: (_unbroadcast(g, a.shape),), "broadcast_to")


def tile(x, repeats):
    p, a = _v(x)
    xp = xp_of(a)
    out = xp.tile(a, repeats)
    reps = (1,) * (out.ndim - len(tuple(np.atleast_1d(repeats)))) + tuple(np.atleast_1d(repeats))
    base = (1,) * (out.ndim - a.ndim) + a.shape

    def vjp(g):
        g = g.reshape([v for r, s in zip(reps, base) for v in (r, s)])
        return (g.sum(axis=tuple(range(0, g.ndim, 2))).reshape(a.shape),)

    return make_node(out, (p,), vjp, "tile")


def flip(x, axis=None):
    p, a = _v(x)
    return make_node(xp_of(a).flip(a, axis), (p,), lambda g: (xp_of(g).flip(g, axis),), "flip")


def concatenate(xs, axis=0):
    pv = [_v(x) for x in xs]
    vals = [v for _, v in pv]
    out = xp_of(vals[0]).concatenate(vals, axis=axis)
    cuts = np.cumsum([v.shape[axis] for v in vals])[:-1]
    return make_node(out, [p for p, _ in pv], lambda g: xp_of(g).split(g, cuts, axis=axis), "concatenate")


def stack(xs, axis=0):
    pv = [_v(x) for x in xs]
    vals = [v for _, v in pv]
    xp = xp_of(vals[0])
    out = xp.stack(vals, axis=axis)
    return make_node(out, [p for p, _ in pv], lambda g: [xp.take(g, i, axis=axis) for i in range(len(vals))], "stack")


def get_item(x, key):
    p, a = _v(x)
    key = value_of(key) if type(key) is Tensor else key
    out = a[key]

    def vjp(g):
        xp = xp_of(g)
        z = xp.zeros(a.shape, dtype=g.dtype)
        if isinstance(key, (slice, int, type(None))) or (
            isinstance(key, tuple)
            and builtins.all(isinstance(k, (slice, int, type(None), type(Ellipsis))) for k in key)
        ):
            z[key] += g  # basic indexing: no repeated positions
        else:
            scatter_add(xp, z, key, g)
        return (z,)

    return make_node(out, (p,), vjp, "get_item")


def split(x, indices_or_sections, axis=0):
    p, a = _v(x)
    xp = xp_of(a)
    pieces = xp.split(a, indices_or_sections, axis=axis)
    if type(p) is not Tensor:
        return pieces
    out, start = [], 0
    for piece in pieces:
        sl = [slice(None)] * a.ndim
        sl[axis] = slice(start, start + piece.shape[axis])
        start += piece.shape[axis]
        out.append(get_item(p, tuple(sl)))
    return out


def take(x, indices, axis=None):
    p, a = _v(x)
    idx = value_of(lift(indices))
    xp = xp_of(a)
    idx = xp.asarray(idx).astype(np.int64)
    out = xp.take(a, idx, axis=axis)

    def vjp(g):
        z = xp.zeros(a.size if axis is None else a.shape, dtype=g.dtype)
        if axis is None:
            scatter_add(xp, z, idx.ravel(), g.ravel())
            return (z.reshape(a.shape),)
        ax = axis % a.ndim
        zt, gt = xp.moveaxis(z, ax, 0), xp.moveaxis(g, list(range(ax, ax + idx.ndim)), list(range(idx.ndim)))
        scatter_add(xp, zt, idx.ravel(), gt.reshape(idx.size, *zt.shape[1:]))
        return (z,)

    return make_node(out, (p,), vjp, "take")


def take_along_axis(x, indices, axis=None):
    p, a = _v(x)
    xp = xp_of(a)
    idx = xp.asarray(value_of(lift(indices))).astype(np.int64)
    out = xp.take_along_axis(a, idx, axis=axis)

    def vjp(g):
        z = xp.zeros(a.shape, dtype=g.dtype)
        if xp is np:
            np.put_along_axis(z, idx, 0, axis)  # shape check
            ii = list(np.indices(idx.shape, sparse=True))
            ii[axis % a.ndim] = idx
            np.add.at(z, tuple(ii), g)
        else:  # pragma: no cover - CuPy
            ii = list(xp.indices(idx.shape, sparse=True))
            ii[axis % a.ndim] = idx
            scatter_add(xp, z, tuple(ii), g)
        return (z,)

    return make_node(out, (p,), vjp, "take_along_axis")


def one_hot(x, num_classes, axis=-1, dtype="float32"):
    a = value_of(lift(x))
    xp = xp_of(a)
    a = xp.asarray(a).astype(np.int64)
    out = (a[..., None] == xp.arange(num_classes)).astype(dtype)
    return out if axis == -1 else xp.moveaxis(out, -1, axis)


# ---------------------------------------------------------------- dtypes and constants
def cast(x, dtype):
    p, a = _v(x)
    dtype = np.dtype(dtype)
    out = a.astype(dtype) if hasattr(a, "astype") else np.asarray(a, dtype=dtype)
    if dtype.kind != "f":
        return out
    src = a.dtype if hasattr(a, "dtype") else np.float32
    return make_node(out, (p,), lambda g: (g.astype(src),), "cast")


def convert_to_tensor(x, dtype=None, sparse=None):
    """Arrays stay arrays (NumPy or CuPy); a Tensor or Variable is returned as the tape sees it."""
    p = lift(x)
    if type(p) is Tensor:
        return p if dtype is None or p.dtype == np.dtype(dtype) else cast(p, dtype)
    xp = xp_of(p) if hasattr(p, "shape") else np
    a = xp.asarray(p)
    if dtype is not None:
        return a.astype(dtype)
    if a.dtype == np.float64 and not hasattr(p, "dtype"):
        a = a.astype(np.float32)  # Python floats become floatx, as in Keras
    return a


def stop_gradient(x):
    return value_of(lift(x))


def zeros(shape, dtype="float32"):
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype="float32"):
    return np.ones(shape, dtype=dtype)


def full(shape, fill_value, dtype=None):
    return np.full(shape, fill_value, dtype=dtype or "float32")


def zeros_like(x, dtype=None):
    a = value_of(lift(x))
    return xp_of(a).zeros_like(a, dtype=dtype)


def ones_like(x, dtype=None):
    a = value_of(lift(x))
    return xp_of(a).ones_like(a, dtype=dtype)


def arange(start, stop=None, step=1, dtype=None):
    return np.arange(start, stop, step, dtype=dtype) if stop is not None else np.arange(start, dtype=dtype)


def linspace(start, stop, num=50, endpoint=True, dtype=None):
    return np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype or "float32")


def eye(n, m=None, k=0, dtype="float32"):
    return np.eye(n, m, k, dtype=dtype)


def shape(x):
    return tuple(value_of(x).shape) if hasattr(value_of(x), "shape") else np.shape(x)


def size(x):
    return int(np.prod(shape(x)))


def ndim(x):
    return len(shape(x))
