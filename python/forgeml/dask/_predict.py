"""Lazy prediction on dask collections: the fitted model travels to the workers once and each
partition is predicted where it lives (no rows move to the client). Works for any forgeml model
with ``predict`` / ``predict_proba`` (forests, trees, SVC, LinearSVC) and for Keras models."""

from __future__ import annotations

import numpy as np

__all__ = ["predict", "predict_proba", "as_rows"]


def as_rows(X, name="X"):
    """A dask array with one chunk along the features (dask dataframes become dask arrays)."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(X, (dd.DataFrame, dd.Series)):
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(f"{name}: expected a dask array or dask dataframe, got {type(X).__name__}")
    if X.ndim == 2 and X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    return X


def _is_keras(model) -> bool:
    from ..keras.models import Model

    return isinstance(model, Model)


def _block_predict(block, model, method, kwargs):
    if isinstance(model, _KerasPayload):
        model = model.model()
    return getattr(model, method)(np.asarray(block), **kwargs)


class _KerasPayload:
    """A Keras model on its way to the workers: its JSON config and weights (Keras models are not
    pickled, as in Keras). Rebuilt once per worker process and cached by a token."""

    _cache: dict = {}

    def __init__(self, model):
        import uuid

        self.token = uuid.uuid4().hex
        self.config = model.to_json()
        self.weights = [np.asarray(w) for w in model.get_weights()]

    def model(self):
        m = self._cache.get(self.token)
        if m is None:
            from ..keras.models import model_from_json

            m = model_from_json(self.config)
            m.set_weights(self.weights)
            self._cache.clear()  # keep one model per process
            self._cache[self.token] = m
        return m


def _map(model, X, method, out_cols, dtype, kwargs=None):
    X = as_rows(X)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D dask collection (rows, features), got {X.ndim}-D")
    kwargs = kwargs or {}
    if out_cols is None:  # one value per row
        return X.map_blocks(
            _block_predict, model, method, kwargs, drop_axis=1, dtype=dtype, meta=np.empty((0,), dtype=dtype)
        )
    return X.map_blocks(
        _block_predict,
        model,
        method,
        kwargs,
        chunks=(X.chunks[0], (out_cols,)),
        dtype=dtype,
        meta=np.empty((0, 0), dtype=dtype),
    )


def predict(model, X):
    """Lazy ``model.predict`` on a dask array / dataframe, partition by partition.

    For a Keras model the result has the model's output shape per row (float32); for an estimator
    it is one label or value per row. Call ``.compute()`` (or persist) to run it."""
    if _is_keras(model):
        X = as_rows(X)
        out_shape = tuple(model.output_shape[1:])
        chunks = (X.chunks[0],) + tuple((s,) for s in out_shape)
        kwargs = {"verbose": 0}
        model = _KerasPayload(model)
        if X.ndim == 2 and len(out_shape) == 1:
            return X.map_blocks(_block_predict, model, "predict", kwargs, chunks=chunks, dtype=np.float32)
        drop = tuple(range(1, X.ndim))
        new = tuple(range(1, 1 + len(out_shape)))
        return X.map_blocks(
            _block_predict, model, "predict", kwargs, drop_axis=drop, new_axis=new, chunks=chunks, dtype=np.float32
        )
    classes = getattr(model, "classes_", None)
    dtype = classes.dtype if classes is not None else np.float64
    return _map(model, X, "predict", None, dtype)


def predict_proba(model, X):
    """Lazy ``model.predict_proba`` on a dask array / dataframe: (rows, n_classes) float64."""
    if not hasattr(model, "predict_proba"):
        raise AttributeError(f"{type(model).__name__} has no predict_proba")
    return _map(model, X, "predict_proba", len(model.classes_), np.float64)
