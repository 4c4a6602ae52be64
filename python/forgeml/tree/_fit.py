"""What decision trees and random forests share when fitting: input checks, parameter
resolution (scikit-learn's rules), class encoding and weights, binning and growth."""
from __future__ import annotations

import functools
import math
import numbers
import os
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_array

from .. import get_num_threads, ops
from ._tree import Forest

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def validate_data(est, X="no_validation", y="no_validation", **kw):
        kw["force_all_finite"] = kw.pop("ensure_all_finite", True)
        return est._validate_data(X, y, **kw)

MAX_INT = np.iinfo(np.int32).max
BIN_SAMPLE = 200_000  # rows the cut points are computed from (LightGBM's default)


@functools.lru_cache(maxsize=1)
def _cpu_count() -> int:
    return os.cpu_count() or 1  # (reads /sys each call: ~25 us, half of a 1-row forest predict)


def threads_for(n_jobs) -> int:
    """scikit-learn's n_jobs: None -> forgeml's thread setting, -1 -> all CPUs, -2 -> all but one."""
    if n_jobs is None:
        return get_num_threads()
    if n_jobs < 0:
        return max(1, _cpu_count() + 1 + n_jobs)
    return max(1, int(n_jobs))


SPARSE_FORMATS = ("csc", "csr", "coo")


def float32_input(X, sparse_format: str):
    """Dense X as a C-contiguous float32 array; sparse X kept sparse, as canonical float32
    `sparse_format` ("csc" for fit: binning reads columns; "csr" for predict: rows in blocks)."""
    if sp.issparse(X):
        X = X.asformat(sparse_format).astype(np.float32, copy=False)
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        if np.isnan(X.data).any():  # as scikit-learn: missing values are supported in dense X only
            raise ValueError("Input X contains NaN. Missing values are supported for dense X only: "
                             "pass X.toarray(), or impute them first.")
        return X
    return np.ascontiguousarray(X, dtype=np.float32)


def _host(a):
    """CuPy input as NumPy (binning, checks and predict run on the host); anything else as is."""
    return a.get() if type(a).__module__.startswith("cupy") and hasattr(a, "get") else a


def check_X(est, X, reset: bool):
    X = validate_data(est, _host(X), reset=reset, dtype=np.float32, ensure_all_finite="allow-nan",
                      accept_sparse=SPARSE_FORMATS)
    return float32_input(X, "csr")


def check_X_predict(est, X):
    """check_X for predict. A float32/float64 ndarray of the fitted width, from an estimator fitted
    without feature names, skips scikit-learn's validate_data (tens of microseconds: most of a
    1-row predict); anything else, or a value that is infinite in float32, takes check_X."""
    if (type(X) is np.ndarray and X.ndim == 2 and X.dtype in (np.float32, np.float64) and X.shape[0] > 0
            and X.shape[1] == est.n_features_in_ and "feature_names_in_" not in est.__dict__):
        if X.dtype == np.float32:
            X32 = np.ascontiguousarray(X)
        else:
            with np.errstate(over="ignore"):  # too large for float32: check_X says so below
                X32 = np.ascontiguousarray(X, dtype=np.float32)
        if not np.isinf(X32).any():
            return X32
    return check_X(est, X, reset=False)


def check_X_y(est, X, y, classify: bool, column_warning: bool = False):
    """X as dense float32 and y as (n,) or (n, k > 1): a column y (n, 1) becomes 1-D (with
    scikit-learn's DataConversionWarning when column_warning, as its forests warn)."""
    if sp.issparse(y):  # scikit-learn's TypeError for a sparse y
        check_array(y, accept_sparse=False, ensure_2d=False, dtype=None, input_name="y")
    est._fit_on_device = type(X).__module__.startswith("cupy")  # grow() grows the trees on the GPU
    X, y = _host(X), _host(y)
    check_poisson_y(est, y)
    X, y = validate_data(est, X, y, dtype=np.float32, ensure_all_finite="allow-nan", y_numeric=not classify,
                         accept_sparse=SPARSE_FORMATS, multi_output=True)
    if y.ndim == 2 and y.shape[1] == 1:
        if column_warning:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y "
                          "to (n_samples,), for example using ravel().", DataConversionWarning, stacklevel=3)
        y = y[:, 0]
    if y.ndim == 2 and getattr(est, "monotonic_cst", None) is not None:
        raise ValueError("Monotonicity constraints are not supported with multiple outputs.")
    X = float32_input(X, "csc")
    if np.isinf(X.data if sp.issparse(X) else X).any():  # allow-nan lets through only NaN; belt and braces
        raise ValueError("Input X contains infinity or a value too large for dtype('float32').")
    return X, y


