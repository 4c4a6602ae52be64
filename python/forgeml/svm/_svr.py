"""SVR, NuSVR and OneClassSVM (scikit-learn's API) on forgeml's SMO core."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import OutlierMixin, RegressorMixin, _fit_context
from sklearn.utils._param_validation import Interval

from . import _kernels, _svc_cuda
from ._single import _Regressor, _SingleDualSVM, nu_regression_dual, one_class_dual, regression_dual

__all__ = ["SVR", "NuSVR", "OneClassSVM"]


def _init_kernel(est, kernel, degree, gamma, coef0, tol, shrinking, cache_size, verbose, max_iter):
    est.kernel = kernel
    est.degree = degree
    est.gamma = gamma
    est.coef0 = coef0
    est.tol = tol
    est.shrinking = shrinking
    est.cache_size = cache_size
    est.verbose = verbose
    est.max_iter = max_iter


class SVR(_Regressor, RegressorMixin, _SingleDualSVM):
    """Epsilon-Support Vector Regression (scikit-learn's ``sklearn.svm.SVR`` API).

    libsvm's formulation (2 n dual variables, one kernel row serving both halves) solved by
    forgeml's SMO: second-order working-set selection, shrinking, the kernel-row cache."""

    _parameter_constraints: dict = {
        **_kernels.KERNEL_PARAMS,
        "C": [Interval(Real, 0.0, None, closed="right")],
        "epsilon": [Interval(Real, 0.0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        kernel="rbf",
        degree=3,
        gamma="scale",
        coef0=0.0,
        tol=1e-3,
        C=1.0,
        epsilon=0.1,
        shrinking=True,
        cache_size=200,
        verbose=False,
        max_iter=-1,
    ):
        _init_kernel(self, kernel, degree, gamma, coef0, tol, shrinking, cache_size, verbose, max_iter)
        self.C = C
        self.epsilon = epsilon

    def _dual(self, y, sw):
        return regression_dual(y, float(self.C) * sw, float(self.epsilon))

    def _coef(self, alpha, rho, r, n):
        return alpha[:n] - alpha[n:], rho

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features) (or a precomputed Gram matrix) and targets y."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        return self._fit(X, y, sample_weight)


class NuSVR(_Regressor, RegressorMixin, _SingleDualSVM):
    """Nu Support Vector Regression (scikit-learn's ``sklearn.svm.NuSVR`` API): nu bounds the
    fraction of support vectors; epsilon comes out of the solve (libsvm's nu solver)."""

    _parameter_constraints: dict = {
        **_kernels.KERNEL_PARAMS,
        "C": [Interval(Real, 0.0, None, closed="right")],
        "nu": [Interval(Real, 0.0, 1.0, closed="right")],
    }

    def __init__(
        self,
        *,
        nu=0.5,
        C=1.0,
        kernel="rbf",
        degree=3,
        gamma="scale",
        coef0=0.0,
        shrinking=True,
        tol=1e-3,
        cache_size=200,
        verbose=False,
        max_iter=-1,
    ):
        _init_kernel(self, kernel, degree, gamma, coef0, tol, shrinking, cache_size, verbose, max_iter)
        self.nu = nu
        self.C = C

    def _dual(self, y, sw):
        return nu_regression_dual(y, float(self.C) * sw, float(self.nu))

    def _coef(self, alpha, rho, r, n):
        return alpha[:n] - alpha[n:], rho

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features) (or a precomputed Gram matrix) and targets y."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        return self._fit(X, y, sample_weight)


class OneClassSVM(OutlierMixin, _SingleDualSVM):
    """Unsupervised outlier detection (scikit-learn's ``sklearn.svm.OneClassSVM`` API): libsvm's
    one-class dual (sum alpha = nu n, 0 <= alpha <= 1) on forgeml's SMO."""

    _parameter_constraints: dict = {
        **_kernels.KERNEL_PARAMS,
        "nu": [Interval(Real, 0.0, 1.0, closed="right")],
    }

    def __init__(
        self,
        *,
        kernel="rbf",
        degree=3,
        gamma="scale",
        coef0=0.0,
        tol=1e-3,
        nu=0.5,
        shrinking=True,
        cache_size=200,
        verbose=False,
        max_iter=-1,
    ):
        _init_kernel(self, kernel, degree, gamma, coef0, tol, shrinking, cache_size, verbose, max_iter)
        self.nu = nu

    def _dual(self, y, sw):
        return one_class_dual(sw, float(self.nu))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Learn the support of X (n_samples, n_features); y is ignored."""
        self._fit(X, None, sample_weight)
        self.offset_ = -self.intercept_
        return self

    @_svc_cuda.cupy_out
    def decision_function(self, X):
        """Signed distance to the separating hyperplane (n_samples,): > 0 for inliers."""
        return self._decision(X)

    @_svc_cuda.cupy_out
    def score_samples(self, X):
        """Raw scoring function of the samples: decision_function(X) + offset_."""
        return self._decision(X) + self.offset_[0]

    @_svc_cuda.cupy_out
    def predict(self, X):
        """+1 for inliers, -1 for outliers."""
        dec = self._decision(X)
        return np.where(dec > 0, 1, -1).astype(np.intp)
