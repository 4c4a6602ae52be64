"""Decision-tree kernels: binning, forest growth, prediction and the split scan.

Binned data: ``edges`` (d, 256) float32 cut points per feature padded with +inf, ``n_edges`` (d);
``codes`` (n, d) uint8 with code = number of cut points below x, NaN -> 255. A node split
``x <= edges[f, b]`` is exactly ``code <= b``. Statistics per bin (width S) are
``{count, weight, w_0 .. w_{K-1}}`` for classification (S = K + 2) and
``{count, weight, sum w*y, sum w*y^2}`` for regression (S = 4).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._backend import as_array, backend_of, check_shape, cpu_only, cuda_module
from .._backend import cpu as _cpu
from .._backend import cuda_stream as _stream
from . import _reference
from ._tree_gpu import grow_forest_gpu as tree_grow_forest_gpu
from ._tree_sparse import SparseCodes, tree_bin_sparse

__all__ = ["tree_bin_edges", "tree_bin_codes", "tree_bin_sparse", "SparseCodes", "tree_grow_forest", "tree_bootstrap_counts",
           "tree_forest_predict", "tree_forest_apply", "tree_compact_forest", "tree_compact_from_arrays",
           "tree_check_nodes", "tree_compact_predict", "tree_best_split", "tree_node_histogram",
           "tree_split_scan", "tree_grow_forest_gpu", "CRITERIA", "NAN_BIN"]

CRITERIA = {"gini": 0, "entropy": 1, "log_loss": 1, "squared_error": 2, "poisson": 3, "absolute_error": 4}
REGRESSION = ("squared_error", "poisson", "absolute_error")


def _histogram_criterion(criterion):
    """The histogram split kernels' criteria: absolute_error is not a sum over bins."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: expected one of {sorted(CRITERIA)}, got {criterion!r}")
    if criterion == "absolute_error":
        raise ValueError("criterion: 'absolute_error' has no histogram split scan (the median is not a sum over "
                         "bins); tree_grow_forest searches its splits over the node's rows")
NAN_BIN = 255


def _cpu_only(*arrays, names):
    return cpu_only(*arrays, names=names, what="forgeml's tree binning, growth and prediction")


def _finite_or_nan(X, name):
    if np.isinf(X).any():
        raise ValueError(f"{name}: infinite values are not supported (NaN is: it marks a missing value)")


def _csc(X):
    """A scipy sparse X as canonical CSC arrays (indptr int64, indices int32, data float32)."""
    X = X.tocsc()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    data = np.ascontiguousarray(X.data, dtype=np.float32)
    _finite_or_nan(data, "X")
    return (np.ascontiguousarray(X.indptr, dtype=np.int64), np.ascontiguousarray(X.indices, dtype=np.int32), data,
            *X.shape)


def tree_bin_edges(X, *, max_bins=255, weight=None, sample=200_000, seed=0):
    """Quantile cut points per feature, from the rows with weight > 0 (subsampled to `sample`).

    X (n, d) float32 (NaN allowed), or a scipy sparse matrix (read as CSC columns, its zeros
    counted, never materialised; the same cut points as its dense form). max_bins counts the NaN
    bin, so a feature gets at most max_bins - 1 value bins. Values within 1e-7 of their sorted
    neighbour share a bin (scikit-learn's FEATURE_THRESHOLD); with more groups of values than
    bins, cuts follow the quantiles of the non-zero values and zero keeps a bin of its own.
    Returns (edges (d, 256) float32, n_edges (d) int32)."""
    if not 2 <= int(max_bins) <= 255:
        raise ValueError(f"max_bins: expected an int in [2, 255], got {max_bins!r}")
    if sp.issparse(X):
        indptr, indices, data, n, d = _csc(X)
        if weight is not None:
            weight = as_array(weight, "weight", dtype=np.float64, ndim=1)
            check_shape(weight, "weight", (n,))
        return _cpu.tree_bin_edges_csc(indptr, indices, data, n, d, weight, int(max_bins), int(sample), int(seed))
    mod = _cpu_only(X, names=["X"])
    X = as_array(X, "X", ndim=2)
    _finite_or_nan(X, "X")
    if weight is not None:
        weight = as_array(weight, "weight", dtype=np.float64, ndim=1)
        check_shape(weight, "weight", (X.shape[0],))
    return mod.tree_bin_edges(X, weight, int(max_bins), int(sample), int(seed))