def check_poisson_y(est, y):
    """Poisson's conditions on y; checked before X and y are matched in length, as scikit-learn
    does (its trees validate X and y separately)."""
    if getattr(est, "criterion", None) != "poisson" or sp.issparse(y):
        return
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        return  # not numbers: validate_data says so
    if np.any(y < 0):
        raise ValueError("Some value(s) of y are negative which is not allowed for Poisson regression.")
    if np.sum(y) <= 0:
        raise ValueError("Sum of y is not strictly positive which is necessary for Poisson regression."
                         if hasattr(est, "n_estimators") else
                         "Sum of y is not positive which is necessary for Poisson regression.")


def encode_classes(est, y):
    """Class indices (n) or (n, k); sets classes_ / n_classes_ (lists and an array for k > 1)."""
    check_classification_targets(y)
    if y.ndim == 1:
        classes, y_enc = np.unique(y, return_inverse=True)
        est.classes_ = classes
        est.n_classes_ = len(classes)
        est.n_outputs_ = 1
        return y_enc.astype(np.int32)
    est.classes_, y_enc = [], np.empty(y.shape, dtype=np.int32)
    for o in range(y.shape[1]):
        classes, y_enc[:, o] = np.unique(y[:, o], return_inverse=True)
        est.classes_.append(classes)
    est.n_classes_ = np.array([len(c) for c in est.classes_], dtype=np.intp)
    est.n_outputs_ = y.shape[1]
    return y_enc


def n_class_slots(est) -> int:
    """Class slots per output in the kernel's values: the most classes of any output."""
    return int(np.max(est.n_classes_))


def encode_targets(est, y):
    """Regression targets as float64 (n) or (n, k); sets n_outputs_."""
    est.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
    return np.ascontiguousarray(y, dtype=np.float64)


def sample_weights(X, y_orig, sample_weight, class_weight):
    sw = _check_sample_weight(_host(sample_weight), X, dtype=np.float64, ensure_non_negative=True)
    if class_weight is not None and class_weight != "balanced_subsample":
        sw = sw * compute_sample_weight(class_weight, y_orig)
    return np.ascontiguousarray(sw)


def resolve_max_features(max_features, d: int) -> int:
    if max_features is None:
        return d
    if isinstance(max_features, str):
        f = math.sqrt(d) if max_features == "sqrt" else math.log2(d)
        return max(1, int(f))
    if isinstance(max_features, numbers.Integral):
        if max_features > d:
            raise ValueError(f"max_features: expected at most n_features={d}, got {max_features}")
        return int(max_features)
    return max(1, int(max_features * d))


def resolve_sizes(est, n: int) -> tuple[int, int]:
    """(min_samples_split, min_samples_leaf) as row counts."""
    leaf = est.min_samples_leaf
    if not isinstance(leaf, numbers.Integral):
        leaf = int(math.ceil(leaf * n))
    split = est.min_samples_split
    if not isinstance(split, numbers.Integral):
        split = int(math.ceil(split * n))
    return max(2, int(split)), max(1, int(leaf))


def bin_data(X, weight, max_bins: int, seed: int):
    """(codes, edges). Sparse X is binned from its columns (never densified), its codes column-major."""
    edges, n_edges = ops.tree_bin_edges(X, max_bins=max_bins, weight=weight, sample=BIN_SAMPLE, seed=seed)
    if sp.issparse(X):
        codes = ops.tree_bin_codes(X, edges, n_edges, order="F")
        return codes, edges
    return ops.tree_bin_codes(X, edges, n_edges), edges


