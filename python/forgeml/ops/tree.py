"""Decision-tree kernels: binning, forest growth, prediction and the split scan.

Binned data: ``edges`` (d, 256) float32 cut points per feature padded with +inf, ``n_edges`` (d);
``codes`` (n, d) uint8 with code = number of cut points below x, NaN -> 255. A node split
``x <= edges[f, b]`` is exactly ``code <= b``. Statistics per bin (width S) are
``{count, weight, w_0 .. w_{K-1}}`` for classification (S = K + 2) and
``{count, weight, sum w*y, sum w*y^2}`` for regression (S = 4).
"""
from __future__ import annotations

import numpy as np

from .._backend import as_array, backend_of, check_shape

__all__ = ["tree_bin_edges", "tree_bin_codes", "tree_grow_forest", "tree_bootstrap_counts",
           "tree_forest_predict", "tree_forest_apply", "tree_best_split", "CRITERIA", "NAN_BIN"]

CRITERIA = {"gini": 0, "entropy": 1, "log_loss": 1, "squared_error": 2}
NAN_BIN = 255


def _cpu_only(*arrays, names):
    kind, mod = backend_of(*arrays, names=names)
    if kind != "cpu":
        raise RuntimeError("forgeml tree kernels on CuPy arrays are not available yet; "
                           "use cupy.asnumpy(x) to run them on the CPU")
    return mod


def _finite_or_nan(X, name):
    if np.isinf(X).any():
        raise ValueError(f"{name}: infinite values are not supported (NaN is: it marks a missing value)")


def tree_bin_edges(X, *, max_bins=255, weight=None, sample=200_000, seed=0):
    """Quantile cut points per feature, from the rows with weight > 0 (subsampled to `sample`).

    X (n, d) float32 (NaN allowed). max_bins counts the NaN bin, so a feature gets at most
    max_bins - 1 value bins. Returns (edges (d, 256) float32, n_edges (d) int32)."""
    mod = _cpu_only(X, names=["X"])
    X = as_array(X, "X", ndim=2)
    _finite_or_nan(X, "X")
    if not 2 <= int(max_bins) <= 255:
        raise ValueError(f"max_bins: expected an int in [2, 255], got {max_bins!r}")
    if weight is not None:
        weight = as_array(weight, "weight", dtype=np.float64, ndim=1)
        check_shape(weight, "weight", (X.shape[0],))
    return mod.tree_bin_edges(X, weight, int(max_bins), int(sample), int(seed))


def tree_bin_codes(X, edges, n_edges):
    """uint8 codes (n, d) of X under the cut points from tree_bin_edges (NaN -> 255)."""
    mod = _cpu_only(X, names=["X"])
    X = as_array(X, "X", ndim=2)
    _finite_or_nan(X, "X")
    check_shape(edges, "edges", (X.shape[1], 256))
    check_shape(n_edges, "n_edges", (X.shape[1],))
    return mod.tree_bin_codes(X, edges, n_edges)


