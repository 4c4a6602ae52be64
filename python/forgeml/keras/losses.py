"""Losses with value and gradient side by side.

``step(y_true, y_pred, sw, n)`` returns (sum of weighted per-sample losses as a float64, gradient of
that sum / n wrt y_pred): Keras's "sum_over_batch_size" reduction. Cross-entropies also accept
logits through ``step_logits`` when the model's output activation is fused into them (stable
log-softmax / log-sigmoid, gradient p - y): ``fuses(activation)`` says when that applies.
Targets are validated once per fit by ``prepare_targets``.
"""
from __future__ import annotations

import numpy as np

from . import activations
from .backend import epsilon, xp_of

__all__ = ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy", "BinaryCrossentropy",
           "MeanSquaredError", "MeanAbsoluteError", "sparse_categorical_crossentropy", "categorical_crossentropy",
           "binary_crossentropy", "mean_squared_error", "mean_absolute_error", "mse", "mae", "get", "serialize"]


def _f64_sum(xp, a):
    return float(xp.sum(a, dtype=np.float64))


def _weighted_sum(xp, per_sample, sw):
    if sw is None:
        return _f64_sum(xp, per_sample)
    return float(xp.dot(per_sample.astype(np.float64), sw.astype(np.float64)))


_ARANGE = {}


def _rows(xp, n):
    """arange(n), cached per size (the hot loop asks for the same few sizes)."""
    key = (xp.__name__, n)
    r = _ARANGE.get(key)
    if r is None:
        r = _ARANGE[key] = xp.arange(n)
    return r


def _scale_rows(g, sw, n):
    """g *= sw[:, None] / n (g's rows are samples)."""
    if sw is None:
        g *= 1.0 / n
    else:
        g *= (sw * (1.0 / n)).astype(np.float32).reshape((-1,) + (1,) * (g.ndim - 1))
    return g


