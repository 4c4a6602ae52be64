"""What the kernel SVMs share: input validation for fit and predict (dense, CSR, precomputed, callable
kernels), the matrix handed to the SMO solver, kernel values against the support vectors, gamma.

scikit-learn's rules: a callable kernel is evaluated on the raw input (which may be any sequence)
and the model is trained on that Gram matrix; a sparse fit keeps support_vectors_ sparse; a model
fitted on dense data refuses sparse input at predict; kernel="precomputed" refuses sparse input."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import _num_samples, check_consistent_length, validate_data


BLOCK_ROWS = 4096  # test rows per kernel block at prediction (bounds memory)

KERNEL_PARAMS = {
    "kernel": [StrOptions({"linear", "poly", "rbf", "sigmoid", "precomputed"}), callable],
    "degree": [Interval(Integral, 0, None, closed="left")],
    "gamma": [StrOptions({"scale", "auto"}), Interval(Real, 0.0, None, closed="left")],
    "coef0": [Interval(Real, None, None, closed="neither")],
    "shrinking": ["boolean"],
    "tol": [Interval(Real, 0.0, None, closed="neither")],
    "cache_size": [Interval(Real, 0, None, closed="neither")],
    "verbose": ["verbose"],
    "max_iter": [Interval(Integral, -1, None, closed="left")],
}


def validate_fit(est, X, y=None, *, y_numeric=False):
    """(X, y) as the solver needs them; records est._sparse and est._Xfit (callable kernels)."""
    if callable(est.kernel):
        if y is not None:
            check_consistent_length(X, y)
            y = np.asarray(y)
            if y_numeric:
                y = y.astype(np.float64)
        est._sparse = False
        est._Xfit = X
        est.n_features_in_ = np.asarray(X).shape[1] if np.asarray(X).ndim == 2 else 1
        return X, y
    if est.kernel == "precomputed" and sp.issparse(X):
        raise TypeError("Sparse precomputed kernels are not supported.")
    kw = dict(accept_sparse="csr", dtype=np.float64, order="C", accept_large_sparse=False)
    if y is None:
        X = validate_data(est, X, **kw)
    else:
        X, y = validate_data(est, X, y, y_numeric=y_numeric, **kw)
    if sp.issparse(X):
        X = X.tocsr()
        X.sort_indices()
    est._sparse = sp.issparse(X)
    if est.kernel == "precomputed" and X.shape[0] != X.shape[1]:
        raise ValueError(f"Precomputed matrix must be a square matrix. Input is a {X.shape[0]}x{X.shape[1]} matrix.")
    return X, y


def sample_weights(sample_weight, n):
    """(n,) float64 weights; libsvm's rule that samples of weight <= 0 are dropped is the caller's."""
    if sample_weight is None:
        return np.ones(n)
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.ndim == 0:
        return np.full(n, float(sw))
    if sw.shape != (n,):
        raise ValueError(f"sample_weight.shape == {sw.shape}, expected ({n},)!")
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight: expected finite values")
    return sw


def check_finite_model(dual_coef, intercept):
    if not (np.all(np.isfinite(dual_coef)) and np.all(np.isfinite(intercept))):
        raise ValueError(
            "The dual coefficients or intercepts are not finite. The input data may contain large "
            "values and need to be preprocessed."
        )


def solver_input(est, X):
    """(matrix, kernel name) for the SMO solver: float32 rows (CSR for sparse X), or a Gram matrix
    for precomputed and callable kernels."""
    if callable(est.kernel):
        K = _dense64(est.kernel(X, X))
        n = _num_samples(X)
        if K.shape != (n, n):
            raise ValueError(f"The kernel function must return a ({n}, {n}) matrix, got {K.shape}")
        M = np.ascontiguousarray(K, dtype=np.float32)
        if not np.all(np.isfinite(M)):
            check_finite_model(np.array([np.inf]), 0.0)
        return M, "precomputed"
    X = X if not sp.issparse(X) or _sparse_rows_pay(X) else X.toarray()
    M = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.ascontiguousarray(X, dtype=np.float32)
    if not np.all(np.isfinite(M.data if sp.issparse(M) else M)):  # finite float64 beyond float32's range
        check_finite_model(np.array([np.inf]), 0.0)
    return M, est.kernel


def _sparse_rows_pay(X):
    """Whether the solver keeps X sparse: its kernel rows then cost the nonzeros instead of n * d
    (float64 sums over the nonzeros against float32 GEMV rows). Small or dense-ish matrices go
    dense: as fast there, and their fit is the dense fit's, bit for bit."""
    n, d = X.shape
    return n * d >= 1 << 20 and X.nnz <= 0.1 * n * d


