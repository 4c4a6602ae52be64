"""Activations with forward and backward side by side.

``backward(dy, y, z)`` gets the activation's output y and, for those that need it, its input z;
``needs_input`` says whether a layer must keep z. ``kernel`` names the matmul epilogue that
computes the same function (fused with the bias into the product), or None.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["relu", "sigmoid", "tanh", "softmax", "gelu", "linear", "get", "serialize", "deserialize"]

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Activation:
    name = "linear"
    kernel: str | None = None
    needs_input = False

    def __call__(self, z):
        return self.forward(z)

    def forward(self, z, out=None):
        return z

    def backward(self, dy, y, z=None):
        """Gradient wrt the input; may overwrite dy."""
        return dy

    def __repr__(self):
        return f"<activation {self.name}>"


class Linear(Activation):
    name = "linear"


class ReLU(Activation):
    name, kernel = "relu", "relu"

    def forward(self, z, out=None):
        return np.maximum(z, 0, out=out) if out is not None else _xp(z).maximum(z, 0)

    def backward(self, dy, y, z=None):
        dy *= (y > 0)
        return dy


class Sigmoid(Activation):
    name, kernel = "sigmoid", "sigmoid"

    def forward(self, z, out=None):
        xp = _xp(z)
        # 1/(1+exp(-z)) overflows harmlessly to 0 for very negative z (exp -> inf)
        with np.errstate(over="ignore"):
            r = xp.exp(-z, out=out)
        r += 1
        return xp.reciprocal(r, out=r)

    def backward(self, dy, y, z=None):
        dy *= y * (1 - y)
        return dy


class Tanh(Activation):
    name, kernel = "tanh", "tanh"

    def forward(self, z, out=None):
        return _xp(z).tanh(z, out=out)

    def backward(self, dy, y, z=None):
        dy *= 1 - y * y
        return dy


class Softmax(Activation):
    """Over the last axis, max-shifted so exp never overflows."""
    name = "softmax"

    def forward(self, z, out=None):
        if (
            type(z) is np.ndarray
            and z.dtype == np.float32
            and z.size
            and (out is None or (type(out) is np.ndarray and out.dtype == np.float32 and out.flags.c_contiguous))
        ):
            from ..ops import rows  # forgeml's row kernel: the fused Dense forward's softmax, the same bits

            return rows.softmax_rows(z, out=out)
        xp = _xp(z)
        r = xp.subtract(z, z.max(axis=-1, keepdims=True), out=out)
        xp.exp(r, out=r)
        r /= r.sum(axis=-1, keepdims=True)
        return r

    def backward(self, dy, y, z=None):
        s = (dy * y).sum(axis=-1, keepdims=True)
        dy -= s
        dy *= y
        return dy


class GELU(Activation):
    """Exact GELU: z * Phi(z) with the erf-based normal CDF (Keras approximate=False)."""
    name, kernel, needs_input = "gelu", "gelu", True

    def forward(self, z, out=None):
        xp = _xp(z)
        r = _erf(xp, z * _SQRT1_2)
        r += 1
        r *= 0.5
        return xp.multiply(z, r, out=out)

    def backward(self, dy, y, z=None):
        xp = _xp(z)
        cdf = (_erf(xp, z * _SQRT1_2) + 1) * 0.5
        pdf = xp.exp(-0.5 * z * z) * _INV_SQRT_2PI
        dy *= cdf + z * pdf
        return dy


def _xp(a):
    if type(a).__module__.split(".", 1)[0] == "cupy":
        import cupy
        return cupy
    return np


def _erf(xp, x):
    if xp is np:
        return _erf_np(x)  # no SciPy at run time (it is not a dependency, and slow to import)
    import cupyx.scipy.special
    return cupyx.scipy.special.erf(x)


def _erf_np(x):
    """erf to 1.2e-7 relative (float32 accuracy) from the Chebyshev fit of erfc in float64."""
    xd = np.asarray(x, dtype=np.float64)
    a = np.abs(xd)
    t = 1.0 / (1.0 + 0.5 * a)
    # Numerical Recipes erfc Chebyshev fit, relative error < 1.2e-7
    poly = -a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(xd >= 0, 1 - erfc, erfc - 1).astype(np.asarray(x).dtype)


relu, sigmoid, tanh, softmax, gelu, linear = ReLU(), Sigmoid(), Tanh(), Softmax(), GELU(), Linear()
_BY_NAME = {a.name: a for a in (relu, sigmoid, tanh, softmax, gelu, linear)}

from .activations_extra import EXTRA as _EXTRA  # noqa: E402  (elu, selu, swish, ...: they subclass Activation)

_BY_NAME.update(_EXTRA)
globals().update(_EXTRA)
__all__ += sorted(_EXTRA)


def get(identifier) -> Activation:
    """None, a name, or an Activation; unknown names raise a ValueError listing the known ones."""
    if identifier is None:
        return linear
    if isinstance(identifier, Activation):
        return identifier
    if isinstance(identifier, str):
        act = _BY_NAME.get(identifier.lower())
        if act is None:
            raise ValueError(f"Could not interpret activation function identifier: {identifier!r}. "
                             f"Known: {sorted(_BY_NAME)}")
        return act
    if isinstance(identifier, dict) and "class_name" in identifier:
        return get(identifier.get("config", {}).get("name", identifier["class_name"]).lower())
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}")


def serialize(act: Activation) -> str:
    return act.name


def deserialize(name) -> Activation:
    return get(name)
