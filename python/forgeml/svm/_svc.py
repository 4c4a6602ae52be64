"""SVC: kernel support vector classification on forgeml's SMO, answers as scikit-learn's SVC.

Training is one binary SMO problem per pair of classes (libsvm's one-vs-one), run in parallel;
the fitted attributes follow libsvm's layout (support vectors grouped by class), so
``dual_coef_``, ``intercept_``, ``support_`` and the decision rule match scikit-learn's."""
from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state, compute_class_weight
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils._available_if import available_if
from sklearn.utils.multiclass import _ovr_decision_function, check_classification_targets
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import _num_samples, check_is_fitted

from ..ops.device import is_cupy
from ..ops import svm as ops
from ..ops._validate import check_csr
from . import _kernels, _platt, _svc_cuda

__all__ = ["SVC"]


class SVC(ClassifierMixin, BaseEstimator):
    """C-Support Vector Classification (scikit-learn's ``sklearn.svm.SVC`` API).

    SMO with second-order working-set selection and shrinking (the libsvm algorithm), kernel rows
    from forgeml's SGEMM kept in an LRU cache of ``cache_size`` MB, gradients in float64, and the
    one-vs-one sub-problems trained in parallel. Kernels are evaluated in float32.

    CuPy X trains on the GPU (forgeml's CUDA working-set SMO, one pair of classes at a time) and
    keeps the fitted attributes as NumPy arrays; decision_function / predict / predict_proba on
    CuPy X compute the kernel blocks on the GPU and return CuPy arrays. Without a usable GPU a
    CuPy X raises a RuntimeError that says why.

    ``probability=True`` fits Platt scaling on 5-fold cross-validated decision values as libsvm
    does (kept for old code; ``CalibratedClassifierCV(SVC())`` works as well). ``verbose`` is
    accepted and ignored. A callable kernel is evaluated on the input (any sequence it accepts)
    and trained on as a precomputed Gram matrix, as scikit-learn does. Sparse X stays sparse in
    ``support_vectors_``, ``dual_coef_`` and ``coef_``; linear-kernel decision values are computed
    in float64, so they equal ``X @ coef_.T + intercept_``.
    """

    _parameter_constraints: dict = {
        **_kernels.KERNEL_PARAMS,
        "C": [Interval(Real, 0.0, None, closed="right")],
        "probability": ["boolean"],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "decision_function_shape": [StrOptions({"ovr", "ovo"})],
        "break_ties": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, *, C=1.0, kernel="rbf", degree=3, gamma="scale", coef0=0.0, shrinking=True,
                 probability=False, tol=1e-3, cache_size=200, class_weight=None, verbose=False, max_iter=-1,
                 decision_function_shape="ovr", break_ties=False, random_state=None):
        self.C = C
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.shrinking = shrinking
        self.probability = probability
        self.tol = tol
        self.cache_size = cache_size
        self.class_weight = class_weight
        self.verbose = verbose
        self.max_iter = max_iter
        self.decision_function_shape = decision_function_shape
        self.break_ties = break_ties
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = self.kernel != "precomputed"
        tags.input_tags.pairwise = self.kernel == "precomputed"
        return tags

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model on X (n_samples, n_features) (or a precomputed (n, n) Gram matrix) and y."""
        if is_cupy(X):
            return _svc_cuda.fit(self, X, y, sample_weight)
        if sp.issparse(X) and X.format == "csr":
            check_csr(X)  # before SciPy's own conversions follow a broken indptr
        X, y = _kernels.validate_fit(self, X, y)
        check_classification_targets(y)
        n = _num_samples(X)
        sw = _kernels.sample_weights(sample_weight, n)
        keep, members, Ck = self._classes_and_costs(y, sw)
        M, self._solver_kernel = _kernels.solver_input(self, X)
        Xk = M[np.ix_(keep, keep)] if self._solver_kernel == "precomputed" else M[keep]
        self._gamma = self._resolve_gamma(X)
        pairs = self._solve_pairs(_kernels.rows32(Xk) if sp.issparse(Xk) else np.ascontiguousarray(Xk), members, Ck)
        for coef, rho, *_ in pairs:
            _kernels.check_finite_model(coef, rho)
        self._store_model(X, keep, members, pairs)
        self._warn_unconverged(pairs)
        self.probA_ = np.empty(0)
        self.probB_ = np.empty(0)
        if self.probability:
            self._fit_platt(Xk, members, Ck)
        return self

    def _resolve_gamma(self, X):
        return _kernels.resolve_gamma(self, X)

    def _solve_pairs(self, Xk, members, Ck):
        """One binary C-SVC per pair of classes (see ops.svm_fit_ovo)."""
        return ops.svm_fit_ovo(_kernels.rows32(Xk), members, Ck, getattr(self, "_solver_kernel", self.kernel),
                               gamma=self._gamma, coef0=self.coef0, degree=self.degree, tol=self.tol,
                               shrinking=self.shrinking, cache_size=self.cache_size, max_iter=self.max_iter)

    def _store_model(self, X, keep, members, pairs):
        """libsvm's model layout from the per-pair solutions."""
        k = len(members)
        nonzero = np.zeros(keep.size, dtype=bool)
        for (a, b), (coef, *_rest) in zip(self._pairs(k), pairs):
            idx = np.concatenate([members[a], members[b]])
            nonzero[idx[coef != 0]] = True
        sv_by_class = [m[nonzero[m]] for m in members]
        sv = np.concatenate(sv_by_class)  # positions in the kept samples, grouped by class
        pos = np.full(keep.size, -1, dtype=np.int64)
        pos[sv] = np.arange(sv.size)
        dual = np.zeros((k - 1, sv.size))
        W = np.zeros((sv.size, len(pairs)))  # per-pair coefficients over all SVs
        rho = np.empty(len(pairs))
        for p, ((a, b), (coef, r, _it, _ok)) in enumerate(zip(self._pairs(k), pairs)):
            na = members[a].size
            ca, cb = coef[:na], coef[na:]
            ia, ib = members[a][ca != 0], members[b][cb != 0]
            dual[b - 1, pos[ia]] = ca[ca != 0]
            dual[a, pos[ib]] = cb[cb != 0]
            W[pos[ia], p] = ca[ca != 0]
            W[pos[ib], p] = cb[cb != 0]
            rho[p] = r
        self.support_ = keep[sv].astype(np.int32)
        self.n_support_ = np.array([s.size for s in sv_by_class], dtype=np.int32)
        self._sparse = sp.issparse(X)
        _kernels.store_support(self, X, self.support_)
        self._W = W
        self._rho = rho
        self.n_iter_ = np.array([p[2] for p in pairs], dtype=np.int32)
        self.fit_status_ = 0
        self.shape_fit_ = X.shape if hasattr(X, "shape") else (_num_samples(X),)
        if k == 2:  # scikit-learn flips the binary model so that > 0 means classes_[1]
            self.dual_coef_ = -dual
            self.intercept_ = rho.copy()
        else:
            self.dual_coef_ = dual
            self.intercept_ = -rho
        if self._sparse:
            self.dual_coef_ = sp.csr_matrix(self.dual_coef_)

    @staticmethod
    def _pairs(k):
        return [(a, b) for a in range(k) for b in range(a + 1, k)]

    # ------------------------------------------------------------------ probability (Platt)
    def _fit_platt(self, Xk, members, Ck):
        rng = check_random_state(self.random_state)
        k = len(members)
        A, B = np.empty(k * (k - 1) // 2), np.empty(k * (k - 1) // 2)
        for p, (a, b) in enumerate(self._pairs(k)):
            idx = np.concatenate([members[a], members[b]])
            lab = np.r_[np.ones(members[a].size), -np.ones(members[b].size)]
            dec = self._cv_decision(Xk, idx, lab, Ck, rng)
            A[p], B[p] = _platt.sigmoid_train(dec, lab)
        self.probA_, self.probB_ = A, B

    def _cv_decision(self, Xk, idx, lab, Ck, rng, folds=5):
        """Decision values of each sample from a model trained without its fold (libsvm's CV)."""
        n = idx.size
        perm = rng.permutation(n)
        dec = np.empty(n)
        for f in range(folds):
            test = perm[f * n // folds:(f + 1) * n // folds]
            train = np.concatenate([perm[:f * n // folds], perm[(f + 1) * n // folds:]])
            pos, neg = train[lab[train] > 0], train[lab[train] < 0]
            if pos.size == 0 or neg.size == 0:
                dec[test] = 1.0 if neg.size == 0 else -1.0
                continue
            tr = np.concatenate([np.sort(pos), np.sort(neg)])
            g = idx[tr]
            pre = getattr(self, "_solver_kernel", self.kernel) == "precomputed"
            Xtr = Xk[np.ix_(g, g)] if pre else Xk[g]
            m = [np.arange(pos.size), np.arange(pos.size, tr.size)]
            coef, rho, _, _ = self._solve_pairs(Xtr, m, Ck[g])[0]
            if pre:
                K = Xk[np.ix_(idx[test], g)]
            else:  # against the fold's support vectors only
                sv = np.flatnonzero(coef)
                K = ops.svm_kernel(_dense32(Xk[idx[test]]), _dense32(Xtr[sv]), self.kernel, gamma=self._gamma,
                                   coef0=self.coef0, degree=self.degree)
                coef = coef[sv]
            dec[test] = K.astype(np.float64) @ coef - rho
        return dec

    def _check_proba(self):
        if not self.probability:
            raise AttributeError("predict_proba is not available when probability=False")
        return True

    @available_if(_check_proba)
    @_svc_cuda.cupy_out
    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes) by Platt scaling and pairwise coupling."""
        check_is_fitted(self)
        if self.probA_.size == 0:
            raise NotFittedError("predict_proba is not available when fitted with probability=False")
        dec = self._pair_decision(X)
        k = len(self.classes_)
        r = np.zeros((dec.shape[0], k, k))
        for p, (a, b) in enumerate(self._pairs(k)):
            v = np.clip(_platt.sigmoid_predict(dec[:, p], self.probA_[p], self.probB_[p]), 1e-7, 1 - 1e-7)
            r[:, a, b] = v
            r[:, b, a] = 1 - v
        return _platt.couple(r)

    @available_if(_check_proba)
    def predict_log_proba(self, X):
        return np.log(self.predict_proba(X))

    # ------------------------------------------------------------------ prediction
    def _classes_and_costs(self, y, sw):
        """Sets classes_ and class_weight_; returns the kept samples (libsvm drops those of zero
        weight), each class's members among them and their costs C * class weight * sample weight."""
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"The number of classes has to be greater than one; got {len(self.classes_)} class")
        self.class_weight_ = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        keep = np.flatnonzero(sw > 0)
        if keep.size == 0:
            raise ValueError("Invalid input - all samples have zero or negative weights.")
        yk = y_enc[keep]
        members = [np.flatnonzero(yk == c) for c in range(len(self.classes_))]
        if sum(m.size > 0 for m in members) < 2:
            raise ValueError(self._one_class_left_message())
        return keep, members, self._cost_scale() * self.class_weight_[yk] * sw[keep]

    def _cost_scale(self):
        return float(self.C)

    def _one_class_left_message(self):
        return "Invalid input - all samples with positive weights belong to the same class."

    def _warn_unconverged(self, pairs):
        if not all(p[3] for p in pairs):
            self.fit_status_ = 1
            warnings.warn(f"Solver terminated early (max_iter={self.max_iter}).  Consider pre-processing "
                          "your data with StandardScaler or MinMaxScaler.", ConvergenceWarning)

    def _pair_decision(self, X):
        """libsvm's decision values (n, n_pairs): > 0 votes for the first class of the pair."""
        check_is_fitted(self)
        if is_cupy(X):
            return _svc_cuda.pair_decision(self, X)
        X = _kernels.validate_predict(self, X)
        out = np.empty((_num_samples(X), self._W.shape[1]))
        for rows, K in _kernels.kernel_blocks(self, X, self.support_):
            out[rows] = K @ self._W - self._rho
        return out

    @_svc_cuda.cupy_out
    def decision_function(self, X):
        """(n_samples,) for two classes (> 0 means classes_[1]); otherwise (n_samples, n_classes)
        with decision_function_shape='ovr' or (n_samples, n_classes * (n_classes - 1) / 2) with 'ovo'."""
        check_is_fitted(self)
        dec = self._pair_decision(X)
        k = len(self.classes_)
        if k == 2:
            return -dec[:, 0]
        if self.decision_function_shape == "ovr":
            return _ovr_decision_function(dec < 0, -dec, k)
        return dec

    @_svc_cuda.cupy_out
    def predict(self, X):
        """Class labels by one-vs-one voting (ties to the lowest class), or by the largest ovr
        decision value with break_ties=True."""
        check_is_fitted(self)
        if self.break_ties and self.decision_function_shape == "ovo":
            raise ValueError("break_ties must be False when decision_function_shape is 'ovo'")
        k = len(self.classes_)
        if self.break_ties and self.decision_function_shape == "ovr" and k > 2:
            return self.classes_[np.argmax(self.decision_function(X), axis=1)]
        dec = self._pair_decision(X)
        votes = np.zeros((dec.shape[0], k), dtype=np.int64)
        for p, (a, b) in enumerate(self._pairs(k)):
            first = dec[:, p] > 0
            votes[first, a] += 1
            votes[~first, b] += 1
        return self.classes_[np.argmax(votes, axis=1)]

    # ------------------------------------------------------------------ linear kernel weights
    @property
    def coef_(self):
        """Primal weights, only for kernel='linear': (1, n_features) or (n_pairs, n_features)."""
        if self.kernel != "linear":
            raise AttributeError("coef_ is only available when using a linear kernel")
        check_is_fitted(self)
        W = self.dual_coef_ if len(self.classes_) == 2 else self._W.T
        return _kernels.linear_coef(W, self.support_vectors_, self._sparse)


def _dense32(X):
    return np.ascontiguousarray(X.toarray() if sp.issparse(X) else X, dtype=np.float32)
