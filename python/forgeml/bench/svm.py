"""SVM benchmark: fit time and held-out accuracy of forgeml's SVC and LinearSVC against
scikit-learn's (libsvm, liblinear) on make_classification (n x 50, 20 informative)."""
from __future__ import annotations

import numpy as np


def _data(n, seed=0):
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=n + n // 4, n_features=50, n_informative=20, random_state=seed)
    X = X.astype(np.float64)
    return X[:n], y[:n], X[n:], y[n:]


def run(bench):
    import sklearn.svm as sk

    from .. import svm as fm

    sizes = [10_000] if bench.quick else [10_000, 20_000, 50_000]
    for n in sizes:
        X, y, Xt, yt = _data(n)
        for name, ours, peer in (("SVC rbf", fm.SVC, sk.SVC), ("LinearSVC", fm.LinearSVC, sk.LinearSVC)):
            models = {}

            def fit(cls, key):
                def f():
                    models[key] = cls().fit(X, y)
                return f

            def accuracy(key):
                return {"acc": round(float(models[key].score(Xt, yt)), 4)}

            # a kernel SVC fit takes seconds to minutes: one timed run after the warm-up past 10k rows
            reps = 1 if (name.startswith("SVC") and n > 10_000) else None
            bench.compare("svm", f"{name} fit {n}x50", fit(ours, "forgeml"), {"sklearn": fit(peer, "sklearn")},
                          metric=accuracy, repeats=reps)
