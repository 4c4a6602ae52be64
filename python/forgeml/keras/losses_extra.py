"""The rest of Keras 3's losses, value and gradient side by side (the contract of losses.py:
``per_sample`` gives one loss per sample; ``step`` gives the weighted sum and its gradient / n).

Two shapes of loss: elementwise ones (Huber, LogCosh, Poisson, MAPE, MSLE, hinges, binary focal)
average an elementwise term over every non-batch axis; row ones (KL divergence, categorical
hinge, cosine similarity, categorical focal) reduce the last axis first and average the rest.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import epsilon, xp_of
from .losses import Loss, _reduce_last, _scale_rows, _weighted_sum

__all__ = [
    "Huber",
    "LogCosh",
    "KLDivergence",
    "Poisson",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "CosineSimilarity",
    "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy",
    "EXTRA_BY_NAME",
]


class _Elementwise(Loss):
    """Subclasses give ``_value(y, p)`` and ``_grad(y, p)`` elementwise."""

    def per_sample(self, y, y_pred):
        return _reduce_last(xp_of(y_pred), self._value(y, y_pred))

    def step(self, y, y_pred, sw, n):
        xp = xp_of(y_pred)
        total = _weighted_sum(xp, _reduce_last(xp, self._value(y, y_pred)), sw)
        g = self._grad(y, y_pred).astype(np.float32)
        return total, _scale_rows(g, sw, n * int(np.prod(y_pred.shape[1:])))


class _Rowwise(Loss):
    """Subclasses give ``_value(y, p)`` over the last axis (shape p.shape[:-1]) and its gradient."""

    def per_sample(self, y, y_pred):
        return _reduce_last(xp_of(y_pred), self._value(y, y_pred))

    def step(self, y, y_pred, sw, n):
        xp = xp_of(y_pred)
        total = _weighted_sum(xp, _reduce_last(xp, self._value(y, y_pred)), sw)
        g = self._grad(y, y_pred).astype(np.float32)
        terms = int(np.prod(y_pred.shape[1:-1])) if y_pred.ndim > 2 else 1
        return total, _scale_rows(g, sw, n * terms)


class Huber(_Elementwise):
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta)."""

    name = "huber_loss"

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name)
        self.delta = float(delta)

    def _value(self, y, p):
        d = abs(p - y)
        return xp_of(p).where(d <= self.delta, 0.5 * d * d, self.delta * (d - 0.5 * self.delta))

    def _grad(self, y, p):
        return xp_of(p).clip(p - y, -self.delta, self.delta)

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


class LogCosh(_Elementwise):
    """log(cosh(d)), written d + softplus(-2d) - log 2 so large |d| does not overflow."""

    name = "log_cosh"

    def _value(self, y, p):
        xp = xp_of(p)
        d = (p - y).astype(np.float64)
        return d + xp.logaddexp(0.0, -2.0 * d) - math.log(2.0)

    def _grad(self, y, p):
        return xp_of(p).tanh(p - y)


class Poisson(_Elementwise):
    """p - y log(p + eps)."""

    name = "poisson"

    def _value(self, y, p):
        return p - y * xp_of(p).log(p + epsilon())

    def _grad(self, y, p):
        return 1 - y / (p + epsilon())


def _signed_labels(y):
    """Keras's hinges turn 0/1 labels into -1/+1 (other labels are used as given)."""
    xp = xp_of(y)
    if y.size and bool(xp.all((y == 0) | (y == 1))):
        return 2 * y - 1
    return y


class Hinge(_Elementwise):
    """max(1 - y p, 0) with y in {-1, 1} (0/1 labels are converted)."""

    name = "hinge"

    def prepare_targets(self, y, pred_shape):
        return _signed_labels(super().prepare_targets(y, pred_shape))

    def _value(self, y, p):
        return xp_of(p).maximum(1 - y * p, 0)

    def _grad(self, y, p):
        return -y * (1 - y * p > 0)


class SquaredHinge(Hinge):
    name = "squared_hinge"

    def _value(self, y, p):
        m = xp_of(p).maximum(1 - y * p, 0)
        return m * m

    def _grad(self, y, p):
        return -2 * y * xp_of(p).maximum(1 - y * p, 0)


