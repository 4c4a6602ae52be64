"""Sparse RandomForestClassifier fit against scikit-learn's on the same CSR (forgeml issue 15):
the bench's data (bench/tree.py _sparse_data, 10k features, 1% density), 5 trees, both fits in
one process, alternated, with the time of each of forgeml's stages (Python CSC conversion,
binning, growth) so a regression can be placed.

    PYTHONPATH=python python bench/tree_sparse_probe.py --rows 30000 --repeats 3
    PYTHONPATH=python python bench/tree_sparse_probe.py --rows 100000 --repeats 2   # the issue's size

The machine's other load moves both sides: compare the ratio (scikit-learn / forgeml), not times."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=30_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trees", type=int, default=5)
    args = ap.parse_args()

    from sklearn.ensemble import RandomForestClassifier as SkForest

    from forgeml import ops
    from forgeml.bench.tree import _sparse_data
    from forgeml.ensemble import RandomForestClassifier
    from forgeml.tree import _fit

    X, y, Xte, yte = _sparse_data(args.rows, 10_000)
    stages = {}

    def stage(name, f):
        t = time.perf_counter()
        out = f()
        stages.setdefault(name, []).append(time.perf_counter() - t)
        return out

    ratios = []
    for _ in range(args.repeats):
        Xc = stage("csr -> csc (scipy)", lambda: _fit.float32_input(X, "csc"))
        w = np.ones(X.shape[0])
        edges, _ = stage("bin edges", lambda: ops.tree_bin_edges(Xc, weight=w, seed=1))
        stage("bin entries", lambda: ops.tree_bin_sparse(Xc, edges))
        t = time.perf_counter()
        ours = RandomForestClassifier(n_estimators=args.trees, random_state=0).fit(X, y)
        t_ours = time.perf_counter() - t
        t = time.perf_counter()
        peer = SkForest(n_estimators=args.trees, n_jobs=-1, random_state=0).fit(X, y)
        t_peer = time.perf_counter() - t
        ratios.append(t_peer / t_ours)
        print(
            f"forgeml {t_ours:.2f}s (accuracy {np.mean(ours.predict(Xte) == yte):.4f})  scikit-learn "
            f"{t_peer:.2f}s (accuracy {np.mean(peer.predict(Xte) == yte):.4f})  ratio {ratios[-1]:.2f}",
            flush=True,
        )
    for name, ts in stages.items():
        print(f"  {name:20s} median {statistics.median(ts):.3f}s")
    print(f"median ratio {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