class Loss:
    name = "loss"
    expects_int_labels = False

    def __init__(self, reduction="sum_over_batch_size", name=None):
        if reduction not in ("sum_over_batch_size", "sum", "mean", "none", None):
            raise ValueError(f"reduction: expected 'sum_over_batch_size', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        if name is not None:
            self.name = name

    # ---------------------------------------------------------------- public Keras-style call
    def _is_builtin_loss(self):
        """True for forgeml's losses (hand-written gradient), False for a subclass with its own call."""
        return type(self).call is Loss.call

    def call(self, y_true, y_pred):
        """Per-sample losses; Loss subclasses written by users override this with keras.ops."""
        raise NotImplementedError(f"{type(self).__name__}.call")

    def __call__(self, y_true, y_pred, sample_weight=None):
        from .autodiff.tape import Tensor
        if type(self).call is not Loss.call or type(y_pred) is Tensor:
            # a user's Loss subclass (call() then the reduction), or a prediction on the tape (one
            # node whose VJP is the hand-written gradient)
            from .loss_tape import apply_loss
            if self.reduction in ("none", None) and type(self).call is not Loss.call:
                return self.call(y_true, y_pred)
            if self.reduction not in ("none", None):
                out = apply_loss(self, y_true, y_pred, sample_weight)
                return out if self.reduction != "sum" else out * y_pred.shape[0]
        xp = xp_of(y_pred)
        y_pred = xp.asarray(y_pred, dtype=np.float32)
        y_true = self.prepare_targets(xp.asarray(y_true), y_pred.shape)
        sw = None if sample_weight is None else xp.asarray(sample_weight, dtype=np.float64).reshape(-1)
        n = y_pred.shape[0]
        per = self.per_sample(y_true, y_pred)
        if self.reduction in ("none", None):
            return per * sw if sw is not None else per
        total = _weighted_sum(xp, per, sw)
        return np.float32(total if self.reduction == "sum" else total / max(n, 1))

    # ---------------------------------------------------------------- the training interface
    def prepare_targets(self, y, pred_shape):
        """y as float32 shaped like the predictions (a clear error when it cannot be)."""
        xp = xp_of(y)
        y = xp.asarray(y, dtype=np.float32)
        if y.shape != tuple(pred_shape):
            if y.size == int(np.prod(pred_shape)) and y.shape[:1] == tuple(pred_shape[:1]):
                y = y.reshape(pred_shape)
            else:
                raise ValueError(f"{type(self).__name__}: y_true shape {tuple(y.shape)} is incompatible "
                                 f"with the model's output shape {tuple(pred_shape)}")
        return y

    def fuses(self, activation) -> bool:
        return False

    def per_sample(self, y_true, y_pred):
        raise NotImplementedError

    def step(self, y_true, y_pred, sw, n):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _reduce_last(xp, a):
    """Mean over all but the batch axis (Keras averages over the last axis; for rank > 2 the batch
    reduction averages the rest)."""
    return a.reshape(a.shape[0], -1).mean(axis=1) if a.ndim > 1 else a


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    expects_int_labels = True

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size", name=None, axis=-1):
        super().__init__(reduction, name)
        if ignore_class is not None:
            raise NotImplementedError("SparseCategoricalCrossentropy: ignore_class is not supported yet")
        self.from_logits = bool(from_logits)

    def prepare_targets(self, y, pred_shape):
        xp = xp_of(y)
        y = xp.asarray(y)
        classes = pred_shape[-1]
        if y.ndim == len(pred_shape) and y.shape[-1] == 1:
            y = y.reshape(y.shape[:-1])
        if y.shape != tuple(pred_shape[:-1]):
            raise ValueError(f"SparseCategoricalCrossentropy: expected integer labels of shape "
                             f"{tuple(pred_shape[:-1])} (or with a trailing 1) for outputs of shape "
                             f"{tuple(pred_shape)}, got y of shape {tuple(y.shape)}")
        if y.dtype.kind == "f":
            if y.size and not bool(xp.all(y == xp.floor(y))):
                raise ValueError("SparseCategoricalCrossentropy: labels must be integers, got non-integer "
                                 "float values (use CategoricalCrossentropy for one-hot/probability targets)")
        elif y.dtype.kind not in "iub":
            raise TypeError(f"SparseCategoricalCrossentropy: labels must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64, copy=False)  # shaped like the predictions less their class axis (batches slice it)
        if y.size:
            lo, hi = int(y.min()), int(y.max())
            if lo < 0 or hi >= classes:
                bad = lo if lo < 0 else hi
                raise ValueError(f"Received a label value of {bad} which is outside the valid range of "
                                 f"[0, {classes}). Labels must be integers in [0, {classes}) for a model with "
                                 f"{classes} outputs.")
        return y

    def fuses(self, activation):
        return not self.from_logits and activation is activations.softmax

    def _logits_flat(self, z):
        return z.reshape(-1, z.shape[-1])

    def per_sample(self, y, y_pred):
        xp = xp_of(y_pred)
        y = y.reshape(-1)
        p2 = self._logits_flat(y_pred)
        rows = xp.arange(p2.shape[0])
        if self.from_logits:
            m = p2.max(axis=1)
            lse = xp.log(xp.exp(p2 - m[:, None]).sum(axis=1)) + m
            per = lse - p2[rows, y]
        else:
            q = p2 / p2.sum(axis=1, keepdims=True)
            per = -xp.log(xp.clip(q[rows, y], epsilon(), 1 - epsilon()))
        return _reduce_last(xp, per.reshape(y_pred.shape[:-1]))

    def step_logits(self, y, z, sw, n, want_grad=True):
        """(loss sum, softmax(z), gradient wrt z). Overwrites nothing it does not own: p is new."""
        xp = xp_of(z)
        y = y.reshape(-1)
        z2 = self._logits_flat(z)
        rows = _rows(xp, z2.shape[0])
        p = z2 - z2.max(axis=1, keepdims=True)
        zy = p[rows, y]
        xp.exp(p, out=p)
        s = p.sum(axis=1)
        per = xp.log(s) - zy
        p /= s[:, None]
        total = _weighted_sum(xp, _reduce_last(xp, per.reshape(z.shape[:-1])), sw)
        probs = p.reshape(z.shape)
        if not want_grad:
            return total, probs, None
        g = p.copy()
        g[rows, y] -= 1
        g = g.reshape(z.shape)
        per_sample_terms = int(np.prod(z.shape[1:-1])) if z.ndim > 2 else 1
        return total, probs, _scale_rows(g, sw, n * per_sample_terms)

    def step(self, y, y_pred, sw, n):
        if self.from_logits:
            total, _, g = self.step_logits(y, y_pred, sw, n)
            return total, g
        xp = xp_of(y_pred)
        y = y.reshape(-1)
        p2 = self._logits_flat(y_pred)
        rows = xp.arange(p2.shape[0])
        s = p2.sum(axis=1)
        qy = p2[rows, y] / s
        ok = (qy > epsilon()) & (qy < 1 - epsilon())
        per = -xp.log(xp.clip(qy, epsilon(), 1 - epsilon()))
        total = _weighted_sum(xp, _reduce_last(xp, per.reshape(y_pred.shape[:-1])), sw)
        # d(-log(p_y / S))/dp_k = (1/S) * (1 - [k == y] / q_y) where unclipped, else 0
        g = xp.zeros_like(p2)
        g += (ok / s)[:, None].astype(np.float32)
        g[rows, y] -= (ok / (s * qy)).astype(np.float32)
        per_sample_terms = int(np.prod(y_pred.shape[1:-1])) if y_pred.ndim > 2 else 1
        return total, _scale_rows(g.reshape(y_pred.shape), sw, n * per_sample_terms)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


class CategoricalCrossentropy(Loss):
    name = "categorical_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, pred_shape):
        y = super().prepare_targets(y, pred_shape)
        if self.label_smoothing:
            k = pred_shape[-1]
            y = y * (1 - self.label_smoothing) + self.label_smoothing / k
        return y

    def fuses(self, activation):
        return not self.from_logits and activation is activations.softmax

    def per_sample(self, y, y_pred):
        xp = xp_of(y_pred)
        if self.from_logits:
            m = y_pred.max(axis=-1, keepdims=True)
            logp = y_pred - m - xp.log(xp.exp(y_pred - m).sum(axis=-1, keepdims=True))
        else:
            q = y_pred / y_pred.sum(axis=-1, keepdims=True)
            logp = xp.log(xp.clip(q, epsilon(), 1 - epsilon()))
        return _reduce_last(xp, -(y * logp).sum(axis=-1))

    def step_logits(self, y, z, sw, n, want_grad=True):
        xp = xp_of(z)
        p = z - z.max(axis=-1, keepdims=True)
        ysum = y.sum(axis=-1)
        dot = (y * p).sum(axis=-1)
        xp.exp(p, out=p)
        s = p.sum(axis=-1)
        per = ysum * xp.log(s) - dot
        p /= s[..., None]
        total = _weighted_sum(xp, _reduce_last(xp, per), sw)
        if not want_grad:
            return total, p, None
        g = p * ysum[..., None] - y  # rows of y need not sum to 1
        terms = int(np.prod(z.shape[1:-1])) if z.ndim > 2 else 1
        return total, p, _scale_rows(g, sw, n * terms)

    def step(self, y, y_pred, sw, n):
        if self.from_logits:
            total, _, g = self.step_logits(y, y_pred, sw, n)
            return total, g
        xp = xp_of(y_pred)
        s = y_pred.sum(axis=-1, keepdims=True)
        q = y_pred / s
        ok = (q > epsilon()) & (q < 1 - epsilon())
        logq = xp.log(xp.clip(q, epsilon(), 1 - epsilon()))
        total = _weighted_sum(xp, _reduce_last(xp, -(y * logq).sum(axis=-1)), sw)
        # L = -sum_j y_j log q_j, q = p / S: dL/dp_k = (1/S)(gq_k - sum_j gq_j q_j), gq_j = -y_j/q_j
        gq = xp.where(ok, -y / xp.where(ok, q, 1), 0)
        g = (gq - (gq * q).sum(axis=-1, keepdims=True)) / s
        terms = int(np.prod(y_pred.shape[1:-1])) if y_pred.ndim > 2 else 1
        return total, _scale_rows(g.astype(np.float32), sw, n * terms)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class BinaryCrossentropy(Loss):
    name = "binary_crossentropy"

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name=None):
        super().__init__(reduction, name)
        self.from_logits = bool(from_logits)
        self.label_smoothing = float(label_smoothing)

    def prepare_targets(self, y, pred_shape):
        y = super().prepare_targets(y, pred_shape)
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
        return y

    def fuses(self, activation):
        return not self.from_logits and activation is activations.sigmoid

    def per_sample(self, y, y_pred):
        xp = xp_of(y_pred)
        if self.from_logits:
            z = y_pred
            el = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
        else:
            p = xp.clip(y_pred, epsilon(), 1 - epsilon())
            el = -(y * xp.log(p) + (1 - y) * xp.log(1 - p))
        return _reduce_last(xp, el)

    def step_logits(self, y, z, sw, n, want_grad=True):
        xp = xp_of(z)
        el = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
        total = _weighted_sum(xp, _reduce_last(xp, el), sw)
        p = activations.sigmoid.forward(z)
        if not want_grad:
            return total, p, None
        g = p - y
        return total, p, _scale_rows(g, sw, n * int(np.prod(z.shape[1:])))

    def step(self, y, y_pred, sw, n):
        if self.from_logits:
            total, _, g = self.step_logits(y, y_pred, sw, n)
            return total, g
        xp = xp_of(y_pred)
        eps = epsilon()
        ok = (y_pred > eps) & (y_pred < 1 - eps)
        p = xp.clip(y_pred, eps, 1 - eps)
        el = -(y * xp.log(p) + (1 - y) * xp.log(1 - p))
        total = _weighted_sum(xp, _reduce_last(xp, el), sw)
        g = xp.where(ok, (p - y) / (p * (1 - p)), 0).astype(np.float32)
        return total, _scale_rows(g, sw, n * int(np.prod(y_pred.shape[1:])))

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "label_smoothing": self.label_smoothing}


