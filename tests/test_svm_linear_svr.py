"""LinearSVR against scikit-learn's (liblinear) on the same data: weights, intercept, both losses,
sparse input, sample weights."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import svm as sk
from sklearn.datasets import make_regression

import forgeml.svm as fm


def _data(seed=0):
    X, y = make_regression(173, 9, noise=3.0, random_state=seed)
    return X, y / y.std()


def _primal(m, X, y, C, eps, squared):
    r = np.maximum(np.abs(y - X @ m.coef_ - m.intercept_[0]) - eps, 0.0)
    w2 = m.coef_ @ m.coef_ + m.intercept_[0] ** 2  # the intercept is a regularised weight (scaling 1)
    return 0.5 * w2 + C * np.sum(r**2 if squared else r)


@pytest.mark.parametrize("loss", ["epsilon_insensitive", "squared_epsilon_insensitive"])
@pytest.mark.parametrize("C", [0.05, 3.0])
def test_linear_svr_matches_liblinear(loss, C):
    X, y = _data()
    kw = dict(loss=loss, C=C, epsilon=0.1, tol=1e-7, max_iter=200_000, dual=True, random_state=0)
    a = sk.LinearSVR(**kw).fit(X, y)
    b = fm.LinearSVR(**kw).fit(X, y)
    sq = loss.startswith("squared")
    pa, pb = _primal(a, X, y, C, 0.1, sq), _primal(b, X, y, C, 0.1, sq)
    assert pb <= pa * (1 + 1e-5) + 1e-9  # as good a primal objective as liblinear's
    scale = np.abs(a.coef_).max()
    np.testing.assert_allclose(b.coef_, a.coef_, atol=2e-3 * scale)
    np.testing.assert_allclose(b.intercept_, a.intercept_, atol=2e-3 * max(1.0, abs(a.intercept_[0])))


def test_linear_svr_sparse_equals_dense_and_weights():
    X, y = _data(1)
    X[np.abs(X) < 0.7] = 0
    a = fm.LinearSVR(C=2.0, random_state=0, tol=1e-8, max_iter=50_000).fit(X, y)
    b = fm.LinearSVR(C=2.0, random_state=0, tol=1e-8, max_iter=50_000).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.predict(sp.csr_matrix(X)), a.predict(X), rtol=1e-9, atol=1e-12)
    # an integer weight equals repeating the sample (same dual problem)
    w = np.random.RandomState(0).randint(1, 4, size=X.shape[0])
    c = fm.LinearSVR(C=2.0, random_state=0, tol=1e-9, max_iter=100_000).fit(X, y, sample_weight=w)
    d = fm.LinearSVR(C=2.0, random_state=0, tol=1e-9, max_iter=100_000).fit(np.repeat(X, w, 0), np.repeat(y, w))
    np.testing.assert_allclose(c.coef_, d.coef_, atol=1e-4 * np.abs(d.coef_).max())


def test_linear_svr_errors_and_warning():
    X, y = _data()
    with pytest.raises(ValueError, match="not supported when dual=False"):
        fm.LinearSVR(dual=False).fit(X, y)
    with pytest.warns(Warning, match="failed to converge"):
        fm.LinearSVR(C=100.0, max_iter=2, tol=1e-12).fit(X, y)