def tree_bin_codes(X, edges, n_edges, *, order="C"):
    """uint8 codes (n, d) of X under the cut points from tree_bin_edges (NaN -> 255). X may be
    a scipy sparse matrix (read as CSC columns: the same codes as its dense form); then
    order="F" returns them column-major (what tree_grow_forest reads fastest for wide X)."""
    if order not in ("C", "F"):
        raise ValueError(f"order: expected 'C' or 'F', got {order!r}")
    if sp.issparse(X):
        indptr, indices, data, n, d = _csc(X)
        check_shape(edges, "edges", (d, 256))
        return _cpu.tree_bin_codes_csc(indptr, indices, data, n, d, np.ascontiguousarray(edges, dtype=np.float32),
                                       order == "F")
    if order == "F":
        raise ValueError("order: 'F' is for sparse X only")
    mod = _cpu_only(X, names=["X"])
    X = as_array(X, "X", ndim=2)
    _finite_or_nan(X, "X")
    check_shape(edges, "edges", (X.shape[1], 256))
    check_shape(n_edges, "n_edges", (X.shape[1],))
    return mod.tree_bin_codes(X, edges, n_edges)


def tree_grow_forest(codes, y, weight, seeds, *, criterion="gini", n_classes=1, max_depth=None,
                     min_samples_split=2, min_samples_leaf=1, min_weight_fraction_leaf=0.0,
                     min_impurity_decrease=0.0, max_features=None, max_leaf_nodes=None, bootstrap=False,
                     n_draws=None, balanced_subsample=False, threads=None, hist_subtraction=True,
                     monotonic_cst=None, random_split=False, sparse_entries=None, edges=None):
    """Grow len(seeds) trees on binned data, in parallel over trees (each one seeded by its seed).

    codes (n, d) uint8; y (n) int class indices for gini/entropy, float targets for the regression
    criteria (absolute_error: median leaves, splits searched over the node's rows), or (n, k) for k
    outputs (n_classes: the most classes of any output; impurity the mean over outputs);
    weight (n) float64 >= 0 (0: row not used). With bootstrap each tree draws n_draws rows with
    replacement (counts multiply the weights). hist_subtraction=False makes every node build its
    histograms from its rows (the oracle for the parent-minus-sibling path, and for random_split,
    which otherwise sums over the node's rows without histograms). monotonic_cst (d)
    of -1/0/1: monotonic constraints on the node values (regression: means; classification,
    binary only: the fraction of class 0). random_split: extremely randomized trees (each drawn
    feature split at a threshold bin drawn uniformly between its smallest and largest code in
    the node, scikit-learn's rule on the bin scale). codes may be
    Fortran-ordered (column-major: wide sparse X). sparse_entries (optional): X's stored entries
    as a scipy CSR matrix (or (indptr, indices)); every unstored entry must have the code of
    zero. Small nodes then skip the features with no entry in their rows (same trees, faster).
    codes may also be SparseCodes (tree_bin_sparse): growth then reads only those entries
    (not with absolute_error); the trees equal the dense codes' exactly when the histograms
    are integer counts (classification, integer weights), else up to rounding in the last bits.
    Returns a dict of arrays concatenated over the trees:
    offsets (T+1), depth (T), feature, left, right (tree-local ids, -1 at leaves), thr_bin,
    nan_left, impurity, weighted_n, n_samples, value (nodes, k * (n_classes or 1)).
    With edges ((d, 256) float32, tree_bin_edges'), the fields come as tree._tree.Forest keeps
    them, each written once: feature, left, right intp (feature -2 at leaves) and threshold
    float64 (edges[feature, thr_bin], -2 at leaves) instead of thr_bin."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: expected one of {sorted(CRITERIA)}, got {criterion!r}")
    sparse_codes = None
    if isinstance(codes, SparseCodes):
        if criterion == "absolute_error":
            raise ValueError("codes: absolute_error needs the codes of sparse X (tree_bin_codes), not SparseCodes")
        sparse_codes = codes
        codes = np.broadcast_to(np.zeros((), np.uint8), codes.shape)  # the shape only
    codes = np.asarray(codes)
    if sparse_codes is None and not (codes.dtype == np.uint8 and codes.ndim == 2 and codes.flags.f_contiguous):
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
    if codes.ndim != 2:
        raise ValueError(f"codes: expected a 2-D array, got shape {codes.shape}")
    n, d = codes.shape
    classify = criterion not in REGRESSION
    k = int(np.shape(y)[1]) if np.ndim(y) == 2 else 1
    shape = (n, k) if np.ndim(y) == 2 else (n,)
    if classify:
        y_class, y_reg = as_array(y, "y", dtype=np.int32, ndim=len(shape)), None
        check_shape(y_class, "y", shape)
    else:
        y_class, y_reg = None, as_array(y, "y", dtype=np.float64, ndim=len(shape))
        check_shape(y_reg, "y", shape)
    if k < 1:
        raise ValueError("y: expected at least one output")
    if monotonic_cst is not None and k > 1:
        raise ValueError("monotonic_cst: not supported with multiple outputs")
    weight = as_array(weight, "weight", dtype=np.float64, ndim=1)
    check_shape(weight, "weight", (n,))
    if criterion == "poisson" and not np.all(y_reg >= 0):
        raise ValueError("y: the poisson criterion needs non-negative targets")
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
                  threads=int(threads or _cpu.get_num_threads()), hist_subtraction=bool(hist_subtraction),
                  random_split=bool(random_split), n_outputs=k)
    if monotonic_cst is not None:
        cst = np.asarray(monotonic_cst)
        if cst.shape != (d,) or not np.isin(cst, (-1, 0, 1)).all():
            raise ValueError(f"monotonic_cst: expected {d} values in {{-1, 0, 1}}, got {cst!r}")
        if classify and n_classes > 2:
            raise ValueError("monotonic_cst: only regression and binary classification are supported")
        params["monotonic"] = np.ascontiguousarray(cst, dtype=np.int8)
    if sparse_entries is not None:
        if sp.issparse(sparse_entries):
            if sparse_entries.shape != (n, d):
                raise ValueError(f"sparse_entries: expected shape {(n, d)}, got {sparse_entries.shape}")
            sparse_entries = sparse_entries.tocsr()
            sparse_entries = (sparse_entries.indptr, sparse_entries.indices)
        params["entry_ptr"] = np.ascontiguousarray(sparse_entries[0], dtype=np.int64)
        params["entry_feature"] = np.ascontiguousarray(sparse_entries[1], dtype=np.int32)
    if sparse_codes is not None:
        params["sparse_codes"] = sparse_codes.arrays
    if edges is not None:
        edges = as_array(edges, "edges", dtype=np.float32, ndim=2)
        check_shape(edges, "edges", (d, 256))
        params["edges"] = edges
    return _cpu.tree_grow_forest(codes, y_class, y_reg, weight, seeds, params)


def tree_bootstrap_counts(n, n_draws, seed):
    """Per-row draw counts (n) int32 of the bootstrap that tree_grow_forest makes with `seed`."""
    return _cpu.tree_bootstrap_counts(int(n), int(n_draws), int(seed))


SPARSE_BLOCK_BYTES = 32 << 20  # dense float32 rows a sparse X is expanded to at a time


def _by_row_blocks(X, kernel):
    """kernel on a scipy sparse X, densified a block of rows at a time (never the whole matrix);
    the per-row results concatenated."""
    X = X.tocsr()
    n, d = X.shape
    step = max(1, SPARSE_BLOCK_BYTES // (4 * max(d, 1)))
    if n <= step:
        return kernel(np.ascontiguousarray(X.toarray(), dtype=np.float32))
    return np.concatenate([kernel(np.ascontiguousarray(X[a:a + step].toarray(), dtype=np.float32))
                           for a in range(0, n, step)])


def tree_forest_predict(X, nodes, values, roots, *, threads=None):
    """Mean over trees of the leaf values each row of X (n, d) float32 reaches (X may be a
    scipy sparse matrix: expanded by blocks of rows).

    nodes (N, 4) int32: {feature | nan_left << 30 (-1 at leaves), threshold float32 bits, left,
    right} with global child ids; values (N, k) float64; roots (T) int64. Returns (n, k)."""
    threads = int(threads or _cpu.get_num_threads())
    if sp.issparse(X):
        return _by_row_blocks(X, lambda B: _cpu.tree_forest_predict(B, nodes, values, roots, threads))
    mod = _cpu_only(X, names=["X"])
    X = as_array(X, "X", ndim=2)
    return mod.tree_forest_predict(X, nodes, values, roots, threads)


def tree_compact_forest(nodes, roots, n_features):
    """The forest (tree_forest_predict's nodes and roots) laid out for prediction, validated once:
    an opaque object for tree_compact_predict (ValueError naming the first bad node)."""
    return _cpu.TreeCompactForest(nodes, roots, int(n_features))


def tree_compact_from_arrays(nodes, source, roots, n_source_nodes, n_features):
    """A tree_compact_forest rebuilt from its ``.arrays()`` (nodes (m, 3) int32, source (m) int32,
    roots (T) int64), e.g. read from a file: validated in one pass (ValueError naming the first
    bad entry), no re-layout."""
    return _cpu.TreeCompactForest.from_arrays(nodes, source, roots, int(n_source_nodes), int(n_features))


def tree_check_nodes(nodes, roots, n_features):
    """ValueError unless every walk through the flat node array (tree_forest_predict's layout)
    from a root stays inside it and ends at a leaf."""
    _cpu.check_forest_nodes(nodes, roots, int(n_features))


def tree_compact_predict(compact, X, values, *, trees=None, threads=None):
    """tree_forest_predict on a tree_compact_forest (the same result bit for bit): X (n, d)
    float32 on the CPU, values (N, k) float64, trees: indices of the trees to average (all: None).
    A batch of a few rows runs on the calling thread."""
    sel = None if trees is None else np.asarray(trees, dtype=np.int64)
    threads = int(threads or _cpu.get_num_threads())
    if sp.issparse(X):
        return _by_row_blocks(X, lambda B: compact.predict(B, values, sel, threads))
    if type(X) is not np.ndarray:
        _cpu_only(X, names=["X"])
    return compact.predict(X, values, sel, threads)


def tree_forest_apply(X, nodes, roots, *, threads=None):
    """Tree-local leaf id (n, T) int64 that each row of X reaches in each tree (X dense or
    scipy sparse, as in tree_forest_predict)."""
    threads = int(threads or _cpu.get_num_threads())
    if sp.issparse(X):
        return _by_row_blocks(X, lambda B: _cpu.tree_forest_apply(B, nodes, roots, threads))
    mod = _cpu_only(X, names=["X"])
    X = as_array(X, "X", ndim=2)
    return mod.tree_forest_apply(X, nodes, roots, threads)


def tree_compact_rows(nodes, source, roots, values, n_features, max_rows=16, top=None, leaf_rows=False):
    """A few-row predictor over a tree_compact_forest's ``.arrays()`` and the leaf values, as stored
    (e.g. memory-mapped from a file) and not validated: ``.predict(X)`` (X (n, d) float32) equals
    tree_compact_predict bit for bit, checking each node it reads (ValueError naming a bad entry),
    on the calling thread. Building it checks the shapes and roots only (O(trees)). ``.few(X)``:
    ``.predict(X)`` for a 2-D float32 / float64 ndarray of at most max_rows rows (finite or NaN as
    float32), else None. top: tree_compact_top_arrays' top blocks (walked first, checked as they are
    read); leaf_rows: each leaf's feature word in nodes is its row of values (as there)."""
    return _cpu.TreeCompactRows(nodes, source, roots, values, int(n_features), int(max_rows), top, bool(leaf_rows))


def tree_compact_rows_from(compact, values, max_rows=16, top_levels=0):
    """tree_compact_rows over a validated tree_compact_forest (kept alive) and its leaf values, with
    top blocks of top_levels (3, 6 or 9; 0: none) levels built here.
    ``.few(X)`` is ``.predict(X)`` for a 2-D float32 / float64 ndarray of at most max_rows rows
    (finite or NaN as float32), else None."""
    return _cpu.TreeCompactRows(compact, values, int(max_rows), int(top_levels))


def tree_file_map(path):
    """(memoryview, header) of a compact forest file mapped read-only in one call: header is None
    under 80 bytes, else its fixed fields (as forgeml.tree._format unpacks them) and the CRC-32 of
    the rest of the header (None where that runs past the file's end). OSError as open raises it."""
    return _cpu.forest_file_map(path)


# tree_file_load(path): tree_file_map with load's checks of a version 2 / 3 file's header and forest
# table done in the same C call, and the forest's arrays viewed there: (bytes (the whole file, a read-only
# uint8 array), class code, n_features, n_outputs, data offset, data length, attribute text, table (None
# per forest array, (dtype code, offset, length) per other), the forest's read-only views in
# forgeml.tree._format's order), or tree_file_map's (memoryview, header) for anything else. The builtin
# itself, not a wrapper: a Python frame costs ~5 us of a ~0.3 ms cold load.
tree_file_load = _cpu.forest_file_load
# tree_file_hugepages(view): madvise(MADV_HUGEPAGE) on the file mapping a loaded forest's view lies in,
# so pages not yet in the page cache are read as 2 MiB folios (PMD-mapped: few TLB entries for a cold
# walk); nothing for any other object.
tree_file_hugepages = _cpu.forest_file_hugepages


def tree_compact_top_arrays(compact, levels):
    """(nodes, top) of a tree_compact_forest for the few-row walk: its nodes (m, 3) int32 with each
    leaf's row of values in its feature word, and per tree its first `levels` (3, 6 or 9) levels
    breadth-first in one block of 64-byte groups (T, words) int32 (cpu/tree/compact_rows.h)."""
    return _cpu.tree_compact_top_arrays(compact, int(levels))


def tree_compact_predict_rows(compact, X, values):
    """tree_compact_predict for a few rows (X (n, d) float32 ndarray) on the calling thread, several
    trees walked at once per row: the same result bit for bit, faster on a cold cache."""
    return _cpu.tree_compact_predict_rows(compact, X, values)


__all__ += ["tree_compact_rows", "tree_compact_rows_from", "tree_compact_predict_rows", "tree_compact_top_arrays",
            "tree_file_map", "tree_file_load", "tree_file_hugepages"]


def tree_best_split(hist, total, *, criterion="gini", min_samples_leaf=1, min_weight_leaf=0.0):
    """Best split over dense histograms: hist (d, 256, S) float64, total (S).

    Returns (feature, threshold bin, nan_left, proxy); feature -1 when no split is valid. The
    proxy is what the split maximises: sum over children of sum_k w_k^2 / W (gini),
    sum_k w_k ln w_k - W ln W (entropy), (sum w y)^2 / W (squared_error)."""
    mod = _cpu_only(hist, names=["hist"])
    _histogram_criterion(criterion)
    hist = as_array(hist, "hist", dtype=np.float64, ndim=3)
    total = as_array(total, "total", dtype=np.float64, ndim=1)
    S = hist.shape[2]
    n_classes = S - 2 if criterion not in REGRESSION else 1
    return mod.tree_best_split(hist, total, CRITERIA[criterion], n_classes, float(min_samples_leaf),
                               float(min_weight_leaf))


# ---------------------------------------------------------------- node histograms and the per-feature scan
# These two run on CuPy arrays with the CUDA kernels (csrc/cuda/tree.cu) and on NumPy arrays
# with the NumPy reference (_reference.py) / the C++ scan giving the same results.

def tree_node_histogram(codes, rows, weight, *, y_class=None, y=None, n_classes=None):
    """Histograms of one node: codes (n, d) uint8, rows (m) int32 (the node's rows), weight (n).

    Classification (y_class (n) ints, n_classes = H): hw[f, b, k] = weight of class k in bin b.
    Regression (y (n) floats, H = 3): hw[f, b] = {w, w*y, w*y^2}. Returns (hw (d, 256, H)
    float64, cnt (d, 256) uint32)."""
    if (y_class is None) == (y is None):
        raise ValueError("give exactly one of y_class (classification) and y (regression)")
    kind, _ = backend_of(codes, rows, weight, y_class, y, names=["codes", "rows", "weight", "y_class", "y"])
    xp = np if kind == "cpu" else __import__("cupy")
    codes = xp.ascontiguousarray(codes, dtype=xp.uint8)
    if codes.ndim != 2:
        raise ValueError(f"codes: expected a 2-D array, got shape {tuple(codes.shape)}")
    n, d = codes.shape
    rows = as_array(rows, "rows", dtype=np.int32, ndim=1, xp=xp)
    weight = as_array(weight, "weight", dtype=np.float64, ndim=1, xp=xp)
    check_shape(weight, "weight", (n,))
    if y_class is not None:
        H = int(n_classes)
        y_class = as_array(y_class, "y_class", dtype=np.int32, ndim=1, xp=xp)
        check_shape(y_class, "y_class", (n,))
    else:
        H = 3
        y = as_array(y, "y", dtype=np.float64, ndim=1, xp=xp)
        check_shape(y, "y", (n,))
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= n):
        raise ValueError(f"rows: expected indices in [0, {n}), got [{int(rows.min())}, {int(rows.max())}]")
    if kind == "cpu":
        return _reference.node_histogram(codes, rows, weight, y_class, y, H)
    hw = xp.zeros((d, 256, H))
    cnt = xp.zeros((d, 256), dtype=xp.uint32)
    mod = cuda_module()
    nul = 0
    mod.tree_histogram(codes.data.ptr, n, d, rows.data.ptr, len(rows),
                       y_class.data.ptr if y_class is not None else nul, weight.data.ptr,
                       y.data.ptr if y is not None else nul, H, hw.data.ptr, cnt.data.ptr, _stream())
    return hw, cnt