def grow(est, X, y_enc, weight, *, criterion, n_classes, seeds, max_features, bootstrap=False, n_draws=None,
         balanced_subsample=False, threads, bin_seed=None) -> Forest:
    """Bin X (rows with weight > 0) and grow one tree per seed; returns the Forest."""
    if bin_seed is None:
        bin_seed = int(seeds[0]) ^ 0x9E3779B9 if len(seeds) else 0
    sparse_kw = {}
    if sp.issparse(X) and criterion != "absolute_error":  # sparse X: growth reads its binned entries only
        edges, _ = ops.tree_bin_edges(X, max_bins=est.max_bins, weight=weight, sample=BIN_SAMPLE, seed=bin_seed)
        codes = ops.tree_bin_sparse(X, edges)
    else:
        codes, edges = bin_data(X, weight, est.max_bins, bin_seed)
        # sparse X: growth is told where its stored entries are (small nodes skip the other features)
        sparse_kw = {"sparse_entries": X.tocsr()} if sp.issparse(X) else {}
    split, leaf = resolve_sizes(est, X.shape[0])
    on_device = est.__dict__.pop("_fit_on_device", False)
    if on_device and not sp.issparse(X) and np.ndim(y_enc) == 1:  # the GPU grower: dense codes, one output
        grown = _grow_on_device(est, codes, y_enc, weight, criterion, n_classes, seeds, max_features, split, leaf,
                                bootstrap, n_draws, balanced_subsample)
        if grown is not None:
            return Forest(grown, edges, X.shape[1])
    grown = ops.tree_grow_forest(
        codes, y_enc, weight, seeds, criterion=criterion, n_classes=n_classes, max_depth=est.max_depth,
        min_samples_split=split, min_samples_leaf=leaf, min_weight_fraction_leaf=est.min_weight_fraction_leaf,
        min_impurity_decrease=est.min_impurity_decrease, max_features=max_features,
        max_leaf_nodes=est.max_leaf_nodes, bootstrap=bootstrap, n_draws=n_draws,
        balanced_subsample=balanced_subsample, threads=threads, monotonic_cst=monotonic_for(est, X.shape[1]),
        random_split=getattr(est, "splitter", "best") == "random", edges=edges, **sparse_kw)
    return Forest(grown, edges, X.shape[1], 1 if np.ndim(y_enc) == 1 else np.shape(y_enc)[1])


def _grow_on_device(est, codes, y_enc, weight, criterion, n_classes, seeds, max_features, split, leaf, bootstrap,
                    n_draws, balanced_subsample):
    """CuPy input: the trees grow on the GPU (ops.tree_grow_forest_gpu, the CPU's trees) from codes
    binned on the host; None for settings only the host grower has (then the host grows them)."""
    from ..ops import _tree_gpu
    mono = monotonic_for(est, codes.shape[1])
    random_split = getattr(est, "splitter", "best") == "random"
    if _tree_gpu.supported(criterion, n_classes, monotonic_cst=mono, max_leaf_nodes=est.max_leaf_nodes,
                           random_split=random_split, balanced_subsample=balanced_subsample) is not None:
        return None
    import cupy as cp
    return ops.tree_grow_forest_gpu(
        cp.asarray(codes), cp.asarray(y_enc), cp.asarray(weight), seeds, criterion=criterion, n_classes=n_classes,
        max_depth=est.max_depth, min_samples_split=split, min_samples_leaf=leaf,
        min_weight_fraction_leaf=est.min_weight_fraction_leaf, min_impurity_decrease=est.min_impurity_decrease,
        max_features=max_features, bootstrap=bootstrap, n_draws=n_draws)


def monotonic_for(est, d: int):
    """scikit-learn's monotonic_cst checks; classifiers' constraints (on the positive class) flipped
    to the kernel's class-0 fraction. None when unconstrained."""
    cst = getattr(est, "monotonic_cst", None)
    if cst is None:
        return None
    if getattr(est, "n_outputs_", 1) > 1:
        raise ValueError("Monotonicity constraints are not supported with multiple outputs.")
    cst = np.asarray(cst)
    if cst.shape[0] != d:
        raise ValueError(f"monotonic_cst has shape {cst.shape[0]} but the input data X has {d} features.")
    if not np.isin(cst, (-1, 0, 1)).all():
        raise ValueError(f"monotonic_cst must be None or an array-like of -1, 0 or 1, but got {np.unique(cst)}")
    cst = cst.astype(np.int8)
    if hasattr(est, "classes_"):
        if len(est.classes_) > 2:
            raise ValueError("Monotonicity constraints are not supported with multiclass classification")
        cst = -cst
    return cst


def seeds_for(random_state, n: int) -> np.ndarray:
    rs = check_random_state(random_state)
    return rs.randint(MAX_INT, size=n).astype(np.uint64)