class MeanSquaredError(Loss):
    name = "mean_squared_error"

    def per_sample(self, y, y_pred):
        d = y_pred - y
        return _reduce_last(xp_of(d), d * d)

    def step(self, y, y_pred, sw, n):
        xp = xp_of(y_pred)
        d = y_pred - y
        total = _weighted_sum(xp, _reduce_last(xp, d * d), sw)
        d *= 2.0
        return total, _scale_rows(d, sw, n * int(np.prod(y_pred.shape[1:])))


class MeanAbsoluteError(Loss):
    name = "mean_absolute_error"

    def per_sample(self, y, y_pred):
        d = y_pred - y
        return _reduce_last(xp_of(d), abs(d))

    def step(self, y, y_pred, sw, n):
        xp = xp_of(y_pred)
        d = y_pred - y
        total = _weighted_sum(xp, _reduce_last(xp, abs(d)), sw)
        return total, _scale_rows(xp.sign(d), sw, n * int(np.prod(y_pred.shape[1:])))


def _fn(cls, key):
    def f(y_true, y_pred, **kw):
        return cls(reduction="none", **kw)(y_true, y_pred)
    f.__name__ = key
    return f


sparse_categorical_crossentropy = _fn(SparseCategoricalCrossentropy, "sparse_categorical_crossentropy")
categorical_crossentropy = _fn(CategoricalCrossentropy, "categorical_crossentropy")
binary_crossentropy = _fn(BinaryCrossentropy, "binary_crossentropy")
mean_squared_error = mse = _fn(MeanSquaredError, "mean_squared_error")
mean_absolute_error = mae = _fn(MeanAbsoluteError, "mean_absolute_error")

