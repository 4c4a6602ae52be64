"""Random-forest benchmark: fit time and test accuracy of forgeml's RandomForestClassifier
against scikit-learn (n_jobs=-1), LightGBM's rf mode and XGBoost's XGBRFClassifier, on
make_classification with 50 features; then predict latency for 1 row and 10k rows.

Peers grow trees of the same size as forgeml's: LightGBM and XGBoost get num_leaves / max_leaves
equal to forgeml's mean leaf count, per-node feature sampling (sqrt(d) of d) and bagging of
63.2% of the rows (neither draws with replacement). Then ExtraTreesClassifier against
scikit-learn's, and a forest on sparse CSR input (100k x 10k, 1% density) against scikit-learn's."""
from __future__ import annotations

import math

import numpy as np

from .harness import repeated


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


def _compare_fits(bench, case: str, data, ours, theirs, repeats: int | None):
    """One fit row: `ours()` and `theirs()` make unfitted classifiers, both fit on the same training
    rows; the test accuracy of each goes beside its time."""
    Xtr, ytr, Xte, yte = data
    models = {}

    def fitter(name, make):
        def fit():
            models[name] = make().fit(Xtr, ytr)
        return fit

    def metric(name):
        return {"acc": round(float(np.mean(models[name].predict(Xte) == yte)), 4)}

    bench.compare("tree", case, fitter("forgeml", ours), {"sklearn": fitter("sklearn", theirs)},
                  metric=metric, repeats=repeats)


def _extra_case(bench, n: int, trees: int, repeats: int | None):
    """ExtraTreesClassifier against scikit-learn's (n_jobs=-1), same defaults (all rows, sqrt(d))."""
    from sklearn.ensemble import ExtraTreesClassifier as SkExtraTrees

    from ..ensemble import ExtraTreesClassifier
    data = _data(n)
    _compare_fits(bench, f"extra-trees fit {n // 1000}k x {data[0].shape[1]}, {trees} trees", data,
                  lambda: ExtraTreesClassifier(n_estimators=trees, random_state=0),
                  lambda: SkExtraTrees(n_estimators=trees, n_jobs=-1, random_state=0), repeats)


def _sparse_data(n: int, d: int, density: float = 0.01):
    """CSR X (n, d) float32 with `density` of its entries stored (uniform in [0, 1)), and a binary
    target from 200 of its features (plus noise); the last 10% of the rows are the test set."""
    import scipy.sparse as sp
    rng = np.random.default_rng(0)
    X = sp.random(n, d, density=density, format="csr", dtype=np.float32, random_state=rng)
    w = np.zeros(d)
    w[rng.choice(d, 200, replace=False)] = rng.standard_normal(200)
    y = (X @ w + 0.05 * rng.standard_normal(n) > np.median(X @ w)).astype(np.int64)
    cut = n * 9 // 10
    return X[:cut], y[:cut], X[cut:], y[cut:]


def _sparse_case(bench, n: int, d: int, trees: int, repeats: int | None):
    """RandomForestClassifier on CSR X (1% density) against scikit-learn's on the same CSR
    (n_jobs=-1, its sparse splitter); forgeml bins the sparse columns without densifying."""
    from sklearn.ensemble import RandomForestClassifier as SkForest

    from ..ensemble import RandomForestClassifier
    _compare_fits(bench, f"sparse fit {n // 1000}k x {d // 1000}k CSR 1%, {trees} trees", _sparse_data(n, d),
                  lambda: RandomForestClassifier(n_estimators=trees, random_state=0),
                  lambda: SkForest(n_estimators=trees, n_jobs=-1, random_state=0), repeats)


def _predict_case(bench, models, Xte):
    for rows in (1, 10_000):
        X = np.ascontiguousarray(Xte[:rows])
        peers = {k: (lambda m=m: m.predict_proba(X)) for k, m in models.items() if k != "forgeml"}
        bench.compare("tree", f"predict_proba {rows} row{'s' if rows > 1 else ''}",
                      lambda: models["forgeml"].predict_proba(X), peers,
                      repeats=max(bench.repeats, 20) if rows == 1 else None)
    _load_case(bench, models, Xte)