def rows32(M):
    """Rows of a solver_input matrix as the solvers take them (float32; CSR or C-contiguous)."""
    return sp.csr_matrix(M, dtype=np.float32) if sp.issparse(M) else np.ascontiguousarray(M, dtype=np.float32)


def _dense64(K):
    return K.toarray() if sp.issparse(K) else np.asarray(K, dtype=np.float64)


def resolve_gamma(est, X):
    if est.kernel == "precomputed" or callable(est.kernel):
        return 0.0
    if est.gamma == "scale":
        var = (X.multiply(X)).mean() - X.mean() ** 2 if sp.issparse(X) else X.var()
        return 1.0 / (X.shape[1] * var) if var != 0 else 1.0
    if est.gamma == "auto":
        return 1.0 / X.shape[1]
    return float(est.gamma)


def store_support(est, X, support):
    """support_vectors_ (sparse after a sparse fit; empty for precomputed and callable kernels) and
    the float32 copy the kernel rows use."""
    if est.kernel == "precomputed" or callable(est.kernel):
        est.support_vectors_ = np.empty((0, 0), dtype=np.float64)
        est._sv32 = None
        return
    est.support_vectors_ = X[support]
    if sp.issparse(est.support_vectors_):
        est.support_vectors_ = sp.csr_matrix(est.support_vectors_)
    sv = est.support_vectors_
    est._sv32 = np.ascontiguousarray(sv.toarray() if sp.issparse(sv) else sv, dtype=np.float32)


def validate_predict(est, X):
    if callable(est.kernel):
        return X
    X = validate_data(est, X, accept_sparse="csr", dtype=np.float64, order="C", reset=False, accept_large_sparse=False)
    if sp.issparse(X) and not est._sparse and est.kernel != "precomputed":
        raise ValueError(f"cannot use sparse input in {type(est).__name__!r} trained on dense data")
    if est.kernel == "precomputed":
        if sp.issparse(X):
            raise TypeError("Sparse precomputed kernels are not supported.")
        if X.shape[1] != est.shape_fit_[0]:
            raise ValueError(
                f"X.shape[1] = {X.shape[1]} should be equal to {est.shape_fit_[0]}, "
                "the number of samples at training time"
            )
    return X


def kernel_blocks(est, X, support):
    """Yields (rows slice, K(X[rows], support vectors) float64). Prediction kernels are float64
    (one float64 GEMM per block), so decision_function equals X @ coef_ + intercept_ for a linear
    kernel and the decision values follow the float64 model, as libsvm's do."""
    if callable(est.kernel):
        K = _dense64(est.kernel(X, est._Xfit))
        yield slice(0, K.shape[0]), K[:, support]
        return
    n = X.shape[0]
    if est.kernel == "precomputed":
        yield slice(0, n), np.asarray(X[:, support], dtype=np.float64)
        return
    sv = est.support_vectors_
    for s in range(0, n, BLOCK_ROWS):
        rows = slice(s, min(n, s + BLOCK_ROWS))
        Xb = X[rows]
        K = np.asarray(safe_sparse_dot(Xb, sv.T, dense_output=True), dtype=np.float64)
        yield rows, _apply(est, K, Xb, sv)


def _sq_norms(A):
    return np.asarray(A.multiply(A).sum(axis=1)).ravel() if sp.issparse(A) else np.einsum("ij,ij->i", A, A)


def _apply(est, K, Xb, sv):
    """The kernel function on the float64 dot products K = Xb @ sv.T, in place."""
    g, c0 = est._gamma, est.coef0
    if est.kernel == "poly":
        K *= g
        K += c0
        return K**est.degree
    if est.kernel == "sigmoid":
        K *= g
        K += c0
        return np.tanh(K, out=K)
    if est.kernel == "rbf":
        K *= -2.0
        K += _sq_norms(Xb)[:, None]
        K += _sq_norms(sv)[None, :]
        np.maximum(K, 0.0, out=K)
        K *= -g
        return np.exp(K, out=K)
    return K


def read_only(a):
    """A read-only view (coef_ is computed from the dual, so writing to it would be lost)."""
    if sp.issparse(a):
        a.data.flags.writeable = False
        return a
    a = np.asarray(a).view()
    a.flags.writeable = False
    return a


def linear_coef(dual_coef, support_vectors, sparse):
    """coef_ of a linear kernel: dual_coef_ @ support_vectors_ (sparse after a sparse fit)."""
    if sparse:
        return read_only(sp.csr_matrix(sp.csr_matrix(dual_coef) @ support_vectors))
    return read_only(np.asarray(dual_coef @ support_vectors))