def tree_grow_forest(codes, y, weight, seeds, *, criterion="gini", n_classes=1, max_depth=None,
                     min_samples_split=2, min_samples_leaf=1, min_weight_fraction_leaf=0.0,
                     min_impurity_decrease=0.0, max_features=None, max_leaf_nodes=None, bootstrap=False,
                     n_draws=None, balanced_subsample=False, threads=None, hist_subtraction=True):
    """Grow len(seeds) trees on binned data, in parallel over trees (each one seeded by its seed).

    codes (n, d) uint8; y (n) int class indices for gini/entropy, float targets for squared_error;
    weight (n) float64 >= 0 (0: row not used). With bootstrap each tree draws n_draws rows with
    replacement (counts multiply the weights). hist_subtraction=False makes every node build its
    histograms from its rows (the oracle for the parent-minus-sibling path). Returns a dict of arrays concatenated over the trees:
    offsets (T+1), depth (T), feature, left, right (tree-local ids, -1 at leaves), thr_bin,
    nan_left, impurity, weighted_n, n_samples, value (nodes, n_classes or 1)."""
    from .. import _cpu
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: expected one of {sorted(CRITERIA)}, got {criterion!r}")
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise ValueError(f"codes: expected a 2-D array, got shape {codes.shape}")
    n, d = codes.shape
    classify = criterion != "squared_error"
    if classify:
        y_class, y_reg = as_array(y, "y", dtype=np.int32, ndim=1), None
        check_shape(y_class, "y", (n,))
    else:
        y_class, y_reg = None, as_array(y, "y", dtype=np.float64, ndim=1)
        check_shape(y_reg, "y", (n,))
    weight = as_array(weight, "weight", dtype=np.float64, ndim=1)
    check_shape(weight, "weight", (n,))
    if not np.all(weight >= 0):
        raise ValueError("weight: expected non-negative finite values")
    seeds = np.ascontiguousarray(seeds, dtype=np.uint64).reshape(-1)
    params = dict(criterion=CRITERIA[criterion], n_classes=int(n_classes if classify else 1),
                  max_depth=int(min(max_depth, 2**30)) if max_depth is not None else 2**30,
                  min_samples_split=int(min_samples_split), min_samples_leaf=int(min_samples_leaf),
                  min_weight_fraction_leaf=float(min_weight_fraction_leaf),
                  min_impurity_decrease=float(min_impurity_decrease),
                  max_features=int(d if max_features is None else max_features),
                  max_leaf_nodes=int(max_leaf_nodes or 0), bootstrap=bool(bootstrap),
                  n_draws=int(n if n_draws is None else n_draws), balanced_subsample=bool(balanced_subsample),
                  threads=int(threads or _cpu.get_num_threads()), hist_subtraction=bool(hist_subtraction))
    return _cpu.tree_grow_forest(codes, y_class, y_reg, weight, seeds, params)


def tree_bootstrap_counts(n, n_draws, seed):
    """Per-row draw counts (n) int32 of the bootstrap that tree_grow_forest makes with `seed`."""
    from .. import _cpu
    return _cpu.tree_bootstrap_counts(int(n), int(n_draws), int(seed))


def tree_forest_predict(X, nodes, values, roots, *, threads=None):
    """Mean over trees of the leaf values each row of X (n, d) float32 reaches.

    nodes (N, 4) int32: {feature | nan_left << 30 (-1 at leaves), threshold float32 bits, left,
    right} with global child ids; values (N, k) float64; roots (T) int64. Returns (n, k)."""
    mod = _cpu_only(X, names=["X"])
    X = as_array(X, "X", ndim=2)
    from .. import _cpu
    return mod.tree_forest_predict(X, nodes, values, roots, int(threads or _cpu.get_num_threads()))


def tree_forest_apply(X, nodes, roots, *, threads=None):
    """Tree-local leaf id (n, T) int64 that each row of X reaches in each tree."""
    mod = _cpu_only(X, names=["X"])
    X = as_array(X, "X", ndim=2)
    from .. import _cpu
    return mod.tree_forest_apply(X, nodes, roots, int(threads or _cpu.get_num_threads()))


def tree_best_split(hist, total, *, criterion="gini", min_samples_leaf=1, min_weight_leaf=0.0):
    """Best split over dense histograms: hist (d, 256, S) float64, total (S).

    Returns (feature, threshold bin, nan_left, proxy); feature -1 when no split is valid. The
    proxy is what the split maximises: sum over children of sum_k w_k^2 / W (gini),
    sum_k w_k ln w_k - W ln W (entropy), (sum w y)^2 / W (squared_error)."""
    mod = _cpu_only(hist, names=["hist"])
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: expected one of {sorted(CRITERIA)}, got {criterion!r}")
    hist = as_array(hist, "hist", dtype=np.float64, ndim=3)
    total = as_array(total, "total", dtype=np.float64, ndim=1)
    S = hist.shape[2]
    n_classes = S - 2 if criterion != "squared_error" else 1
    return mod.tree_best_split(hist, total, CRITERIA[criterion], n_classes, float(min_samples_leaf),
                               float(min_weight_leaf))
