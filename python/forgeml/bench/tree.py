"""Random-forest benchmark: fit time and test accuracy of forgeml's RandomForestClassifier
against scikit-learn (n_jobs=-1), LightGBM's rf mode and XGBoost's XGBRFClassifier, on
make_classification with 50 features; then predict latency for 1 row and 10k rows.

Peers grow trees of the same size as forgeml's: LightGBM and XGBoost get num_leaves / max_leaves
equal to forgeml's mean leaf count, per-node feature sampling (sqrt(d) of d) and bagging of
63.2% of the rows (neither draws with replacement)."""
from __future__ import annotations

import math

import numpy as np


def _data(n_train: int, n_test: int = 20_000, d: int = 50):
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=n_train + n_test, n_features=d, n_informative=20, n_redundant=10,
                               flip_y=0.02, class_sep=0.8, random_state=0)
    X = X.astype(np.float32)
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:]


def _peers(d: int, trees: int, leaves: int):
    """name -> factory of an unfitted peer classifier (installed peers only)."""
    frac = max(1, int(math.sqrt(d))) / d
    out = {}
    try:
        from sklearn.ensemble import RandomForestClassifier
        out["sklearn"] = lambda: RandomForestClassifier(n_estimators=trees, n_jobs=-1, random_state=0)
    except ImportError:  # pragma: no cover
        pass
    try:
        import lightgbm
        out["lightgbm-rf"] = lambda: lightgbm.LGBMClassifier(
            boosting_type="rf", n_estimators=trees, num_leaves=leaves, max_depth=-1, min_child_samples=1,
            min_child_weight=1e-9, bagging_fraction=0.632, bagging_freq=1, feature_fraction_bynode=frac,
            max_bin=255, n_jobs=-1, random_state=0, verbose=-1)
    except ImportError:
        pass
    try:
        import xgboost
        out["xgboost-rf"] = lambda: xgboost.XGBRFClassifier(
            n_estimators=trees, tree_method="hist", grow_policy="lossguide", max_leaves=leaves, max_depth=0,
            subsample=0.632, colsample_bynode=frac, min_child_weight=0, max_bin=256, n_jobs=-1, random_state=0)
    except ImportError:
        pass
    return out


def _fit_case(bench, n: int, trees: int, repeats: int | None):
    from ..ensemble import RandomForestClassifier
    Xtr, ytr, Xte, yte = _data(n)
    d = Xtr.shape[1]
    models = {}

    def fit_forgeml():
        models["forgeml"] = RandomForestClassifier(n_estimators=trees, random_state=0).fit(Xtr, ytr)

    fit_forgeml()
    forest = models["forgeml"]._forest
    leaves = int(round(np.mean([(np.diff(forest.offsets) + 1) / 2])))  # binary trees: nodes = 2L - 1
    factories = _peers(d, trees, leaves)

    def fitter(name):
        def fit():
            models[name] = factories[name]().fit(Xtr, ytr)
        return fit

    def metric(name):
        m = models[name]
        out = {"acc": round(float(np.mean(m.predict(Xte) == yte)), 4)}
        if name == "forgeml":
            out["leaves"] = leaves
        return out

    bench.compare("tree", f"fit {n // 1000}k x {d}, {trees} trees", fit_forgeml,
                  {k: fitter(k) for k in factories}, metric=metric, repeats=repeats)
    return models, Xte


def _predict_case(bench, models, Xte):
    for rows in (1, 10_000):
        X = np.ascontiguousarray(Xte[:rows])
        peers = {k: (lambda m=m: m.predict_proba(X)) for k, m in models.items() if k != "forgeml"}
        bench.compare("tree", f"predict_proba {rows} row{'s' if rows > 1 else ''}",
                      lambda: models["forgeml"].predict_proba(X), peers,
                      repeats=max(bench.repeats, 20) if rows == 1 else None)


def run(bench) -> None:
    if bench.quick:
        models, Xte = _fit_case(bench, 20_000, 20, repeats=None)
        _predict_case(bench, models, Xte)
        return
    models, Xte = _fit_case(bench, 100_000, 100, repeats=2)
    _predict_case(bench, models, Xte)
    _fit_case(bench, 1_000_000, 100, repeats=1)  # scikit-learn takes minutes: the harness runs it once
