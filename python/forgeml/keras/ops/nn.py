"""keras.ops.nn: activations, softmax, losses' building blocks, conv and pooling.

Activations and softmax have closed-form derivatives written from their outputs. The cross-entropies
``from_logits`` are one node each (softmax fused with the loss, gradient ``p - y``); conv and
pooling are forgeml's kernels with their hand-written backward kernels as the VJP (float32).
"""

from __future__ import annotations

import math

import numpy as np

from ..autodiff.tape import Tensor, lift, make_node, value_of
from ..backend import epsilon, xp_of
from . import numpy as knp

__all__ = [
    "relu",
    "relu6",
    "sigmoid",
    "softplus",
    "softsign",
    "silu",
    "swish",
    "gelu",
    "elu",
    "selu",
    "leaky_relu",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "log_sigmoid",
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "conv",
    "max_pool",
    "average_pool",
    "one_hot",
    "moments",
    "normalize",
]

tanh = knp.tanh
one_hot = knp.one_hot


def _v(x):
    return knp._v(x)


def _act(name, f, df):
    def op(x):
        p, a = _v(x)
        xp = xp_of(a)
        out = f(xp, a)
        return make_node(out, (p,), lambda g: (g * df(xp, a, out),), name)

    op.__name__ = name
    return op


def _sig(xp, a):
    return 0.5 * (xp.tanh(0.5 * a) + 1)  # overflow-free logistic


relu = _act("relu", lambda xp, a: xp.maximum(a, 0), lambda xp, a, o: (a > 0).astype(a.dtype))
relu6 = _act("relu6", lambda xp, a: xp.clip(a, 0, 6), lambda xp, a, o: ((a > 0) & (a < 6)).astype(a.dtype))
sigmoid = _act("sigmoid", _sig, lambda xp, a, o: o * (1 - o))
softplus = _act("softplus", lambda xp, a: xp.logaddexp(a, 0), lambda xp, a, o: _sig(xp, a))
softsign = _act("softsign", lambda xp, a: a / (1 + xp.abs(a)), lambda xp, a, o: 1 / (1 + xp.abs(a)) ** 2)
silu = _act("silu", lambda xp, a: a * _sig(xp, a), lambda xp, a, o: _sig(xp, a) * (1 + a * (1 - _sig(xp, a))))
swish = silu
log_sigmoid = _act("log_sigmoid", lambda xp, a: -xp.logaddexp(-a, 0), lambda xp, a, o: _sig(xp, -a))
hard_sigmoid = _act(
    "hard_sigmoid", lambda xp, a: xp.clip(a / 6 + 0.5, 0, 1), lambda xp, a, o: ((a > -3) & (a < 3)).astype(a.dtype) / 6
)


def _erf(xp, a):
    if xp is np:
        from scipy.special import erf

        return erf(a).astype(a.dtype)
    import cupyx.scipy.special  # pragma: no cover - GPU

    return cupyx.scipy.special.erf(a)


def gelu(x, approximate=True):
    p, a = _v(x)
    xp = xp_of(a)
    if approximate:
        c = math.sqrt(2 / math.pi)
        u = c * (a + 0.044715 * a**3)
        t = xp.tanh(u)
        out = 0.5 * a * (1 + t)
        return make_node(
            out, (p,), lambda g: (g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * c * (1 + 3 * 0.044715 * a * a)),), "gelu"
        )
    cdf = 0.5 * (1 + _erf(xp, a / math.sqrt(2)))
    out = a * cdf
    pdf = xp.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    return make_node(out, (p,), lambda g: (g * (cdf + a * pdf),), "gelu")


def elu(x, alpha=1.0):
    p, a = _v(x)
    xp = xp_of(a)
    e = xp.expm1(xp.minimum(a, 0))
    out = xp.where(a > 0, a, alpha * e)
    return make_node(out, (p,), lambda g: (g * xp.where(a > 0, 1, alpha * (e + 1)),), "elu")


def selu(x):
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return knp.multiply(elu(x, alpha), scale)


def leaky_relu(x, negative_slope=0.2):
    p, a = _v(x)
    xp = xp_of(a)
    out = xp.where(a > 0, a, negative_slope * a)
    return make_node(out, (p,), lambda g: (g * xp.where(a > 0, 1, negative_slope).astype(a.dtype),), "leaky_relu")


def softmax(x, axis=-1):
    p, a = _v(x)
    xp = xp_of(a)
    rows = type(a) is np.ndarray and a.dtype == np.float32 and a.size and axis in (-1, a.ndim - 1)
    if rows:
        out = _row_kernels().softmax_rows(a)
    else:
        e = xp.exp(a - a.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)

    def vjp(g):
        if rows and type(g) is np.ndarray and g.dtype == np.float32:
            return (_row_kernels().softmax_rows_backward(out, g),)
        r = g * out  # out * (g - sum(g * out)) in three passes and one temporary
        r_sum = r.sum(axis=axis, keepdims=True)
        xp.subtract(g, r_sum, out=r)
        r *= out
        return (r,)

    return make_node(out, (p,), vjp, "softmax")


def _row_kernels():
    """forgeml.ops.rows (softmax forward and backward in one vector loop a pass; NumPy's max, exp,
    sum and divide passes took 2.3-4x as long at attention-score sizes), imported on first use."""
    from ...ops import rows

    return rows


def log_softmax(x, axis=-1):
    p, a = _v(x)
    xp = xp_of(a)
    s = a - a.max(axis=axis, keepdims=True)
    out = s - xp.log(xp.exp(s).sum(axis=axis, keepdims=True))
    return make_node(out, (p,), lambda g: (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),), "log_softmax")


