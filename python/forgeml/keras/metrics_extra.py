"""The rest of Keras 3's metrics as stateful objects (update_state / result / reset_state).

Confusion-matrix metrics (AUC, Precision, Recall) keep weighted true/false positive/negative
counts per threshold in float64 on the host; a prediction counts as positive at threshold t when
p > t (Keras's rule). AUC buckets each prediction by the number of thresholds below it
(searchsorted), so a batch costs O(n log T) instead of O(n T). F1/FBeta keep per-class counts.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import epsilon, to_numpy
from .metrics import Metric

__all__ = [
    "AUC",
    "Precision",
    "Recall",
    "F1Score",
    "FBetaScore",
    "RootMeanSquaredError",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "MeanIoU",
    "R2Score",
    "Sum",
    "MeanMetricWrapper",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "EXTRA_BY_NAME",
]


def host(a, dtype=np.float64):
    """Any array-like (NumPy, CuPy, list) as a float64 NumPy array."""
    return np.asarray(to_numpy(a) if hasattr(a, "shape") else a, dtype=dtype)


def _weights(sample_weight, shape):
    """Sample weights broadcast to `shape` (Keras broadcasts (n,) over the trailing axes)."""
    if sample_weight is None:
        return np.ones(shape)
    w = host(sample_weight)
    while w.ndim < len(shape):
        w = w[..., None]
    return np.broadcast_to(w, shape)


def _div(a, b):
    """a / b, 0 where b == 0 (Keras's divide_no_nan)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


class _Confusion(Metric):
    """Weighted tp/fp/tn/fn per threshold (and per label when multi_label)."""

    def _prepare(self, y_true, y_pred, sample_weight):
        y = host(y_true) != 0
        p = host(y_pred)
        if y.shape != p.shape:
            if y.size != p.size:
                raise ValueError(f"{type(self).__name__}: y_true shape {y.shape} does not match y_pred shape {p.shape}")
            y = y.reshape(p.shape)
        return y, p, _weights(sample_weight, p.shape)

    def _accumulate(self, y, p, w, thresholds, per_label=False):
        """Counts (T,) or (T, labels): pred > thresholds[j] for each j."""
        if per_label:
            y2, p2, w2 = y.reshape(-1, y.shape[-1]), p.reshape(-1, p.shape[-1]), w.reshape(-1, w.shape[-1])
            cols = [self._accumulate(y2[:, c], p2[:, c], w2[:, c], thresholds) for c in range(y2.shape[1])]
            return tuple(np.stack([c[i] for c in cols], axis=1) for i in range(4))
        y, p, w = y.reshape(-1), p.reshape(-1), w.reshape(-1)
        order = np.argsort(thresholds, kind="stable")
        ts = np.asarray(thresholds, np.float64)[order]
        above = np.searchsorted(ts, p, side="left")  # how many thresholds each prediction exceeds
        t = ts.size
        pos = np.bincount(above, weights=w * y, minlength=t + 1)
        neg = np.bincount(above, weights=w * ~y, minlength=t + 1)
        # tp[j] = weight of positives exceeding threshold j = sum over buckets > j
        tp = np.cumsum(pos[::-1])[::-1][1:]
        fp = np.cumsum(neg[::-1])[::-1][1:]
        fn, tn = pos.sum() - tp, neg.sum() - fp
        back = np.empty_like(order)
        back[order] = np.arange(t)
        return tp[back], fp[back], tn[back], fn[back]


class AUC(_Confusion):
    """Area under the ROC or PR curve from num_thresholds buckets (Keras's thresholds and
    summation rules; PR with interpolation uses the Davis-Goadrich formula Keras uses)."""

    def __init__(
        self,
        num_thresholds=200,
        curve="ROC",
        summation_method="interpolation",
        name=None,
        dtype=None,
        thresholds=None,
        multi_label=False,
        num_labels=None,
        label_weights=None,
        from_logits=False,
    ):
        curve, summation_method = str(curve).upper(), str(summation_method).lower()
        if curve not in ("ROC", "PR"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are ["ROC", "PR"]')
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(
                f'Invalid AUC summation method value: "{summation_method}". Expected values are '
                '["interpolation", "majoring", "minoring"]'
            )
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
        else:
            if num_thresholds <= 1:
                raise ValueError(
                    f"Argument `num_thresholds` must be an integer > 1. Received: num_thresholds={num_thresholds}"
                )
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
        self.thresholds = [0.0 - epsilon()] + inner + [1.0 + epsilon()]
        self.num_thresholds = len(self.thresholds)
        self.curve, self.summation_method = curve, summation_method
        self.multi_label, self.from_logits = bool(multi_label), bool(from_logits)
        self.label_weights = None if label_weights is None else np.asarray(label_weights, np.float64)
        super().__init__(name or "auc", dtype)

    def reset_state(self):
        self.tp = self.fp = self.tn = self.fn = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, p, w = self._prepare(y_true, y_pred, sample_weight)
        if self.from_logits:
            p = 1.0 / (1.0 + np.exp(-p))
        tp, fp, tn, fn = self._accumulate(y, p, w, self.thresholds, per_label=self.multi_label)
        self.tp, self.fp, self.tn, self.fn = self.tp + tp, self.fp + fp, self.tn + tn, self.fn + fn

    def _average(self, by_label):
        if not self.multi_label:
            return float(by_label)
        if self.label_weights is None:
            return float(np.mean(by_label))
        return float(_div(np.sum(by_label * self.label_weights), np.sum(self.label_weights)))

    def result(self):
        tp, fp, tn, fn = (
            np.broadcast_to(np.asarray(a, np.float64), (self.num_thresholds,) + np.shape(self.tp)[1:])
            for a in (self.tp, self.fp, self.tn, self.fn)
        )
        if self.curve == "PR" and self.summation_method == "interpolation":
            dtp = tp[:-1] - tp[1:]
            p = tp + fp
            slope = _div(dtp, np.maximum(p[:-1] - p[1:], 0))
            intercept = tp[1:] - slope * p[1:]
            ratio = np.where((p[:-1] > 0) & (p[1:] > 0), _div(p[:-1], np.maximum(p[1:], 0)), 1.0)
            inc = _div(slope * (dtp + intercept * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0))
            return self._average(inc.sum(axis=0))
        recall = _div(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _div(fp, fp + tn), recall
        else:
            x, y = recall, _div(tp, tp + fp)
        if self.summation_method == "interpolation":
            h = (y[:-1] + y[1:]) / 2
        elif self.summation_method == "minoring":
            h = np.minimum(y[:-1], y[1:])
        else:
            h = np.maximum(y[:-1], y[1:])
        return self._average(((x[:-1] - x[1:]) * h).sum(axis=0))

    def get_config(self):
        return {
            "name": self.name,
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "from_logits": self.from_logits,
            "thresholds": self.thresholds[1:-1],
        }


class _PrecisionRecall(_Confusion):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        self.init_thresholds = thresholds
        default = 0.5 if top_k is None else -np.inf  # with top_k, every kept prediction counts (Keras)
        self._many = isinstance(thresholds, (list, tuple))
        self._thresholds = (
            [float(t) for t in thresholds] if self._many else [default if thresholds is None else float(thresholds)]
        )
        self.top_k, self.class_id = top_k, class_id
        super().__init__(name, dtype)

    def reset_state(self):
        n = len(self._thresholds)
        self.tp, self.fp, self.tn, self.fn = (np.zeros(n) for _ in range(4))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, p, w = self._prepare(y_true, y_pred, sample_weight)
        if self.top_k is not None:  # predictions outside each row's top k become -inf
            k = min(int(self.top_k), p.shape[-1])
            kth = -np.sort(-p, axis=-1)[..., k - 1 : k]
            p = np.where(p >= kth, p, -np.inf)
        if self.class_id is not None:
            y, p, w = y[..., self.class_id], p[..., self.class_id], w[..., self.class_id]
        tp, fp, tn, fn = self._accumulate(y, p, w, self._thresholds)
        self.tp += tp
        self.fp += fp
        self.tn += tn
        self.fn += fn

    def result(self):
        r = self._ratio()
        return r if self._many else float(r[0])

    def get_config(self):
        return {"name": self.name, "thresholds": self.init_thresholds, "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    def _ratio(self):
        return _div(self.tp, self.tp + self.fp)


class Recall(_PrecisionRecall):
    def _ratio(self):
        return _div(self.tp, self.tp + self.fn)


class FBetaScore(Metric):
    """Per-class F-beta from weighted tp/fp/fn; average None (per class), 'micro', 'macro' or
    'weighted' (by the weighted support). threshold None: the row's maximum is the prediction."""

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(
                "Invalid `average` argument value. Expected one of: {None, 'micro', 'macro', "
                f"'weighted'}}. Received: average={average}"
            )
        if not beta > 0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. Received: beta={beta}")
        self.average, self.beta, self.threshold = average, float(beta), threshold
        super().__init__(name, dtype)

    def reset_state(self):
        self.tp = self.fp = self.fn = self.support = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, p = host(y_true), host(y_pred)
        if p.ndim != 2 or y.shape != p.shape:
            raise ValueError(
                f"{type(self).__name__} expects 2D inputs with shape (batch_size, output_dim) for "
                f"both y_true and y_pred. Received: y_true.shape={y.shape} y_pred.shape={p.shape}"
            )
        if self.threshold is None:
            pred = (p == p.max(axis=-1, keepdims=True)).astype(np.float64)
        else:
            pred = (p > self.threshold).astype(np.float64)
        w = _weights(sample_weight, p.shape)
        axis = None if self.average == "micro" else 0
        self.tp = self.tp + (pred * y * w).sum(axis=axis)
        self.fp = self.fp + (pred * (1 - y) * w).sum(axis=axis)
        self.fn = self.fn + ((1 - pred) * y * w).sum(axis=axis)
        self.support = self.support + (y * w).sum(axis=axis)

    def result(self):
        precision = _div(self.tp, self.tp + self.fp)
        recall = _div(self.tp, self.tp + self.fn)
        b2 = self.beta**2
        f = _div(precision * recall, b2 * precision + recall) * (1 + b2)
        if self.average == "weighted":
            return float(np.sum(f * _div(self.support, np.sum(self.support))))
        if self.average is not None:
            return float(np.mean(f))
        return f

    def get_config(self):
        return {"name": self.name, "average": self.average, "beta": self.beta, "threshold": self.threshold}


class F1Score(FBetaScore):
    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average, 1.0, threshold, name, dtype)

    def get_config(self):
        cfg = super().get_config()
        del cfg["beta"]
        return cfg


class _Elementwise(Metric):
    """Weighted mean of an elementwise term, each element weighted by its sample's weight
    (Keras's Mean over the broadcast weights)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        p = host(y_pred)
        y = host(y_true).reshape(p.shape) if host(y_true).size == p.size else host(y_true)
        v = self._term(y, p)
        w = _weights(sample_weight, v.shape)
        self.total += float((v * w).sum())
        self.count += float(w.sum())


class RootMeanSquaredError(_Elementwise):
    def _term(self, y, p):
        return (p - y) ** 2

    def result(self):
        return math.sqrt(self.total / self.count) if self.count else 0.0


class _PerSample(Metric):
    """Weighted mean over samples of a per-sample value (a loss-like function averaged over the
    last axis)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        p = host(y_pred)
        yt = host(y_true)
        y = yt.reshape(p.shape) if yt.size == p.size else yt
        v = self._per_sample(y, p)
        w = _weights(sample_weight, v.shape)
        self.total += float((v * w).sum())
        self.count += float(w.sum())


class MeanAbsolutePercentageError(_PerSample):
    def _per_sample(self, y, p):
        return (100.0 * np.abs(y - p) / np.maximum(np.abs(y), epsilon())).mean(axis=-1)


class MeanSquaredLogarithmicError(_PerSample):
    def _per_sample(self, y, p):
        d = np.log(np.maximum(p, epsilon()) + 1) - np.log(np.maximum(y, epsilon()) + 1)
        return (d * d).mean(axis=-1)


class SparseTopKCategoricalAccuracy(_PerSample):
    """1 where the integer label's score is among the row's k highest."""

    def __init__(self, k=5, name=None, dtype=None):
        self.k = int(k)
        super().__init__(name, dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        p = host(y_pred)
        y = host(y_true).astype(np.int64).reshape(p.shape[:-1])
        self._add_rows(p, y, sample_weight)

    def _add_rows(self, p, labels, sample_weight):
        score = np.take_along_axis(p, labels[..., None], axis=-1)
        hit = ((p > score).sum(axis=-1) < self.k).astype(np.float64)  # fewer than k scores beat it
        w = _weights(sample_weight, hit.shape)
        self.total += float((hit * w).sum())
        self.count += float(w.sum())

    def get_config(self):
        return {"name": self.name, "k": self.k}


class TopKCategoricalAccuracy(SparseTopKCategoricalAccuracy):
    def update_state(self, y_true, y_pred, sample_weight=None):
        p = host(y_pred)
        self._add_rows(p, host(y_true).reshape(p.shape).argmax(axis=-1), sample_weight)


class MeanIoU(Metric):
    """Mean over classes of tp / (tp + fp + fn) from a weighted confusion matrix of integer labels
    (sparse_y_pred=False: the argmax of the scores)."""

    def __init__(
        self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True, sparse_y_pred=True, axis=-1
    ):
        self.num_classes, self.ignore_class = int(num_classes), ignore_class
        self.sparse_y_true, self.sparse_y_pred = bool(sparse_y_true), bool(sparse_y_pred)
        super().__init__(name, dtype)

    def reset_state(self):
        self.cm = np.zeros((self.num_classes, self.num_classes))

    def update_state(self, y_true, y_pred, sample_weight=None):
        y, p = host(y_true), host(y_pred)
        if not self.sparse_y_true:
            y = y.argmax(axis=-1)
        if not self.sparse_y_pred:
            p = p.argmax(axis=-1)
        y, p = y.reshape(-1).astype(np.int64), p.reshape(-1).astype(np.int64)
        w = _weights(sample_weight, y.shape).reshape(-1)
        if self.ignore_class is not None:
            keep = y != self.ignore_class
            y, p, w = y[keep], p[keep], w[keep]
        k = self.num_classes
        self.cm += np.bincount(y * k + p, weights=w, minlength=k * k).reshape(k, k)

    def result(self):
        tp = np.diag(self.cm)
        denom = self.cm.sum(axis=0) + self.cm.sum(axis=1) - tp
        valid = denom > 0
        return float((tp[valid] / denom[valid]).sum() / max(valid.sum(), 1))

    def get_config(self):
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "ignore_class": self.ignore_class,
            "sparse_y_true": self.sparse_y_true,
            "sparse_y_pred": self.sparse_y_pred,
        }


class R2Score(Metric):
    """1 - SS_res / SS_tot per output, weighted; averaged uniformly, by variance, or per output."""

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score", dtype=None):
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError(
                "Invalid value for argument `class_aggregation`. Expected one of {None, "
                f"'uniform_average', 'variance_weighted_average'}}. Received: {class_aggregation}"
            )
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        super().__init__(name, dtype)

    def reset_state(self):
        self.sw = self.swy = self.swy2 = self.res = 0.0
        self.n = 0

    def update_state(self, y_true, y_pred, sample_weight=None):
        p = host(y_pred)
        p = p.reshape(-1, 1) if p.ndim == 1 else p
        y = host(y_true).reshape(p.shape)
        w = _weights(sample_weight, p.shape)
        self.sw = self.sw + w.sum(axis=0)
        self.swy = self.swy + (w * y).sum(axis=0)
        self.swy2 = self.swy2 + (w * y * y).sum(axis=0)
        self.res = self.res + (w * (y - p) ** 2).sum(axis=0)
        self.n += p.shape[0]

    def result(self):
        mean = _div(self.swy, self.sw)
        tot = self.swy2 - self.swy * mean
        raw = 1 - _div(self.res, tot)
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            r2 = float(np.mean(raw))
        elif self.class_aggregation == "variance_weighted_average":
            r2 = float(_div(np.sum(tot * raw), np.sum(tot)))
        else:
            r2 = raw
        if self.num_regressors:
            n, k = self.n, self.num_regressors
            if n - k - 1 > 0:
                r2 = 1 - (1 - r2) * (n - 1) / (n - k - 1)
        return r2

    def get_config(self):
        return {"name": self.name, "class_aggregation": self.class_aggregation, "num_regressors": self.num_regressors}


class Sum(Metric):
    def reset_state(self):
        self.total, self.count = 0.0, 0.0

    def update_state(self, values, sample_weight=None):
        v = host(values)
        self.total += float((v * _weights(sample_weight, v.shape)).sum())

    def result(self):
        return self.total


class MeanMetricWrapper(Metric):
    """The weighted mean of fn(y_true, y_pred, **kwargs) (one value per sample)."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self._fn, self._fn_kwargs = fn, kwargs
        super().__init__(name or getattr(fn, "__name__", "mean_metric_wrapper"), dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        v = host(self._fn(y_true, y_pred, **self._fn_kwargs))
        w = _weights(sample_weight, v.shape)
        self.total += float((v * w).sum())
        self.count += float(w.sum())


EXTRA_BY_NAME = {
    "auc": AUC,
    "precision": Precision,
    "recall": Recall,
    "f1_score": F1Score,
    "fbeta_score": FBetaScore,
    "root_mean_squared_error": RootMeanSquaredError,
    "rmse": RootMeanSquaredError,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "r2_score": R2Score,
    "mape": MeanAbsolutePercentageError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
}
