"""LinearSVC: linear support vector classification with scikit-learn's API (liblinear's
formulations: the bias is a regularised extra feature of value intercept_scaling)."""
from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model._base import LinearClassifierMixin, SparseCoefMixin
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, validate_data

from ..ops import svm as ops
from ..ops._validate import check_csr

__all__ = ["LinearSVC"]

# scikit-learn's (liblinear's) valid combinations: loss -> penalty -> dual -> forgeml solver
_SOLVERS = {
    "hinge": {"l2": {True: "dual_hinge"}},
    "squared_hinge": {"l1": {False: "l1_primal_squared_hinge"},
                      "l2": {False: "primal_squared_hinge", True: "dual_squared_hinge"}},
}

_CS_MAX_ITER = 100_000  # liblinear's Solver_MCSVM_CS default, which scikit-learn never overrides


def _solver_type(multi_class, penalty, loss, dual):
    """The solver for a combination, or scikit-learn's ValueError (same wording) when it has none."""
    if multi_class == "crammer_singer":
        return "crammer_singer"
    by_penalty = _SOLVERS.get(loss, {})
    if penalty not in by_penalty:
        error = f"The combination of penalty='{penalty}' and loss='{loss}' is not supported"
    elif bool(dual) not in by_penalty[penalty]:
        error = f"The combination of penalty='{penalty}' and loss='{loss}' are not supported when dual={bool(dual)}"
    else:
        return by_penalty[penalty][bool(dual)]
    raise ValueError(f"Unsupported set of arguments: {error}, Parameters: penalty={penalty!r}, loss={loss!r}, "
                     f"dual={bool(dual)!r}")


class LinearSVC(LinearClassifierMixin, SparseCoefMixin, BaseEstimator):
    """Linear Support Vector Classification (scikit-learn's ``sklearn.svm.LinearSVC`` API).

    loss='squared_hinge' with dual=False (what dual='auto' picks when n_samples >= n_features) is
    solved in the primal by Newton-CG; dual=True runs liblinear's dual coordinate descent (hinge or
    squared hinge); penalty='l1' (squared hinge, primal only) runs liblinear's coordinate descent
    over features; multi_class='crammer_singer' runs liblinear's sequential dual method on the joint
    problem (loss, penalty and dual are then ignored, as in scikit-learn; like scikit-learn it runs
    up to 100000 passes whatever max_iter is, and warns when it needed max_iter or more).
    One-vs-rest problems run in parallel. Dense or SciPy sparse (CSR) X. ``verbose`` is ignored.
    """

    _parameter_constraints: dict = {
        "penalty": [StrOptions({"l1", "l2"})],
        "loss": [StrOptions({"hinge", "squared_hinge"})],
        "dual": ["boolean", StrOptions({"auto"})],
        "tol": [Interval(Real, 0.0, None, closed="neither")],
        "C": [Interval(Real, 0.0, None, closed="neither")],
        "multi_class": [StrOptions({"ovr", "crammer_singer"})],
        "fit_intercept": ["boolean"],
        "intercept_scaling": [Interval(Real, 0, None, closed="neither")],
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, penalty="l2", loss="squared_hinge", *, dual="auto", tol=1e-4, C=1.0, multi_class="ovr",
                 fit_intercept=True, intercept_scaling=1, class_weight=None, verbose=0, random_state=None,
                 max_iter=1000):
        self.penalty = penalty
        self.loss = loss
        self.dual = dual
        self.tol = tol
        self.C = C
        self.multi_class = multi_class
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.class_weight = class_weight
        self.verbose = verbose
        self.random_state = random_state
        self.max_iter = max_iter

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _solver(self, n_samples, n_features):
        dual = self.dual
        if dual == "auto":  # scikit-learn's rule: dual when n_samples < n_features, if the combination has one
            prefer = n_samples < n_features
            try:
                _solver_type(self.multi_class, self.penalty, self.loss, prefer)
                dual = prefer
            except ValueError:
                dual = not prefer
        return _solver_type(self.multi_class, self.penalty, self.loss, dual)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features), dense or sparse, and y; sample_weight scales C per sample."""
        if sp.issparse(X) and X.format == "csr":
            check_csr(X)  # before SciPy's own conversions follow a broken indptr
        X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64, order="C",
                             accept_large_sparse=False)
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("This solver needs samples of at least 2 classes in the data, but the data "
                             f"contains only one class: {self.classes_[0]!r}")
        solver = self._solver(*X.shape)
        cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y, sample_weight=sample_weight)
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        keep = np.flatnonzero(sw > 0)
        if keep.size < X.shape[0]:
            X, y_enc, sw = X[keep], y_enc[keep], sw[keep]
        k = len(self.classes_)
        bias = float(self.intercept_scaling) if self.fit_intercept else -1.0
        seed = check_random_state(self.random_state).randint(np.iinfo("i").max)
        Xs = X.astype(np.float32) if sp.issparse(X) else np.ascontiguousarray(X, dtype=np.float32)
        if solver == "crammer_singer":
            Cs = float(self.C) * sw * cw[y_enc]
            # scikit-learn's liblinear runs this solver up to its own cap whatever max_iter says, and
            # warns when the count reaches max_iter: do the same, so the answers agree
            W, iters, conv = ops.svm_linear_cs_fit(Xs, y_enc, Cs, k, tol=self.tol, max_iter=_CS_MAX_ITER, bias=bias,
                                                   seed=seed)
            iters, conv = np.array([iters]), np.array([conv and iters < self.max_iter])
        else:
            # liblinear's costs: binary: C * w[class]; one-vs-rest: C * w[k] for class k, plain C for the rest
            positives = [1] if k == 2 else list(range(k))
            Y = np.empty((len(positives), y_enc.size))
            Cs = np.empty_like(Y)
            for q, c in enumerate(positives):
                pos = y_enc == c
                Y[q] = np.where(pos, 1.0, -1.0)
                neg_cost = cw[0] if k == 2 else 1.0
                Cs[q] = float(self.C) * sw * np.where(pos, cw[c], neg_cost)
            W, iters, conv = ops.svm_linear_fit(Xs, Y, Cs, solver, tol=self.tol, max_iter=self.max_iter, bias=bias,
                                                seed=seed)
        d = X.shape[1]
        self.coef_ = np.ascontiguousarray(W[:, :d])
        self.intercept_ = float(self.intercept_scaling) * W[:, d] if self.fit_intercept else 0.0
        if solver == "crammer_singer" and k == 2:  # scikit-learn keeps one row: class 1 minus class 0
            self.coef_ = (self.coef_[1] - self.coef_[0]).reshape(1, -1)
            if self.fit_intercept:
                self.intercept_ = np.array([self.intercept_[1] - self.intercept_[0]])
        self.n_iter_ = int(iters.max())
        if not conv.all():
            warnings.warn("Liblinear failed to converge, increase the number of iterations.", ConvergenceWarning)
        return self
