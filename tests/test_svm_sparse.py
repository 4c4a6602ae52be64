"""Sparse kernel rows for the SMO solvers: CSR X trains on its nonzeros (float64 dot products)
and gives the dense fit's model up to float32 rounding; libsvm (scikit-learn) is the reference."""

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.svm as sk

from forgeml import ops
from forgeml import svm as fm


def _sparse_problem(n, d, density, seed):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float64)
    X.data = rng.standard_normal(X.nnz)
    w = rng.standard_normal(d)
    y = (X @ w + 0.1 * rng.standard_normal(n) > 0).astype(np.int64)
    return X, y


def _decision(X, Xtr, coef, rho, kernel, gamma, coef0=0.5, degree=3):
    """float64 reference decision function of one pair."""
    dots = (X @ Xtr.T).toarray() if sp.issparse(X) else X @ Xtr.T
    if kernel == "linear":
        K = dots
    elif kernel == "poly":
        K = (gamma * dots + coef0) ** degree
    elif kernel == "sigmoid":
        K = np.tanh(gamma * dots + coef0)
    else:
        n1 = np.asarray(X.multiply(X).sum(1)).ravel()
        n2 = np.asarray(Xtr.multiply(Xtr).sum(1)).ravel()
        K = np.exp(-gamma * np.maximum(n1[:, None] + n2[None, :] - 2 * dots, 0))
    return K @ coef - rho


@pytest.mark.parametrize("kernel", ["linear", "poly", "rbf", "sigmoid"])
def test_fit_ovo_sparse_matches_dense_and_libsvm(kernel):
    X, y = _sparse_problem(157, 211, 0.05, seed=1)
    X = X.astype(np.float32).astype(np.float64)  # the values both paths see
    members = [np.flatnonzero(y == 0), np.flatnonzero(y == 1)]
    C = np.ones(X.shape[0])
    gamma = 0.05
    kw = dict(gamma=gamma, coef0=0.5, degree=3, tol=1e-4)
    ((cs, rs, _, ok_s),) = ops.svm_fit_ovo(X, members, C, kernel, **kw)
    ((cd, rd, _, ok_d),) = ops.svm_fit_ovo(X.toarray().astype(np.float32), members, C, kernel, **kw)
    assert ok_s and ok_d
    order = np.concatenate(members)
    Xp = X[order]
    dec_s = _decision(X, Xp, cs, rs, kernel, gamma)
    dec_d = _decision(X, Xp, cd, rd, kernel, gamma)
    scale = np.abs(dec_d).max()
    np.testing.assert_allclose(dec_s, dec_d, atol=2e-3 * scale)
    # libsvm on the same binary problem (class 0 is +1 here, libsvm's first class is -1 in sklearn)
    ref = sk.SVC(kernel=kernel, gamma=gamma, coef0=0.5, degree=3, tol=1e-4).fit(X, y)
    np.testing.assert_allclose(dec_s, -ref.decision_function(X), atol=2e-3 * scale)


def test_svm_solve_regression_form_sparse_matches_dense():
    X, _ = _sparse_problem(133, 97, 0.08, seed=2)
    X = X.astype(np.float32).astype(np.float64)
    rng = np.random.default_rng(3)
    t = rng.standard_normal(X.shape[0])
    n, eps = X.shape[0], 0.1
    y = np.r_[np.ones(n), -np.ones(n)]
    p = np.r_[eps - t, eps + t]
    C = np.ones(2 * n)
    a0 = np.zeros(2 * n)
    out_s = ops.svm_solve(X, y, p, C, a0, "rbf", gamma=0.1, tol=1e-5)
    out_d = ops.svm_solve(X.toarray().astype(np.float32), y, p, C, a0, "rbf", gamma=0.1, tol=1e-5)
    coef_s = out_s[0][:n] - out_s[0][n:]
    coef_d = out_d[0][:n] - out_d[0][n:]
    dec_s = _decision(X, X, coef_s, out_s[1], "rbf", 0.1)
    dec_d = _decision(X, X, coef_d, out_d[1], "rbf", 0.1)
    np.testing.assert_allclose(dec_s, dec_d, atol=1e-3)
    assert out_s[5] and out_d[5]


@pytest.mark.parametrize("name", ["SVC", "NuSVC", "SVR", "OneClassSVM"])
def test_estimators_keep_large_sparse_input_sparse(name):
    """1100 x 1000 at 1% density: past the size where the estimators keep X sparse."""
    X, y = _sparse_problem(1100, 1000, 0.01, seed=4)
    assert fm._kernels._sparse_rows_pay(X)
    kw = {"nu": 0.3} if name in ("NuSVC", "OneClassSVM") else {}
    args = (X,) if name == "OneClassSVM" else (X, y.astype(np.float64) if name == "SVR" else y)
    ours = getattr(fm, name)(**kw).fit(*args)
    ref = getattr(sk, name)(**kw).fit(*args)
    assert sp.issparse(ours.support_vectors_)
    dec = ours.predict(X) if name == "SVR" else ours.decision_function(X)
    dref = ref.predict(X) if name == "SVR" else ref.decision_function(X)
    np.testing.assert_allclose(dec, dref, atol=2e-3 * max(1.0, np.abs(dref).max()))


def test_small_sparse_input_fits_exactly_like_dense():
    X, y = _sparse_problem(60, 40, 0.2, seed=5)
    assert not fm._kernels._sparse_rows_pay(X)
    a = fm.SVC().fit(X, y)
    b = fm.SVC().fit(X.toarray(), y)
    np.testing.assert_array_equal(a.dual_coef_.toarray(), b.dual_coef_)


def test_sparse_precomputed_is_refused():
    X, y = _sparse_problem(30, 30, 0.2, seed=6)
    with pytest.raises(TypeError, match="precomputed"):
        ops.svm_fit_ovo(X, [np.flatnonzero(y == 0), np.flatnonzero(y == 1)], np.ones(30), "precomputed")