class MeanAbsolutePercentageError(_Elementwise):
    """100 |y - p| / max(|y|, eps)."""

    name = "mean_absolute_percentage_error"

    def _value(self, y, p):
        return 100.0 * abs(y - p) / xp_of(p).maximum(abs(y), epsilon())

    def _grad(self, y, p):
        return 100.0 * xp_of(p).sign(p - y) / xp_of(p).maximum(abs(y), epsilon())


class MeanSquaredLogarithmicError(_Elementwise):
    """(log(max(p, eps) + 1) - log(max(y, eps) + 1))^2."""

    name = "mean_squared_logarithmic_error"

    def _value(self, y, p):
        xp = xp_of(p)
        d = xp.log(xp.maximum(p, epsilon()) + 1) - xp.log(xp.maximum(y, epsilon()) + 1)
        return d * d

    def _grad(self, y, p):
        xp = xp_of(p)
        d = xp.log(xp.maximum(p, epsilon()) + 1) - xp.log(xp.maximum(y, epsilon()) + 1)
        return xp.where(p > epsilon(), 2 * d / (p + 1), 0)


class BinaryFocalCrossentropy(_Elementwise):
    """(1 - p_t)^gamma * bce, p_t = y p + (1 - y)(1 - p); with class balancing times
    y alpha + (1 - y)(1 - alpha)."""

    name = "binary_focal_crossentropy"

    def __init__(
        self,
        apply_class_balancing=False,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name=None,
    ):
        super().__init__(reduction, name)
        self.apply_class_balancing, self.alpha, self.gamma = bool(apply_class_balancing), float(alpha), float(gamma)
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)

    def prepare_targets(self, y, pred_shape):
        y = super().prepare_targets(y, pred_shape)
        return y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing if self.label_smoothing else y

    def _parts(self, y, z):
        """(p, bce, d bce / d input, d p / d input) with the input z (logits or probabilities)."""
        xp = xp_of(z)
        if self.from_logits:
            p = 1.0 / (1.0 + xp.exp(-z))
            bce = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-abs(z)))
            return p, bce, p - y, p * (1 - p)
        eps = epsilon()
        pc = xp.clip(z, eps, 1 - eps)
        bce = -(y * xp.log(pc) + (1 - y) * xp.log(1 - pc))
        inside = (z > eps) & (z < 1 - eps)
        return z, bce, xp.where(inside, (pc - y) / (pc * (1 - pc)), 0), 1.0

    def _weight(self, y):
        return y * self.alpha + (1 - y) * (1 - self.alpha) if self.apply_class_balancing else 1.0

    def _value(self, y, z):
        p, bce, _, _ = self._parts(y, z)
        pt = y * p + (1 - y) * (1 - p)
        return self._weight(y) * (1 - pt) ** self.gamma * bce

    def _grad(self, y, z):
        p, bce, dbce, dp = self._parts(y, z)
        pt = y * p + (1 - y) * (1 - p)
        q = xp_of(z).maximum(1 - pt, 0)
        dfocal = -self.gamma * q ** max(self.gamma - 1, 0) * (2 * y - 1) * dp if self.gamma else 0.0
        return self._weight(y) * (dfocal * bce + q**self.gamma * dbce)

    def get_config(self):
        return {
            **super().get_config(),
            "apply_class_balancing": self.apply_class_balancing,
            "alpha": self.alpha,
            "gamma": self.gamma,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


class KLDivergence(_Rowwise):
    """sum y log(y / p) over the last axis, both clipped to [eps, 1]."""

    name = "kl_divergence"

    def _value(self, y, p):
        xp = xp_of(p)
        yc, pc = xp.clip(y, epsilon(), 1), xp.clip(p, epsilon(), 1)
        return (yc * xp.log(yc / pc)).sum(axis=-1)

    def _grad(self, y, p):
        xp = xp_of(p)
        yc, pc = xp.clip(y, epsilon(), 1), xp.clip(p, epsilon(), 1)
        return xp.where((p >= epsilon()) & (p <= 1), -yc / pc, 0)


class CategoricalHinge(_Rowwise):
    """max(max((1 - y) p) - sum(y p) + 1, 0)."""

    name = "categorical_hinge"

    def _value(self, y, p):
        xp = xp_of(p)
        return xp.maximum(((1 - y) * p).max(axis=-1) - (y * p).sum(axis=-1) + 1, 0)

    def _grad(self, y, p):
        xp = xp_of(p)
        neg = (1 - y) * p
        k = neg.argmax(axis=-1)
        onehot = (xp.arange(p.shape[-1]) == k[..., None]).astype(p.dtype)
        active = (self._value(y, p) > 0)[..., None]
        return active * (onehot * (1 - y) - y)


def _l2_normalize(xp, a):
    norm = xp.sqrt(xp.maximum((a * a).sum(axis=-1, keepdims=True), 1e-12))
    return a / norm, norm


class CosineSimilarity(_Rowwise):
    """-sum(normalize(y) normalize(p)) over the last axis."""

    name = "cosine_similarity"

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name)
        if axis != -1:
            raise NotImplementedError("CosineSimilarity: only axis=-1 is supported")
        self.axis = -1

    def _value(self, y, p):
        xp = xp_of(p)
        return -(_l2_normalize(xp, y)[0] * _l2_normalize(xp, p)[0]).sum(axis=-1)

    def _grad(self, y, p):
        xp = xp_of(p)
        yh = _l2_normalize(xp, y)[0]
        ph, norm = _l2_normalize(xp, p)
        inside = (p * p).sum(axis=-1, keepdims=True) > 1e-12
        g = -(yh - (yh * ph).sum(axis=-1, keepdims=True) * ph) / norm
        return xp.where(inside, g, -yh / norm)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