def _load_case(bench, models, Xte):
    """The fitted forest saved to forgeml's compact file: loading it (memory-mapped, header and
    array bounds checked) against unpickling scikit-learn's forest from bytes already in memory;
    then predict_proba of one row on the loaded forests, as the other rows are timed (an idle
    pause before every sample: cold caches) and back to back, and the first one right after a
    fresh load (the mapping's pages faulted in by that call; scikit-learn's unpickled arrays are
    already in memory)."""
    import os
    import pickle
    import tempfile

    from ..ensemble import load
    if "sklearn" not in models:
        return
    sk_bytes = pickle.dumps(models["sklearn"], protocol=pickle.HIGHEST_PROTOCOL)
    nodes = int(models["forgeml"]._forest.offsets[-1])
    x = np.ascontiguousarray(Xte[:1])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "forest.fgf")
        models["forgeml"].save(path)
        size = os.path.getsize(path)
        bench.compare("tree", f"load forest ({nodes // 1000}k nodes, {size >> 20} MB; sklearn pickle "
                      f"{len(sk_bytes) >> 20} MB)", lambda: load(path), {"sklearn": lambda: pickle.loads(sk_bytes)})
        loaded = {"forgeml": load(path), "sklearn": pickle.loads(sk_bytes)}
        bench.compare("tree", "predict_proba 1 row, loaded forest", lambda: loaded["forgeml"].predict_proba(x),
                      {"sklearn": lambda: loaded["sklearn"].predict_proba(x)}, repeats=max(bench.repeats, 20))
        # A served model's steady state: 20 calls back to back a sample (the time printed is of the
        # 20). After the idle pause above, even np.add on this row costs ~50 us on a VM.
        bench.compare("tree", "predict_proba 1 row x20 back to back, loaded forest",
                      repeated(lambda: loaded["forgeml"].predict_proba(x), 20),
                      {"sklearn": repeated(lambda: loaded["sklearn"].predict_proba(x), 20)}, repeats=3)

        def fresh():
            loaded.update(forgeml=load(path), sklearn=pickle.loads(sk_bytes))

        bench.compare("tree", "predict_proba 1 row, first after load", lambda: loaded["forgeml"].predict_proba(x),
                      {"sklearn": lambda: loaded["sklearn"].predict_proba(x)}, before=fresh)
        loaded.clear()


def run(bench) -> None:
    if bench.quick:
        models, Xte = _fit_case(bench, 20_000, 20, repeats=None)
        _predict_case(bench, models, Xte)
        _extra_case(bench, 20_000, 20, repeats=None)
        _sparse_case(bench, 20_000, 10_000, 4, repeats=None)
        return
    models, Xte = _fit_case(bench, 100_000, 100, repeats=2)
    _predict_case(bench, models, Xte)
    _extra_case(bench, 100_000, 100, repeats=3)  # ~1 s against ~10 s: a median of three, not one sample
    _sparse_case(bench, 100_000, 10_000, 5, repeats=1)  # the size; few trees: each side takes minutes
    _fit_case(bench, 1_000_000, 100, repeats=1)  # scikit-learn takes minutes: the harness runs it once


def gpu_check(check) -> None:
    """The CUDA tree kernels against CuPy: a node histogram (1M rows x 32 features, 2 classes)
    against per-feature cupy.bincount, and the per-feature split scan against the same scan on
    the CPU (copied to the GPU)."""
    cp = check.cp
    from .. import ops
    rng = np.random.default_rng(0)
    n, d = 1_000_000, 32
    codes = cp.asarray(rng.integers(0, 255, size=(n, d), dtype=np.uint8))
    rows = cp.arange(0, n, 2, dtype=cp.int32)
    w = cp.asarray(rng.integers(1, 3, size=n).astype(np.float64))
    y = cp.asarray(rng.integers(0, 2, size=n).astype(np.int32))

    def ours():
        return ops.tree_node_histogram(codes, rows, w, y_class=y, n_classes=2)

    def peer():
        c = codes[rows].astype(cp.int64)
        key = c * 2 + y[rows][:, None]
        wr = w[rows]
        hw = cp.stack([cp.bincount(key[:, f], weights=wr, minlength=512) for f in range(d)]).reshape(d, 256, 2)
        cnt = cp.stack([cp.bincount(c[:, f], minlength=256) for f in range(d)]).astype(cp.uint32)
        return hw, cnt

    check.kernel("tree", "node histogram 500k rows x 32", ours, peer, peer="cupy.bincount", rtol=1e-12)
    hw, cnt = ours()
    total = cp.concatenate([cnt[0].sum()[None].astype(cp.float64), hw[0].sum()[None], hw[0].sum(axis=0)])
    cpu = ops.tree_split_scan(cp.asnumpy(hw), cp.asnumpy(cnt), cp.asnumpy(total), criterion="gini")
    cpu_gpu = tuple(cp.asarray(np.where(np.isinf(a), -1.0, a) if a.dtype.kind == "f" else a) for a in cpu)

    def scan():
        p, b, nl = ops.tree_split_scan(hw, cnt, total, criterion="gini")
        return cp.where(cp.isinf(p), -1.0, p), b, nl

    check.kernel("tree", "split scan 32 features, gini", scan, lambda: cpu_gpu, peer="forgeml CPU", rtol=1e-12)
    _gpu_fit_check(check)
    _gpu_fit_check(check, trees=100, depth=12, repeats=1)


