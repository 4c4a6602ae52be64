"""What decision trees and random forests share when fitting: input checks, parameter
resolution (scikit-learn's rules), class encoding and weights, binning and growth."""
from __future__ import annotations

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


def threads_for(n_jobs) -> int:
    """scikit-learn's n_jobs: None -> forgeml's thread setting, -1 -> all CPUs, -2 -> all but one."""
    if n_jobs is None:
        return get_num_threads()
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, int(n_jobs))


SPARSE_FORMATS = ("csc", "csr", "coo")


def dense_float32(X):
    """Sparse X as a dense C-contiguous float32 array (the binned kernels read dense rows; the
    zeros of a sparse matrix are values like any other)."""
    if sp.issparse(X):
        X = X.toarray()
    return np.ascontiguousarray(X, dtype=np.float32)


def check_X(est, X, reset: bool):
    X = validate_data(est, X, reset=reset, dtype=np.float32, ensure_all_finite="allow-nan",
                      accept_sparse=SPARSE_FORMATS)
    return dense_float32(X)


def check_X_y(est, X, y, classify: bool, column_warning: bool = False):
    """X as dense float32 and y as (n,) or (n, k > 1): a column y (n, 1) becomes 1-D (with
    scikit-learn's DataConversionWarning when column_warning, as its forests warn)."""
    if sp.issparse(y):  # scikit-learn's TypeError for a sparse y
        check_array(y, accept_sparse=False, ensure_2d=False, dtype=None, input_name="y")
    X, y = validate_data(est, X, y, dtype=np.float32, ensure_all_finite="allow-nan", y_numeric=not classify,
                         accept_sparse=SPARSE_FORMATS, multi_output=True)
    if y.ndim == 2 and y.shape[1] == 1:
        if column_warning:
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y "
                          "to (n_samples,), for example using ravel().", DataConversionWarning, stacklevel=3)
        y = y[:, 0]
    if y.ndim == 2 and getattr(est, "monotonic_cst", None) is not None:
        raise ValueError("Monotonicity constraints are not supported with multiple outputs.")
    X = dense_float32(X)
    if getattr(est, "criterion", None) == "poisson":
        if np.any(y < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson regression.")
        if np.sum(y) <= 0:
            raise ValueError("Sum of y is not strictly positive which is necessary for Poisson regression."
                             if hasattr(est, "n_estimators") else
                             "Sum of y is not positive which is necessary for Poisson regression.")
    if np.isinf(X).any():  # allow-nan lets through only NaN; belt and braces for float32 overflow
        raise ValueError("Input X contains infinity or a value too large for dtype('float32').")
    return X, y


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
    sw = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
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
    edges, n_edges = ops.tree_bin_edges(X, max_bins=max_bins, weight=weight, sample=BIN_SAMPLE, seed=seed)
    codes = ops.tree_bin_codes(X, edges, n_edges)
    return codes, edges


def grow(est, X, y_enc, weight, *, criterion, n_classes, seeds, max_features, bootstrap=False, n_draws=None,
         balanced_subsample=False, threads, bin_seed=None) -> Forest:
    """Bin X (rows with weight > 0) and grow one tree per seed; returns the Forest."""
    if bin_seed is None:
        bin_seed = int(seeds[0]) ^ 0x9E3779B9 if len(seeds) else 0
    codes, edges = bin_data(X, weight, est.max_bins, bin_seed)
    split, leaf = resolve_sizes(est, X.shape[0])
    grown = ops.tree_grow_forest(
        codes, y_enc, weight, seeds, criterion=criterion, n_classes=n_classes, max_depth=est.max_depth,
        min_samples_split=split, min_samples_leaf=leaf, min_weight_fraction_leaf=est.min_weight_fraction_leaf,
        min_impurity_decrease=est.min_impurity_decrease, max_features=max_features,
        max_leaf_nodes=est.max_leaf_nodes, bootstrap=bootstrap, n_draws=n_draws,
        balanced_subsample=balanced_subsample, threads=threads, monotonic_cst=monotonic_for(est, X.shape[1]),
        random_split=getattr(est, "splitter", "best") == "random")
    return Forest(grown, edges, X.shape[1], 1 if np.ndim(y_enc) == 1 else np.shape(y_enc)[1])


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
