"""LinearSVR (scikit-learn's API): liblinear's L2-regularised SVR dual, solved by forgeml's
coordinate descent (csrc/cpu/svm/linear.cpp)."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearModel
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, validate_data

from ..ops import svm as ops

__all__ = ["LinearSVR"]


class LinearSVR(RegressorMixin, LinearModel, BaseEstimator):
    """Linear Support Vector Regression (scikit-learn's ``sklearn.svm.LinearSVR`` API).

    Both losses ('epsilon_insensitive', 'squared_epsilon_insensitive') are solved in the dual by
    coordinate descent in a random order; ``dual=False`` (squared loss only, as in scikit-learn)
    solves the same dual, whose optimum is the primal's. The intercept is the weight of a constant
    feature of value ``intercept_scaling`` (regularised, as liblinear does). ``verbose`` is ignored."""

    _parameter_constraints: dict = {
        "epsilon": [Real],
        "tol": [Interval(Real, 0.0, None, closed="neither")],
        "C": [Interval(Real, 0.0, None, closed="neither")],
        "loss": [StrOptions({"epsilon_insensitive", "squared_epsilon_insensitive"})],
        "fit_intercept": ["boolean"],
        "intercept_scaling": [Interval(Real, 0, None, closed="neither")],
        "dual": ["boolean", StrOptions({"auto"})],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        epsilon=0.0,
        tol=1e-4,
        C=1.0,
        loss="epsilon_insensitive",
        fit_intercept=True,
        intercept_scaling=1.0,
        dual="auto",
        verbose=0,
        random_state=None,
        max_iter=1000,
    ):
        self.epsilon = epsilon
        self.tol = tol
        self.C = C
        self.loss = loss
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.dual = dual
        self.verbose = verbose
        self.random_state = random_state
        self.max_iter = max_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features), dense or sparse, and targets y; sample_weight scales C."""
        if self.loss == "epsilon_insensitive" and self.dual is False:
            raise ValueError(
                "Unsupported set of arguments: The combination of penalty='l2' and "
                "loss='epsilon_insensitive' are not supported when dual=False, Parameters: "
                "penalty='l2', loss='epsilon_insensitive', dual=False"
            )
        X, y = validate_data(
            self, X, y, accept_sparse="csr", dtype=np.float64, order="C", y_numeric=True, accept_large_sparse=False
        )
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        keep = np.flatnonzero(sw > 0)
        if keep.size < X.shape[0]:
            X, y, sw = X[keep], y[keep], sw[keep]
        bias = float(self.intercept_scaling) if self.fit_intercept else -1.0
        seed = check_random_state(self.random_state).randint(np.iinfo("i").max)
        Xs = X.astype(np.float32) if sp.issparse(X) else np.ascontiguousarray(X, dtype=np.float32)
        w, iters, ok = ops.svm_linear_svr_fit(
            Xs,
            np.asarray(y, dtype=np.float64),
            float(self.C) * sw,
            epsilon=float(self.epsilon),
            squared=self.loss == "squared_epsilon_insensitive",
            tol=self.tol,
            max_iter=self.max_iter,
            bias=bias,
            seed=seed,
        )
        d = X.shape[1]
        self.coef_ = np.ascontiguousarray(w[:d])
        self.intercept_ = np.array([float(self.intercept_scaling) * w[d]]) if self.fit_intercept else np.array([0.0])
        self.n_iter_ = int(iters)
        if not ok:
            warnings.warn("Liblinear failed to converge, increase the number of iterations.", ConvergenceWarning)
        return self