# ---------------------------------------------------------------- losses' building blocks (per sample)
def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Per-sample -log p[target]; from_logits fuses the log-softmax (one node, gradient p - onehot)."""
    po, z = _v(output)
    y = value_of(lift(target))
    xp = xp_of(z)
    y = xp.asarray(y).astype(np.int64).reshape(z.shape[:-1]) if axis in (-1, z.ndim - 1) else None
    if y is None:
        raise NotImplementedError("sparse_categorical_crossentropy: axis must be the last axis")
    if from_logits:
        s = z - z.max(axis=-1, keepdims=True)
        lse = xp.log(xp.exp(s).sum(axis=-1, keepdims=True))
        logp = s - lse
    else:
        q = z / z.sum(axis=-1, keepdims=True)
        logp = xp.log(xp.clip(q, epsilon(), 1 - epsilon()))
    picked = xp.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
    out = -picked
    onehot = (y[..., None] == xp.arange(z.shape[-1])).astype(z.dtype)

    def vjp(g):
        if from_logits:
            return (g[..., None] * (xp.exp(logp) - onehot),)
        ssum = z.sum(axis=-1, keepdims=True)
        qy = xp.take_along_axis(q, y[..., None], axis=-1)
        ok = ((qy > epsilon()) & (qy < 1 - epsilon())).astype(z.dtype)
        return (g[..., None] * ok * (1 / ssum - onehot / (ssum * qy)),)

    return make_node(out, (po,), vjp, "sparse_categorical_crossentropy")


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    if from_logits:
        pt, t = _v(target)
        po, z = _v(output)
        xp = xp_of(z)
        s = z - z.max(axis=axis, keepdims=True)
        logp = s - xp.log(xp.exp(s).sum(axis=axis, keepdims=True))
        out = -(t * logp).sum(axis=axis)

        def vjp(g):
            ge = xp.expand_dims(g, axis)
            return (-ge * logp, ge * (xp.exp(logp) * t.sum(axis=axis, keepdims=True) - t))

        return make_node(out, (pt, po), vjp, "categorical_crossentropy")
    q = knp.divide(output, knp.sum(output, axis=axis, keepdims=True))
    q = knp.clip(q, epsilon(), 1 - epsilon())
    return knp.negative(knp.sum(knp.multiply(target, knp.log(q)), axis=axis))


def binary_crossentropy(target, output, from_logits=False):
    if from_logits:  # max(z, 0) - z t + log(1 + exp(-|z|)), one node
        pt, t = _v(target)
        po, z = _v(output)
        xp = xp_of(z)
        out = xp.maximum(z, 0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
        return make_node(out, (pt, po), lambda g: (-g * z, g * (_sig(xp, z) - t)), "binary_crossentropy")
    q = knp.clip(output, epsilon(), 1 - epsilon())
    one_minus = knp.subtract(1.0, target)
    return knp.negative(
        knp.add(knp.multiply(target, knp.log(q)), knp.multiply(one_minus, knp.log(knp.subtract(1.0, q))))
    )


def moments(x, axes, keepdims=False):
    m = knp.mean(x, axis=axes, keepdims=True)
    v = knp.mean(knp.square(knp.subtract(x, m)), axis=axes, keepdims=keepdims)
    return (m if keepdims else knp.squeeze(m, axis=axes)), v


def normalize(x, axis=-1, order=2, epsilon=1e-12):
    n = knp.norm(x, axis=axis, keepdims=True)
    return knp.divide(x, knp.maximum(n, epsilon))


# ---------------------------------------------------------------- forgeml kernels as single nodes
def _kernels():
    from ... import ops

    return ops


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """2-D convolution, channels last: inputs (N, H, W, C), kernel (KH, KW, C, O) (float32)."""
    if data_format not in (None, "channels_last"):
        raise NotImplementedError("keras.ops.conv: only data_format='channels_last'")
    px, x = _v(inputs)
    pw, w = _v(kernel)
    if x.ndim != 4:
        raise NotImplementedError(f"keras.ops.conv: 2-D convolution only (inputs of rank 4), got rank {x.ndim}")
    k = _kernels()
    x32, w32 = x.astype(np.float32, copy=False), w.astype(np.float32, copy=False)
    out = k.conv2d(x32, w32, strides=strides, padding=padding, dilation=dilation_rate)

    def vjp(g):
        dx, dw, _ = k.conv2d_grad(
            x32, w32, g.astype(np.float32, copy=False), strides=strides, padding=padding, dilation=dilation_rate
        )
        return dx, dw

    return make_node(out, (px, pw), vjp, "conv")


def _pool(kind, inputs, pool_size, strides, padding, data_format):
    if data_format not in (None, "channels_last"):
        raise NotImplementedError("keras.ops pooling: only data_format='channels_last'")
    px, x = _v(inputs)
    k = _kernels()
    x32 = x.astype(np.float32, copy=False)
    fwd, bwd = (k.max_pool2d, k.max_pool2d_grad) if kind == "max" else (k.avg_pool2d, k.avg_pool2d_grad)
    out = fwd(x32, pool_size, strides, padding)
    return make_node(
        out, (px,), lambda g: (bwd(x32, g.astype(np.float32, copy=False), pool_size, strides, padding),), f"{kind}_pool"
    )


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool("max", inputs, pool_size, strides, padding, data_format)


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool("avg", inputs, pool_size, strides, padding, data_format)


def _is_tensor(x):
    return type(x) is Tensor