class CategoricalFocalCrossentropy(_Rowwise):
    """-sum alpha (1 - q)^gamma y log q, q = p / sum(p) clipped to [eps, 1 - eps] (softmax of logits)."""

    name = "categorical_focal_crossentropy"

    def __init__(
        self,
        alpha=0.25,
        gamma=2.0,
        from_logits=False,
        label_smoothing=0.0,
        axis=-1,
        reduction="sum_over_batch_size",
        name=None,
    ):
        super().__init__(reduction, name)
        self.alpha, self.gamma, self.from_logits = float(alpha), float(gamma), bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, pred_shape):
        y = super().prepare_targets(y, pred_shape)
        k = pred_shape[-1]
        return y * (1 - self.label_smoothing) + self.label_smoothing / k if self.label_smoothing else y

    def _q(self, p):
        xp = xp_of(p)
        if self.from_logits:
            e = xp.exp(p - p.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)
        return p / p.sum(axis=-1, keepdims=True)

    def _value(self, y, p):
        xp = xp_of(p)
        qc = xp.clip(self._q(p), epsilon(), 1 - epsilon())
        return -(self.alpha * (1 - qc) ** self.gamma * y * xp.log(qc)).sum(axis=-1)

    def _grad(self, y, p):
        xp = xp_of(p)
        q = self._q(p)
        qc = xp.clip(q, epsilon(), 1 - epsilon())
        inside = (q > epsilon()) & (q < 1 - epsilon())
        # dL/dq_j for the clipped q, then through the normalisation (or the softmax)
        gq = (
            -self.alpha
            * y
            * ((1 - qc) ** self.gamma / qc - self.gamma * (1 - qc) ** max(self.gamma - 1, 0) * xp.log(qc))
        )
        gq = xp.where(inside, gq, 0)
        if self.from_logits:
            return q * (gq - (gq * q).sum(axis=-1, keepdims=True))
        s = p.sum(axis=-1, keepdims=True)
        return (gq - (gq * q).sum(axis=-1, keepdims=True)) / s

    def get_config(self):
        return {
            **super().get_config(),
            "alpha": self.alpha,
            "gamma": self.gamma,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


EXTRA_BY_NAME = {
    "huber": Huber,
    "huber_loss": Huber,
    "log_cosh": LogCosh,
    "logcosh": LogCosh,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
    "poisson": Poisson,
    "hinge": Hinge,
    "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "cosine_similarity": CosineSimilarity,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "categorical_focal_crossentropy": CategoricalFocalCrossentropy,
}
