"""Metrics: running weighted means with float64 totals (update_state / result / reset_state)."""
from __future__ import annotations

import numpy as np

from .backend import xp_of

__all__ = ["Metric", "Mean", "SparseCategoricalAccuracy", "CategoricalAccuracy", "BinaryAccuracy", "Accuracy",
           "MeanAbsoluteError", "MeanSquaredError", "get", "resolve"]


class Metric:
    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        fn = cls.__dict__.get("update_state")
        if fn is not None:
            cls.update_state = _accepting_lists(fn)

    def __init__(self, name=None, dtype=None):
        self.name = name or _default_name(type(self))
        self._variables = []
        try:
            self.reset_state()
        except AttributeError:  # a subclass's reset_state reads variables its __init__ creates next
            Metric.reset_state(self)

    def reset_state(self):
        self.total = 0.0
        self.count = 0.0
        for v in getattr(self, "_variables", ()):
            v.assign(np.zeros(v.shape, np.float32))

    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum", name=None):
        """A state variable for a Metric subclass (update it with assign / assign_add)."""
        from . import initializers
        from .variables import Variable
        value = np.asarray(initializers.get(initializer)(tuple(shape)), dtype=np.float32).reshape(tuple(shape))
        var = Variable(value.copy(), name or f"variable_{len(self._variables)}", trainable=False)
        self._variables.append(var)
        return var

    def add_weight(self, name=None, shape=(), initializer="zeros", dtype=None, aggregation="sum"):
        return self.add_variable(shape, initializer, dtype, aggregation, name)

    @property
    def variables(self):
        return list(self._variables)

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def _add(self, values, sample_weight):
        """values: per-sample (n,) floats; weights broadcast over them."""
        xp = xp_of(values)
        if sample_weight is None:
            self.total += float(xp.sum(values, dtype=np.float64))
            self.count += values.size
        else:
            w = xp.asarray(sample_weight, dtype=np.float64).reshape(-1)
            v = values.reshape(w.shape[0], -1).mean(axis=1, dtype=np.float64) if values.size != w.size else values
            self.total += float(xp.dot(v.astype(np.float64).reshape(-1), w))
            self.count += float(w.sum())

    def result(self):
        return self.total / self.count if self.count else 0.0

    def get_config(self):
        return {"name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def averages_steps(metric) -> bool:
    """True for the running-mean metrics (Keras's MeanMetricWrapper family): a sequence mask on
    the predictions weights their steps. Confusion-matrix metrics (AUC, Precision, ...) ignore
    masks in Keras 3, and here too."""
    return type(metric).result is Metric.result


def _accepting_lists(fn):
    """update_state taking Python lists and scalars too (Keras converts them to tensors)."""
    import functools

    @functools.wraps(fn)
    def update_state(self, *args, **kwargs):
        args = [np.asarray(a, dtype=np.float32) if isinstance(a, (list, tuple, int, float)) else a for a in args]
        return fn(self, *args, **kwargs)
    return update_state


def _default_name(cls):
    import re
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


class Mean(Metric):
    def update_state(self, values, sample_weight=None):
        values = xp_of(values).asarray(values, dtype=np.float64).reshape(-1)
        self._add(values, sample_weight)


class SparseCategoricalAccuracy(Metric):
    def update_state(self, y_true, y_pred, sample_weight=None):
        xp = xp_of(y_pred)
        y_true = xp.asarray(y_true)
        pred = y_pred.argmax(axis=-1).reshape(-1)
        self._add(pred == y_true.reshape(-1), sample_weight)


class CategoricalAccuracy(Metric):
    def update_state(self, y_true, y_pred, sample_weight=None):
        xp = xp_of(y_pred)
        self._add((xp.asarray(y_true).argmax(axis=-1) == y_pred.argmax(axis=-1)).reshape(-1), sample_weight)


class BinaryAccuracy(Metric):
    def __init__(self, name=None, dtype=None, threshold=0.5):
        self.threshold = threshold
        super().__init__(name, dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        xp = xp_of(y_pred)
        y_true = xp.asarray(y_true).reshape(y_pred.shape)
        hit = ((y_pred > self.threshold) == (y_true > 0.5)).astype(np.float64)
        self._add(hit.reshape(hit.shape[0], -1).mean(axis=1), sample_weight)


class Accuracy(Metric):
    """Exact equality of predictions and targets."""
    def update_state(self, y_true, y_pred, sample_weight=None):
        xp = xp_of(y_pred)
        y_true = xp.asarray(y_true).reshape(y_pred.shape)
        hit = (y_true == y_pred).astype(np.float64)
        self._add(hit.reshape(hit.shape[0], -1).mean(axis=1), sample_weight)


class MeanAbsoluteError(Metric):
    def update_state(self, y_true, y_pred, sample_weight=None):
        xp = xp_of(y_pred)
        d = abs(y_pred - xp.asarray(y_true, dtype=np.float32).reshape(y_pred.shape))
        self._add(d.reshape(d.shape[0], -1).mean(axis=1, dtype=np.float64), sample_weight)


class MeanSquaredError(Metric):
    def update_state(self, y_true, y_pred, sample_weight=None):
        xp = xp_of(y_pred)
        d = y_pred - xp.asarray(y_true, dtype=np.float32).reshape(y_pred.shape)
        self._add((d * d).reshape(d.shape[0], -1).mean(axis=1, dtype=np.float64), sample_weight)


_BY_NAME = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy, "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
}
_BY_CLASS = {c.__name__: c for c in (SparseCategoricalAccuracy, CategoricalAccuracy, BinaryAccuracy, Accuracy,
                                     MeanAbsoluteError, MeanSquaredError, Mean)}

from . import metrics_extra as _extra  # noqa: E402  (AUC, Precision, Recall, F1Score, ...)
from .metrics_extra import *  # noqa: E402,F401,F403

_BY_NAME.update(_extra.EXTRA_BY_NAME)
_BY_CLASS.update({c.__name__: c for c in (*_extra.EXTRA_BY_NAME.values(), _extra.MeanIoU, _extra.Sum,
                                          _extra.FBetaScore, _extra.MeanMetricWrapper)})
__all__ += _extra.__all__[:-1]


def resolve(identifier, loss, output_shape) -> Metric:
    """A metric object for a compile() entry; 'accuracy'/'acc' picks the variant Keras would from
    the loss and the output shape, and keeps the name the user gave."""
    from . import losses
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            if isinstance(loss, losses.BinaryCrossentropy) or (output_shape and output_shape[-1] == 1):
                cls = BinaryAccuracy
            elif isinstance(loss, losses.CategoricalCrossentropy):
                cls = CategoricalAccuracy
            else:
                cls = SparseCategoricalAccuracy
            return cls(name=identifier)
        cls = _BY_NAME.get(identifier) or _BY_CLASS.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Known: "
                             f"{sorted(_BY_NAME) + ['accuracy']}")
        return cls(name=identifier)
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):  # a function of (y_true, y_pred): its weighted mean
        return _extra.MeanMetricWrapper(identifier)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


def get(identifier) -> Metric:
    return resolve(identifier, None, None)
