"""Random forests fitted on a dask.distributed cluster.

Two modes, both ending in an ordinary fitted forgeml forest (picklable; ``predict`` takes NumPy
locally and dask collections lazily):

- ``mode="tree"`` (data fits on each worker): X and y are gathered, validated and binned exactly
  as the local fit does, replicated to every worker, and each worker grows a disjoint block of
  the trees from the same per-tree seeds. The merged forest is identical to the local fit.
- ``mode="data"`` (data larger than a worker): rows stay in their partitions; see ``_hist``.
"""

from __future__ import annotations

import inspect

import numpy as np

from .. import ensemble, ops
from ..tree import _fit
from ..tree._tree import Forest
from . import _hist
from ._predict import predict as _lazy_predict, predict_proba as _lazy_proba

__all__ = ["RandomForestClassifier", "RandomForestRegressor", "get_client"]

_MODES = ("tree", "data")


def get_client():
    """The current dask.distributed Client (the one made last with ``Client(...)``)."""
    try:
        from distributed import get_client as current
    except ImportError as e:  # pragma: no cover - the package imports distributed already
        raise ImportError("forgeml.dask needs dask.distributed: pip install 'forgeml[dask]'") from e
    try:
        return current()
    except ValueError as e:
        raise RuntimeError(
            "forgeml.dask: no dask.distributed Client is running; start one first, e.g. "
            "`from distributed import Client, LocalCluster; client = Client(LocalCluster())`"
        ) from e


def _is_dask(X) -> bool:
    return type(X).__module__.split(".", 1)[0] in ("dask", "dask_expr")


def _to_numpy(a):
    if _is_dask(a):
        a = a.compute()
    return np.asarray(a) if not hasattr(a, "to_numpy") else a.to_numpy()


# ---------------------------------------------------------------- tree-parallel growth


def _grow_block(codes, y_enc, weight, seeds, kwargs):
    """Runs on a worker: grow the trees of `seeds` on the replicated binned data."""
    return ops.tree_grow_forest(codes, y_enc, weight, seeds, **kwargs)


def merge_grown(parts):
    """Concatenate the dicts of ops.tree_grow_forest over blocks of trees, in order."""
    out = {}
    sizes = [np.diff(p["offsets"]) for p in parts]
    out["offsets"] = np.concatenate([[0], np.cumsum(np.concatenate(sizes))]).astype(parts[0]["offsets"].dtype)
    for k in parts[0]:
        if k != "offsets":
            out[k] = np.concatenate([p[k] for p in parts])
    return out