_BY_NAME = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}
_BY_CLASS = {c.__name__: c for c in set(_BY_NAME.values())}
_FN_TO_CLASS = {sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
                categorical_crossentropy: CategoricalCrossentropy, binary_crossentropy: BinaryCrossentropy,
                mean_squared_error: MeanSquaredError, mean_absolute_error: MeanAbsoluteError}

from . import losses_extra as _extra  # noqa: E402  (Huber, KLDivergence, hinges, focal, ...)
from .losses_extra import *  # noqa: E402,F401,F403

_BY_NAME.update(_extra.EXTRA_BY_NAME)
_BY_CLASS.update({c.__name__: c for c in _extra.EXTRA_BY_NAME.values()})
for _key, _cls in _extra.EXTRA_BY_NAME.items():  # the function forms: keras.losses.huber(y, p), ...
    _f = globals()[_key] = _fn(_cls, _key)
    _FN_TO_CLASS[_f] = _cls
__all__ += [*_extra.__all__[:-1], *_extra.EXTRA_BY_NAME]


def get(identifier) -> Loss:
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Known losses: "
                             f"{sorted(_BY_NAME)}")
        loss = cls()
        if identifier in ("mse", "mae"):
            loss.name = identifier
        return loss
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_CLASS.get(identifier["class_name"])
        if cls is None:
            raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
        return cls.from_config(identifier.get("config", {}))
    if identifier in _FN_TO_CLASS:
        return _FN_TO_CLASS[identifier]()
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")


def serialize(loss: Loss) -> dict:
    return {"module": "keras.losses", "class_name": type(loss).__name__, "config": loss.get_config()}
