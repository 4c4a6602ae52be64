"""The rest of Keras 3's activations, forward and backward side by side (same contract as
activations.py: ``backward(dy, y, z)`` may overwrite dy; ``needs_input`` says when z is kept).

None of them has a matmul epilogue (``kernel`` is None), so layers run them after the product.
"""

from __future__ import annotations

import numpy as np

from .activations import Activation, _xp

__all__ = [
    "EXTRA",
    "ELU",
    "SELU",
    "Swish",
    "LeakyReLU",
    "ReLU6",
    "Softplus",
    "Softsign",
    "HardSigmoid",
    "HardSwish",
    "Mish",
    "Exponential",
    "LogSoftmax",
]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _store(r, out):
    if out is None:
        return r
    out[...] = r
    return out


def _sigmoid(xp, z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + xp.exp(-z))


def _softplus(xp, z):
    return xp.log1p(xp.exp(-abs(z))) + xp.maximum(z, 0)


class ELU(Activation):
    """z > 0: z; else alpha (exp(z) - 1). The gradient follows from y alone (y > 0 iff z > 0)."""

    name = "elu"

    def __init__(self, alpha=1.0):
        self.alpha = float(alpha)

    def forward(self, z, out=None):
        xp = _xp(z)
        return _store(xp.where(z > 0, z, self.alpha * xp.expm1(xp.minimum(z, 0))).astype(z.dtype), out)

    def backward(self, dy, y, z=None):
        dy *= _xp(y).where(y > 0, 1, y + self.alpha).astype(dy.dtype)
        return dy


class SELU(Activation):
    name = "selu"

    def forward(self, z, out=None):
        xp = _xp(z)
        r = _SELU_SCALE * xp.where(z > 0, z, _SELU_ALPHA * xp.expm1(xp.minimum(z, 0)))
        return _store(r.astype(z.dtype), out)

    def backward(self, dy, y, z=None):
        dy *= _xp(y).where(y > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA).astype(dy.dtype)
        return dy


class Swish(Activation):
    """z sigmoid(z) (Keras: swish, silu)."""

    name, needs_input = "swish", True

    def forward(self, z, out=None):
        return _store((z * _sigmoid(_xp(z), z)).astype(z.dtype), out)

    def backward(self, dy, y, z=None):
        s = _sigmoid(_xp(z), z)
        dy *= (s * (1 + z * (1 - s))).astype(dy.dtype)
        return dy


class LeakyReLU(Activation):
    name = "leaky_relu"

    def __init__(self, negative_slope=0.2):
        self.negative_slope = float(negative_slope)

    def forward(self, z, out=None):
        return _store(_xp(z).where(z > 0, z, z * self.negative_slope).astype(z.dtype), out)

    def backward(self, dy, y, z=None):
        # y > 0 iff z > 0 for a positive slope; a negative slope needs the input's sign instead
        src = y if self.negative_slope >= 0 else z
        dy *= _xp(dy).where(src > 0, 1, self.negative_slope).astype(dy.dtype)
        return dy


class ReLU6(Activation):
    name = "relu6"

    def forward(self, z, out=None):
        return _store(_xp(z).clip(z, 0, 6), out)

    def backward(self, dy, y, z=None):
        dy *= (y > 0) & (y < 6)
        return dy


class Softplus(Activation):
    name, needs_input = "softplus", True

    def forward(self, z, out=None):
        return _store(_softplus(_xp(z), z).astype(z.dtype), out)

    def backward(self, dy, y, z=None):
        dy *= _sigmoid(_xp(z), z).astype(dy.dtype)
        return dy


class Softsign(Activation):
    name, needs_input = "softsign", True

    def forward(self, z, out=None):
        return _store(z / (1 + abs(z)), out)

    def backward(self, dy, y, z=None):
        d = 1 + abs(z)
        dy /= d * d
        return dy


class HardSigmoid(Activation):
    """Keras 3: relu6(z + 3) / 6."""

    name = "hard_sigmoid"

    def forward(self, z, out=None):
        return _store((_xp(z).clip(z + 3, 0, 6) / 6).astype(z.dtype), out)

    def backward(self, dy, y, z=None):
        dy *= ((y > 0) & (y < 1)) / np.float32(6)
        return dy


class HardSwish(Activation):
    """z relu6(z + 3) / 6 (Keras: hard_swish, hard_silu)."""

    name, needs_input = "hard_swish", True

    def forward(self, z, out=None):
        return _store((z * _xp(z).clip(z + 3, 0, 6) / 6).astype(z.dtype), out)

    def backward(self, dy, y, z=None):
        xp = _xp(z)
        dy *= xp.where(z < -3, 0, xp.where(z > 3, 1, (2 * z + 3) / 6)).astype(dy.dtype)
        return dy


class Mish(Activation):
    """z tanh(softplus(z))."""

    name, needs_input = "mish", True

    def forward(self, z, out=None):
        xp = _xp(z)
        return _store((z * xp.tanh(_softplus(xp, z))).astype(z.dtype), out)

    def backward(self, dy, y, z=None):
        xp = _xp(z)
        t = xp.tanh(_softplus(xp, z))
        dy *= (t + z * _sigmoid(xp, z) * (1 - t * t)).astype(dy.dtype)
        return dy


class Exponential(Activation):
    name = "exponential"

    def forward(self, z, out=None):
        return _xp(z).exp(z, out=out)

    def backward(self, dy, y, z=None):
        dy *= y
        return dy


class LogSoftmax(Activation):
    """Over the last axis: z - logsumexp(z)."""

    name = "log_softmax"

    def forward(self, z, out=None):
        xp = _xp(z)
        s = z - z.max(axis=-1, keepdims=True)
        return _store(s - xp.log(xp.exp(s).sum(axis=-1, keepdims=True)), out)

    def backward(self, dy, y, z=None):
        dy -= _xp(y).exp(y) * dy.sum(axis=-1, keepdims=True)
        return dy


_swish, _hswish = Swish(), HardSwish()
EXTRA = {
    "elu": ELU(),
    "selu": SELU(),
    "swish": _swish,
    "silu": _swish,
    "leaky_relu": LeakyReLU(),
    "relu6": ReLU6(),
    "softplus": Softplus(),
    "softsign": Softsign(),
    "hard_sigmoid": HardSigmoid(),
    "hard_swish": _hswish,
    "hard_silu": _hswish,
    "mish": Mish(),
    "exponential": Exponential(),
    "log_softmax": LogSoftmax(),
}