def tree_split_scan(hw, cnt, total, *, criterion="gini", min_samples_leaf=1, min_weight_leaf=0.0):
    """Best split of every feature from a node's histograms (tree_node_histogram's layout).

    total: the node's statistics {count, W, w_k...} (classification) or {count, W, sum wy,
    sum wy^2}. Returns (proxy (d) float64, -inf where none; bin (d) int32, -1 where none;
    nan_left (d) int32), the same candidates and ties as tree_best_split."""
    _histogram_criterion(criterion)
    kind, _ = backend_of(hw, cnt, total, names=["hw", "cnt", "total"])
    xp = np if kind == "cpu" else __import__("cupy")
    hw = as_array(hw, "hw", dtype=np.float64, ndim=3, xp=xp)
    d, _, H = hw.shape
    check_shape(hw, "hw", (d, 256, H))
    cnt = as_array(cnt, "cnt", dtype=np.uint32, ndim=2, xp=xp)
    check_shape(cnt, "cnt", (d, 256))
    classify = criterion not in REGRESSION
    S = H + 2 if classify else 4
    total = as_array(total, "total", dtype=np.float64, ndim=1, xp=xp)
    check_shape(total, "total", (S,))
    if kind == "cuda":
        if criterion == "poisson":
            raise ValueError("criterion: 'poisson' has no CUDA split scan yet; use NumPy arrays")
        proxy, bins, nan_left = xp.empty(d), xp.empty(d, dtype=xp.int32), xp.empty(d, dtype=xp.int32)
        cuda_module().tree_split_scan(hw.data.ptr, cnt.data.ptr, d, H, CRITERIA[criterion], total.data.ptr,
                                    float(min_samples_leaf), float(min_weight_leaf), proxy.data.ptr,
                                    bins.data.ptr, nan_left.data.ptr, _stream())
        return proxy, bins, nan_left
    W = hw.sum(axis=2) if classify else hw[:, :, 0]
    dense = np.concatenate([cnt[:, :, None].astype(np.float64), W[:, :, None], hw if classify else hw[:, :, 1:]],
                           axis=2)
    proxy, bins, nan_left = np.full(d, -np.inf), np.full(d, -1, np.int32), np.zeros(d, np.int32)
    for f in range(d):
        feat, b, nl, p = tree_best_split(dense[f:f + 1], total, criterion=criterion,
                                         min_samples_leaf=min_samples_leaf, min_weight_leaf=min_weight_leaf)
        if feat >= 0:
            proxy[f], bins[f], nan_left[f] = p, b, nl
    return proxy, bins, nan_left
