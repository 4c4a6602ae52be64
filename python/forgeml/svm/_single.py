"""The kernel SVMs with one decision function (SVR, NuSVR, OneClassSVM): one libsvm dual solved by
forgeml's SMO core (forgeml.ops.svm_solve), stored in scikit-learn's layout."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import _num_samples, check_is_fitted

from ..ops.device import is_cupy
from ..ops import svm as ops
from . import _kernels, _svc_cuda


class _SingleDualSVM(BaseEstimator):
    """Shared fit/predict plumbing; subclasses build the dual (_dual) from the kept samples."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self.kernel != "precomputed"
        tags.input_tags.pairwise = self.kernel == "precomputed"
        return tags

    def _fit(self, X, y, sample_weight):
        if is_cupy(X):
            return _svc_cuda.fit_single(self, X, y, sample_weight)
        X, y = _kernels.validate_fit(self, X, y, y_numeric=y is not None)
        n = _num_samples(X)
        sw = _kernels.sample_weights(sample_weight, n)
        keep = np.flatnonzero(sw > 0)
        if keep.size == 0:
            raise ValueError("Invalid input - all samples have zero or negative weights.")
        M, kernel = _kernels.solver_input(self, X)
        if kernel == "precomputed":
            M = np.ascontiguousarray(M[np.ix_(keep, keep)])
        else:
            M = _kernels.rows32(M[keep])
        self._gamma = _kernels.resolve_gamma(self, X)
        yk = None if y is None else np.asarray(y, dtype=np.float64)[keep]
        labels, p, C, alpha0, nu = self._dual(yk, sw[keep])
        alpha, rho, r, _obj, it, ok = ops.svm_solve(
            M,
            labels,
            p,
            C,
            alpha0,
            kernel,
            gamma=self._gamma,
            coef0=self.coef0,
            degree=self.degree,
            tol=self.tol,
            shrinking=self.shrinking,
            cache_size=self.cache_size,
            max_iter=self.max_iter,
            nu=nu,
        )
        return self._store_solution(X, n, keep, alpha, rho, r, it, ok)

    def _store_solution(self, X, n, keep, alpha, rho, r, it, ok):
        """scikit-learn's fitted attributes from the dual solution over the kept samples."""
        coef, rho = self._coef(alpha, rho, r, keep.size)
        _kernels.check_finite_model(coef, rho)
        nz = np.flatnonzero(coef != 0)
        self.support_ = keep[nz].astype(np.int32)
        _kernels.store_support(self, X, self.support_)
        dual = coef[nz][None, :]
        self.dual_coef_ = sp.csr_matrix(dual) if self._sparse else dual
        self.intercept_ = np.array([-rho])
        self._n_support = np.array([nz.size, 0], dtype=np.int32)
        self.n_iter_ = int(it)
        self.fit_status_ = 0
        self.shape_fit_ = (n, *np.shape(X)[1:]) if not sp.issparse(X) else X.shape
        if not ok:
            self.fit_status_ = 1
            warnings.warn(
                f"Solver terminated early (max_iter={self.max_iter}).  Consider pre-processing "
                "your data with StandardScaler or MinMaxScaler.",
                ConvergenceWarning,
            )
        return self

    def _coef(self, alpha, rho, r, n):
        return alpha, rho

    @property
    def n_support_(self):
        check_is_fitted(self, "support_")
        return np.array([self._n_support[0]], dtype=np.int32)

    def _decision(self, X):
        check_is_fitted(self, "support_")
        if is_cupy(X):
            return _svc_cuda.single_decision(self, X)
        X = _kernels.validate_predict(self, X)
        out = np.empty(_num_samples(X))
        dual = self.dual_coef_.toarray() if sp.issparse(self.dual_coef_) else np.asarray(self.dual_coef_)
        for rows, K in _kernels.kernel_blocks(self, X, self.support_):
            out[rows] = K @ dual[0] + self.intercept_[0]
        return out

    @property
    def coef_(self):
        """Primal weights (1, n_features), only for kernel='linear' (read-only)."""
        if self.kernel != "linear":
            raise AttributeError("coef_ is only available when using a linear kernel")
        check_is_fitted(self, "support_")
        return _kernels.linear_coef(self.dual_coef_, self.support_vectors_, self._sparse)


class _Regressor:
    @_svc_cuda.cupy_out
    def predict(self, X):
        """Predicted targets (n_samples,)."""
        return self._decision(X)

    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features) (or a precomputed Gram matrix) and targets y."""
        self._validate_params()
        return self._fit(X, y, sample_weight)


def regression_dual(y, C, epsilon):
    """epsilon-SVR as libsvm poses it: 2n variables (a, a*), labels +1/-1, p = eps -+ y."""
    n = y.size
    labels = np.r_[np.ones(n), -np.ones(n)]
    p = np.r_[epsilon - y, epsilon + y]
    return labels, p, np.r_[C, C], np.zeros(2 * n), False


def nu_regression_dual(y, C, nu):
    """nu-SVR: start with C * nu * n / 2 spread over the first pairs (libsvm's solve_nu_svr)."""
    n = y.size
    a = np.zeros(n)
    left = nu * C.sum() / 2
    for i in range(n):
        a[i] = min(left, C[i])
        left -= a[i]
        if left <= 0:
            break
    labels = np.r_[np.ones(n), -np.ones(n)]
    return labels, np.r_[-y, y], np.r_[C, C], np.r_[a, a], True


def one_class_dual(C, nu):
    """One-class: sum a = nu * sum C, start with the first samples at their bound (libsvm)."""
    n = C.size
    a = np.zeros(n)
    left = nu * C.sum()
    for i in range(n):
        a[i] = min(left, C[i])
        left -= a[i]
        if left <= 0:
            break
    return np.ones(n), np.zeros(n), C.copy(), a, False