def _fit_tree_parallel(est, X, y, sample_weight, classify, client):
    """Mirror of the local BaseForest._fit (same checks, seeds, binning) with the growth spread."""
    X, y = _to_numpy(X), _to_numpy(y)
    sample_weight = None if sample_weight is None else _to_numpy(sample_weight)
    X, y = _fit.check_X_y(est, X, y, classify)
    if not est.bootstrap and est.max_samples is not None:
        raise ValueError(
            "`max_sample` cannot be set if `bootstrap=False`. Either switch to "
            "`bootstrap=True` or set `max_sample=None`."
        )
    if est.oob_score and not est.bootstrap:
        raise ValueError("Out of bag estimation only available if bootstrap=True")
    if classify:
        y_enc = _fit.encode_classes(est, y)
        cw = est.class_weight
        if cw == "balanced_subsample" and not est.bootstrap:
            cw = "balanced"
        weight = _fit.sample_weights(X, y, sample_weight, cw)
    else:
        est.n_outputs_ = 1
        y_enc = np.ascontiguousarray(y, dtype=np.float64)
        weight = _fit.sample_weights(X, y, sample_weight, None)
    if not weight.any():
        raise ValueError("sample_weight: the total weight is zero; at least one sample needs a positive weight")
    n_draws = est._n_draws(X.shape[0], sample_weight)
    seeds = _fit.seeds_for(est.random_state, est.n_estimators)
    est._seeds = seeds
    est.max_features_ = _fit.resolve_max_features(est.max_features, X.shape[1])
    bin_seed = int(seeds[0]) ^ 0x9E3779B9
    codes, edges = _fit.bin_data(X, weight, est.max_bins, bin_seed)
    split, leaf = _fit.resolve_sizes(est, X.shape[0])
    kwargs = dict(
        criterion=est.criterion,
        n_classes=est.n_classes_ if classify else 1,
        max_depth=est.max_depth,
        min_samples_split=split,
        min_samples_leaf=leaf,
        min_weight_fraction_leaf=est.min_weight_fraction_leaf,
        min_impurity_decrease=est.min_impurity_decrease,
        max_features=est.max_features_,
        max_leaf_nodes=est.max_leaf_nodes,
        bootstrap=est.bootstrap,
        n_draws=n_draws,
        balanced_subsample=classify and est.class_weight == "balanced_subsample" and est.bootstrap,
        threads=_fit.threads_for(est.n_jobs),
        monotonic_cst=_fit.monotonic_for(est, X.shape[1]),
        random_split=getattr(est, "splitter", "best") == "random",
    )
    workers = sorted(client.scheduler_info()["workers"])
    if not workers:
        raise RuntimeError("forgeml.dask: the client has no workers")
    blocks = [b for b in np.array_split(seeds, min(len(workers), len(seeds))) if len(b)]
    data = client.scatter([codes, y_enc, weight], broadcast=True)
    futures = [
        client.submit(_grow_block, *data, block, kwargs, workers=[w], allow_other_workers=True, pure=False)
        for block, w in zip(blocks, workers)
    ]
    est._forest = Forest(merge_grown(client.gather(futures)), edges, X.shape[1])
    est._n_draws_, est._n_samples_, est._bin_seed = n_draws, X.shape[0], bin_seed
    if est.ccp_alpha > 0:
        est._forest = est._forest.pruned(est.ccp_alpha)
    if est.oob_score:
        est._set_oob_score_and_attributes(X, y, y_enc, n_draws, classify)
    return est


# ---------------------------------------------------------------- the estimators


def _dask_estimator(base):
    """A subclass of the local forest taking dask collections, with one more parameter, ``mode``."""
    sig = inspect.signature(base.__init__)
    params = list(sig.parameters.values()) + [inspect.Parameter("mode", inspect.Parameter.KEYWORD_ONLY, default="tree")]
    classify = issubclass(base, ensemble.RandomForestClassifier)

    def __init__(self, *args, mode="tree", **kwargs):
        base.__init__(self, *args, **kwargs)
        self.mode = mode

    __init__.__signature__ = sig.replace(parameters=params)

    def fit(self, X, y, sample_weight=None):
        """Fit on dask (or NumPy) X, y on the current dask.distributed client's workers."""
        self._validate_params()
        if self.mode not in _MODES:
            raise ValueError(f"mode: expected one of {_MODES}, got {self.mode!r}")
        client = get_client()
        if self.mode == "tree":
            return _fit_tree_parallel(self, X, y, sample_weight, classify, client)
        return _hist.fit_data_parallel(self, X, y, sample_weight, classify, client)

    def predict(self, X):
        """Labels (values): lazily, partition by partition, for a dask collection; else NumPy."""
        if _is_dask(X):
            return _lazy_predict(self, X)
        return base.predict(self, X)

    def to_local(self):
        """The fitted model as the plain forgeml.ensemble estimator (no ``mode``)."""
        local = base(**{k: v for k, v in self.get_params().items() if k != "mode"})
        state = {k: v for k, v in self.__dict__.items() if k != "mode"}
        local.__dict__.update(state)
        return local

    ns = {
        "__init__": __init__,
        "fit": fit,
        "predict": predict,
        "to_local": to_local,
        "__module__": __name__,
        "__doc__": f"{base.__doc__}\n\n    On dask.distributed: ``mode`` is "
        "'tree' (trees split over workers, identical to the local fit) "
        "or 'data' (rows stay on their workers; summed histograms).",
    }
    if classify:

        def predict_proba(self, X):
            """Class probabilities (rows, n_classes); lazily for a dask collection."""
            if _is_dask(X):
                return _lazy_proba(self, X)
            return base.predict_proba(self, X)

        ns["predict_proba"] = predict_proba
    return type(base.__name__, (base,), ns)


RandomForestClassifier = _dask_estimator(ensemble.RandomForestClassifier)
RandomForestRegressor = _dask_estimator(ensemble.RandomForestRegressor)