def _gpu_fit_check(check, n: int = 200_000, d: int = 32, trees: int = 4, depth: int = 10,
                   repeats: int = 3) -> None:
    """GPU fit: RandomForestClassifier.fit on CuPy X (binned on the host, grown by the CUDA
    kernels) against the same fit on NumPy X: the trees must be the CPU's (same seed and bins; the
    error column is the fraction of node fields that differ). Timed against the CPU fit, and
    against cuML's RandomForestClassifier (same trees, depth, 255 bins) where cuML is importable.
    Rows against the default GPU fit (one launch per small pair, at most 16 workers): batched
    (opt-in until measured on a GPU) and, for many trees, batched with 16 and 32 workers.
    repeats=1: no separate warm-up (the comparison fits warmed up), so the large case stays short.
    The case names the device work of the GPU fit per node pair (ops._tree_gpu.last_counts) and
    the batcher's round trips (batches, mean pairs per batch)."""
    import time

    from ..ensemble import RandomForestClassifier
    from ..ops import _tree_gpu
    cp = check.cp
    X, y, _, _ = _data(n, 0, d)
    Xd, yd = cp.asarray(X), cp.asarray(y)

    def make():
        return RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0)

    def timed(fn):
        if repeats > 1:
            fn()  # warm-up
        ts = []
        for _ in range(repeats):
            cp.cuda.get_current_stream().synchronize()
            t0 = time.perf_counter()
            fn()
            cp.cuda.get_current_stream().synchronize()
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[len(ts) // 2]

    cpu = make().fit(X, y)
    fields = ("feature", "threshold", "children_left", "children_right", "value", "impurity")

    def gpu_fit(**settings):
        """The GPU fit with _tree_gpu.defaults changed meanwhile: (error against the CPU's trees,
        the case text with the fit's device work, the median time)."""
        saved = dict(_tree_gpu.defaults)
        _tree_gpu.defaults.update(settings)
        try:
            gpu = make().fit(Xd, yd)
            c = dict(_tree_gpu.last_counts)
            t = timed(lambda: make().fit(Xd, yd))
        finally:
            _tree_gpu.defaults.update(saved)
        diff = total = 0
        for a, b in zip(cpu.estimators_, gpu.estimators_):
            for k in fields:
                u, v = getattr(a.tree_, k), getattr(b.tree_, k)
                total += u.size
                diff += u.size if u.shape != v.shape else int((u != v).sum())
        return diff / max(total, 1), describe(c, settings), t

    def describe(c, settings):
        pairs = max(c.get("pairs", 0), 1)
        per_pair = "/".join(f"{c.get(k, 0) / pairs:.2f}" for k in ("launches", "h2d", "d2h", "syncs"))
        # worker-microseconds per searched pair (pairs with device work) in each host phase
        work = max(pairs - c.get("leaf_pairs", 0), 1)
        phases = "/".join(f"{c.get(k, 0.0) * 1e6 / work:.1f}" for k in ("issue_s", "wait_s", "host_s", "prepare_s"))
        # the batcher's round trips: how many, their mean size and sync time (about their device time)
        batches = c.get("batches", 0)
        batching = (f"{batches} batches of {c.get('batched', 0) / batches:.1f} pairs, "
                    f"{c.get('batch_sync_s', 0.0) * 1e6 / batches:.0f} us in sync each") if batches else "no batches"
        how = ", ".join(f"{k}={v}" for k, v in settings.items())
        return (f"RF fit {n // 1000}k x {d}, {trees} trees d{depth}{' (' + how + ')' if how else ''} ({pairs} node "
                f"pairs; launches/h2d/d2h/syncs per pair {per_pair}; {batching}; worker us per searched pair "
                f"issue/wait/host/prepare {phases})")

    err, case, t_gpu = gpu_fit()
    check.rows.append(("tree", case, err == 0, err, t_gpu, timed(lambda: make().fit(X, y)), "forgeml CPU", None))
    # the same fit batched (default workers: one per tree up to 128), and for many trees batched
    # with fewer workers (smaller batches): against the default unbatched fit
    others = [dict(batch=True)] + ([dict(batch=True, workers=16), dict(batch=True, workers=32)] if trees > 32 else [])
    for settings in others:
        e, c_case, t = gpu_fit(**settings)
        check.rows.append(("tree", c_case, e == 0, e, t, t_gpu, "forgeml GPU default (unbatched)", None))
    try:
        from cuml.ensemble import RandomForestClassifier as CumlRF
    except Exception:  # cuML not installed: that peer is skipped
        return

    def cuml_fit():
        CumlRF(n_estimators=trees, max_depth=depth, n_bins=255, random_state=0).fit(Xd, yd.astype(cp.int32))

    check.rows.append(("tree", case, err == 0, err, t_gpu, timed(cuml_fit), "cuml RandomForest", None))
