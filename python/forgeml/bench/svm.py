"""SVM benchmark: fit time and held-out accuracy of forgeml's SVC and LinearSVC against
scikit-learn's (libsvm, liblinear) on make_classification (n x 50, 20 informative); SVR (held-out
R^2), NuSVC and OneClassSVM against libsvm; the badly scaled poly case of issue 16."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning


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
    _kernel_variants(bench, [5_000] if bench.quick else [10_000, 20_000])
    if not bench.quick:
        _linear_variants(bench)
        _sparse(bench)


def _regression(n, seed=0):
    from sklearn.datasets import make_regression
    X, y = make_regression(n_samples=n + n // 4, n_features=50, n_informative=20, noise=10.0, random_state=seed)
    y = (y - y.mean()) / y.std()
    return X[:n], y[:n], X[n:], y[n:]


def _kernel_variants(bench, sizes):
    """SVR and SVC(probability=True) (quick: 5k rows), NuSVC and OneClassSVM (full runs), the badly scaled poly SVC."""
    import sklearn.svm as sk

    from .. import svm as fm

    for n in sizes:
        cases = [("SVR rbf", "SVR", {}, _regression(n))]
        cases.append(("SVC rbf probability=True", "SVC", {"probability": True, "random_state": 0}, _data(n)))
        if not bench.quick:
            cases += [("NuSVC rbf", "NuSVC", {}, _data(n)), ("OneClassSVM rbf", "OneClassSVM", {"nu": 0.1}, _data(n))]
        for name, cls, kw, (X, y, Xt, yt) in cases:
            models = {}
            args = (X,) if cls == "OneClassSVM" else (X, y)

            def fit(lib, key, cls=cls, kw=kw, args=args):
                def f():
                    with warnings.catch_warnings():  # scikit-learn 1.9 deprecates probability=True
                        warnings.simplefilter("ignore", FutureWarning)
                        models[key] = getattr(lib, cls)(**kw).fit(*args)
                return f

            def metric(key, cls=cls, Xt=Xt, yt=yt):
                m = models[key]
                if cls == "OneClassSVM":
                    return {"inliers": round(float((m.predict(Xt) > 0).mean()), 4)}
                return {"score": round(float(m.score(Xt, yt)), 4)}

            bench.compare("svm", f"{name} fit {n}x50", fit(fm, "forgeml"), {"sklearn": fit(sk, "sklearn")},
                          metric=metric, repeats=1 if n > 10_000 else None)
    from sklearn.datasets import make_blobs
    X, y = make_blobs(100, centers=10, random_state=0)
    X, y = X[:80], y[:80]

    def poly(lib):
        return lambda: lib.SVC(kernel="poly", gamma=1).fit(X, y)
    bench.compare("svm", "SVC poly gamma=1 80x2 (issue 16)", poly(fm), {"sklearn": poly(sk)})


def _linear_variants(bench):
    """LinearSVC's L1 penalty and Crammer-Singer formulation on the 20k-row problem."""
    import sklearn.svm as sk

    from .. import svm as fm

    X, y, Xt, yt = _data(20_000)
    for name, kw, reps in (("LinearSVC l1", {"penalty": "l1", "dual": False}, None),
                           ("LinearSVC crammer_singer", {"multi_class": "crammer_singer"}, 1)):
        models = {}

        def fit(cls, key, kw=kw):
            def f():
                with warnings.catch_warnings():  # both stop at liblinear's caps on this data
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    models[key] = cls(**kw, random_state=0).fit(X, y)
            return f

        def accuracy(key):
            return {"acc": round(float(models[key].score(Xt, yt)), 4)}

        bench.compare("svm", f"{name} fit 20000x50", fit(fm.LinearSVC, "forgeml"),
                      {"sklearn": fit(sk.LinearSVC, "sklearn")}, metric=accuracy, repeats=reps)


def _sparse(bench, n=20_000, d=5_000, density=0.01):
    """Kernel SVC on a CSR matrix (issue 16's case): forgeml keeps it sparse, libsvm too."""
    import scipy.sparse as sp
    import sklearn.svm as sk

    from .. import svm as fm

    rng = np.random.default_rng(0)
    X = sp.random(n + n // 4, d, density=density, format="csr", random_state=0, dtype=np.float64)
    y = (X @ rng.standard_normal(d) > 0).astype(np.int64)
    X, y, Xt, yt = X[:n], y[:n], X[n:], y[n:]
    models = {}

    def fit(lib, key):
        def f():
            models[key] = lib.SVC().fit(X, y)
        return f

    def accuracy(key):
        return {"acc": round(float(models[key].score(Xt, yt)), 4)}

    bench.compare("svm", f"SVC rbf fit sparse {n}x{d} {density:.0%}", fit(fm, "forgeml"), {"sklearn": fit(sk, "sklearn")},
                  metric=accuracy, repeats=1)
