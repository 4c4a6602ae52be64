"""Random-forest predict_proba on 10k rows, forgeml against scikit-learn and LightGBM's rf mode, side
by side in one process: the forests of bench/tree.py (100k x 50, 100 trees; peers sized as there).
Fitted models are cached in a pickle so a kernel change can be re-measured in seconds.

    OMP_NUM_THREADS=2 PYTHONPATH=python python bench/tree_predict_probe.py [--cache PATH]

Prints node counts per tree (forgeml, scikit-learn) and, per peer, best-of-7 times and the ratio
peer time / forgeml time."""

from __future__ import annotations

import argparse
import os
import pickle
import time

import numpy as np

from forgeml.bench.tree import _data, _peers
from forgeml.ensemble import RandomForestClassifier


def _fit(cache: str, Xtr, ytr) -> dict:
    if os.path.exists(cache):
        with open(cache, "rb") as fh:
            return pickle.load(fh)
    models = {"forgeml": RandomForestClassifier(n_estimators=100, random_state=0).fit(Xtr, ytr)}
    offsets = models["forgeml"]._forest.offsets
    leaves = int(round(np.mean((np.diff(offsets) + 1) / 2)))  # binary trees: nodes = 2L - 1
    factories = _peers(Xtr.shape[1], 100, leaves)
    for name in ("sklearn", "lightgbm-rf"):
        if name in factories:
            models[name] = factories[name]().fit(Xtr, ytr)
    with open(cache, "wb") as fh:
        pickle.dump(models, fh)
    return models


def _best(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="/tmp/forgeml_tree_predict_models.pkl")
    args = ap.parse_args()
    Xtr, ytr, Xte, _ = _data(100_000)
    models = _fit(args.cache, Xtr, ytr)
    print("forgeml nodes/tree", float(np.mean(np.diff(models["forgeml"]._forest.offsets))))
    if "sklearn" in models:
        trees = models["sklearn"].estimators_
        print(
            "sklearn nodes/tree",
            float(np.mean([e.tree_.node_count for e in trees])),
            "max depth",
            float(np.mean([e.tree_.max_depth for e in trees])),
        )
    X = np.ascontiguousarray(Xte[:10_000])
    ours = _best(lambda: models["forgeml"].predict_proba(X))
    for name, model in models.items():
        if name != "forgeml":
            peer = _best(lambda m=model: m.predict_proba(X))
            print(f"{name}: forgeml {ours * 1e3:.1f} ms, peer {peer * 1e3:.1f} ms, ratio {peer / ours:.2f}x")


if __name__ == "__main__":
    main()
