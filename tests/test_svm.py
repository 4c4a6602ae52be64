"""forgeml.svm against scikit-learn's libsvm/liblinear on its bundled datasets, plus API details."""
import numpy as np
import pytest
from sklearn import svm as sk
from sklearn.datasets import load_breast_cancer, load_digits, load_iris
from sklearn.preprocessing import StandardScaler

from forgeml import ops
from forgeml import svm as fm

KERNELS = ["linear", "rbf", "poly", "sigmoid"]


def _load(name):
    loader = {"iris": load_iris, "breast_cancer": load_breast_cancer, "digits": load_digits}[name]
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module", params=["iris", "breast_cancer", "digits"])
def dataset(request):
    return request.param, *_load(request.param)


@pytest.mark.parametrize("kernel", KERNELS)
def test_svc_matches_sklearn(dataset, kernel):
    name, X, y = dataset
    ref = sk.SVC(kernel=kernel, decision_function_shape="ovo").fit(X, y)
    got = fm.SVC(kernel=kernel, decision_function_shape="ovo").fit(X, y)
    assert got.score(X, y) == pytest.approx(ref.score(X, y), abs=1.5 / len(y))
    shared = np.intersect1d(got.support_, ref.support_).size
    assert shared >= 0.95 * ref.support_.size
    assert abs(got.support_.size - ref.support_.size) <= 0.05 * ref.support_.size
    np.testing.assert_array_equal(got.classes_, ref.classes_)
    assert got.dual_coef_.shape[0] == ref.dual_coef_.shape[0]
    # decision values: float32 kernels vs float64, both within the solver tolerance of the optimum
    d_ref, d_got = ref.decision_function(X), got.decision_function(X)
    scale = np.abs(d_ref).max()
    np.testing.assert_allclose(d_got, d_ref, atol=2e-2 * scale)
    assert np.mean(np.sign(d_got) == np.sign(d_ref)) >= 0.99
    np.testing.assert_allclose(got.intercept_, ref.intercept_, atol=2e-2 * max(1.0, np.abs(ref.intercept_).max()))
    if set(got.support_) == set(ref.support_):
        np.testing.assert_array_equal(got.support_, ref.support_)
        np.testing.assert_array_equal(got.n_support_, ref.n_support_)
        np.testing.assert_allclose(got.dual_coef_, ref.dual_coef_, atol=2e-2 * np.abs(ref.dual_coef_).max())
    assert np.mean(got.predict(X) == ref.predict(X)) >= 0.99


def test_svc_precomputed_matches_rbf():
    X, y = _load("iris")
    rbf = fm.SVC(kernel="rbf", gamma=0.3).fit(X, y)
    K = np.exp(-0.3 * ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1))
    pre = fm.SVC(kernel="precomputed").fit(K, y)
    np.testing.assert_array_equal(pre.support_, rbf.support_)
    np.testing.assert_allclose(pre.decision_function(K), rbf.decision_function(X), atol=1e-3)
    ref = sk.SVC(kernel="precomputed").fit(K, y)
    np.testing.assert_array_equal(pre.predict(K[:40]), ref.predict(K[:40]))
    with pytest.raises(ValueError, match="150"):
        pre.predict(K[:, :20])
    with pytest.raises(ValueError, match="square"):
        fm.SVC(kernel="precomputed").fit(K[:, :20], y)


def test_decision_function_shapes_and_ties():
    X, y = _load("iris")
    ovr = fm.SVC(decision_function_shape="ovr").fit(X, y)
    ovo = fm.SVC(decision_function_shape="ovo").fit(X, y)
    assert ovr.decision_function(X).shape == (150, 3)
    assert ovo.decision_function(X).shape == (150, 3)  # 3 pairs for 3 classes
    X4, y4 = _load("digits")
    X4, y4 = X4[y4 < 5], y4[y4 < 5]
    m = fm.SVC(decision_function_shape="ovo").fit(X4, y4)
    assert m.decision_function(X4).shape == (len(y4), 10)
    m.set_params(decision_function_shape="ovr")
    assert m.decision_function(X4).shape == (len(y4), 5)
    ref = sk.SVC(decision_function_shape="ovr").fit(X4, y4)
    assert np.mean(np.argmax(m.decision_function(X4), 1) == np.argmax(ref.decision_function(X4), 1)) >= 0.99
    bt = fm.SVC(break_ties=True).fit(X4, y4)
    np.testing.assert_array_equal(bt.predict(X4), bt.classes_[np.argmax(bt.decision_function(X4), axis=1)])
    with pytest.raises(ValueError, match="break_ties"):
        fm.SVC(break_ties=True, decision_function_shape="ovo").fit(X, y).predict(X)
    Xb, yb = _load("breast_cancer")
    b = fm.SVC().fit(Xb, yb)
    assert b.decision_function(Xb).shape == (len(yb),)
    np.testing.assert_array_equal(b.predict(Xb), b.classes_[(b.decision_function(Xb) > 0).astype(int)])


def test_string_labels_and_coef():
    X, y = _load("iris")
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    m = fm.SVC(kernel="linear").fit(X, names)
    ref = sk.SVC(kernel="linear").fit(X, names)
    assert set(m.predict(X)) <= set(names)
    assert m.coef_.shape == ref.coef_.shape == (3, 4)
    np.testing.assert_allclose(m.coef_, ref.coef_, atol=2e-2 * np.abs(ref.coef_).max())
    with pytest.raises(AttributeError, match="linear kernel"):
        _ = fm.SVC().fit(X, y).coef_


def test_sample_weight_equals_repeats():
    X, y = _load("breast_cancer")
    rng = np.random.RandomState(0)
    w = rng.randint(0, 3, size=len(y))
    a = fm.SVC(gamma=0.05).fit(X, y, sample_weight=w)
    b = fm.SVC(gamma=0.05).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(X), atol=5e-3)
    assert np.all(w[a.support_] > 0)  # zero-weight samples are dropped, indices are the caller's
    ref = sk.SVC(gamma=0.05).fit(X, y, sample_weight=w)
    # scikit-learn's support_ indexes the rows left after dropping zero weights; ours index X
    kept = np.searchsorted(np.flatnonzero(w > 0), a.support_)
    assert np.intersect1d(kept, ref.support_).size >= 0.95 * ref.support_.size
    np.testing.assert_allclose(a.support_vectors_, X[a.support_])
    np.testing.assert_allclose(a.decision_function(X), ref.decision_function(X), atol=2e-2)


def test_class_weight():
    X, y = _load("breast_cancer")
    a = fm.SVC(class_weight={0: 5.0, 1: 0.5}).fit(X, y)
    ref = sk.SVC(class_weight={0: 5.0, 1: 0.5}).fit(X, y)
    np.testing.assert_allclose(a.class_weight_, ref.class_weight_)
    assert np.intersect1d(a.support_, ref.support_).size >= 0.95 * ref.support_.size
    np.testing.assert_allclose(a.decision_function(X), ref.decision_function(X), atol=2e-2)
    bal = fm.SVC(class_weight="balanced").fit(X, y)
    np.testing.assert_allclose(bal.class_weight_, sk.SVC(class_weight="balanced").fit(X, y).class_weight_)


def test_probability_platt_and_calibrated():
    import warnings

    from sklearn.calibration import CalibratedClassifierCV
    X, y = _load("iris")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # probability=True keeps working without a FutureWarning
        m = fm.SVC(probability=True, random_state=0).fit(X, y)
    p = m.predict_proba(X)
    assert p.shape == (150, 3)
    np.testing.assert_allclose(p.sum(1), 1, atol=1e-6)
    assert m.probA_.shape == m.probB_.shape == (3,)
    assert np.mean(np.argmax(p, 1) == y) >= 0.9
    np.testing.assert_allclose(np.exp(m.predict_log_proba(X)), p)
    assert not hasattr(fm.SVC().fit(X, y), "predict_proba")
    cal = CalibratedClassifierCV(fm.SVC(), ensemble=False).fit(X, y)
    pc = cal.predict_proba(X)
    assert pc.shape == (150, 3) and np.mean(np.argmax(pc, 1) == y) >= 0.9
    Xb, yb = _load("breast_cancer")
    mb = fm.SVC(probability=True, random_state=0).fit(Xb, yb)
    pb = mb.predict_proba(Xb)
    assert pb.shape == (len(yb), 2) and np.mean(mb.classes_[np.argmax(pb, 1)] == yb) >= 0.95


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # liblinear's hinge dual on digits
@pytest.mark.parametrize("name", ["iris", "breast_cancer", "digits"])
def test_linear_svc_matches_sklearn(name):
    X, y = _load(name)
    for kw in ({}, {"dual": True, "max_iter": 20000}, {"loss": "hinge", "max_iter": 20000}):
        ref = sk.LinearSVC(**kw).fit(X, y)
        got = fm.LinearSVC(**kw).fit(X, y)
        assert got.coef_.shape == ref.coef_.shape
        assert got.score(X, y) == pytest.approx(ref.score(X, y), abs=1.5 / len(y))
        scale = np.abs(ref.coef_).max()
        np.testing.assert_allclose(got.coef_, ref.coef_, atol=3e-2 * scale)
        np.testing.assert_allclose(got.intercept_, ref.intercept_, atol=3e-2 * max(scale, 1))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_linear_svc_sparse_csr_and_options():
    import scipy.sparse as sp
    X, y = _load("digits")
    X = np.where(np.abs(X) > 1.0, X, 0.0)
    Xs = sp.csr_matrix(X)
    for dual in (False, True):
        a = fm.LinearSVC(dual=dual, max_iter=5000, random_state=0).fit(X, y)
        b = fm.LinearSVC(dual=dual, max_iter=5000, random_state=0).fit(Xs, y)
        # same solver and data; only the summation order of the dense and sparse dots differs, so
        # both stop at (slightly different) points within the solver tolerance
        np.testing.assert_allclose(a.coef_, b.coef_, atol=2e-2 * np.abs(a.coef_).max())
        assert np.mean(a.predict(X) == b.predict(Xs)) >= 0.99
    c = fm.LinearSVC(fit_intercept=False).fit(X, y)
    assert c.intercept_ == 0.0
    ref = sk.LinearSVC(class_weight="balanced").fit(X, y)
    got = fm.LinearSVC(class_weight="balanced").fit(X, y)
    np.testing.assert_allclose(got.coef_, ref.coef_, atol=3e-2 * np.abs(ref.coef_).max())
    with pytest.raises(ValueError, match="loss='hinge'"):
        fm.LinearSVC(loss="hinge", dual=False).fit(X, y)


@pytest.mark.parametrize("Est", [fm.SVC, fm.LinearSVC])
def test_bad_input(Est):
    X, y = _load("iris")
    with pytest.raises(ValueError, match="class"):
        Est().fit(X, np.zeros(len(y)))
    for bad in (np.nan, np.inf):
        Xb = X.copy()
        Xb[3, 1] = bad
        with pytest.raises(ValueError, match="NaN|infinity"):
            Est().fit(Xb, y)
    with pytest.raises(ValueError, match="'C' parameter"):
        Est(C=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        Est().fit(X, y).predict(X[:, :3])


def test_unknown_kernel_and_ops_errors():
    X, y = _load("iris")
    with pytest.raises(ValueError, match="'kernel' parameter"):
        fm.SVC(kernel="laplacian").fit(X, y)
    with pytest.raises(ValueError, match="kernel: expected one of"):
        ops.svm_kernel(X, X, "laplacian")
    with pytest.raises(ValueError, match="X2: expected shape"):
        ops.svm_kernel(X, X[:, :2], "rbf")
    with pytest.raises(ValueError, match="C: every"):
        ops.svm_fit_ovo(X, [np.arange(50), np.arange(50, 100)], -np.ones(150))
    with pytest.raises(ValueError, match="members"):
        ops.svm_fit_ovo(X, [np.arange(50), np.arange(50, 151)], np.ones(150))


@pytest.mark.parametrize("kernel", ["linear", "rbf", "poly", "sigmoid"])
def test_kernel_matrix_reference(kernel, isa):
    rng = np.random.RandomState(1)
    A, B = rng.randn(37, 13), rng.randn(61, 13)
    K = ops.svm_kernel(A, B, kernel, gamma=0.07, coef0=0.3, degree=3)
    dot = A @ B.T
    ref = {"linear": dot, "poly": (0.07 * dot + 0.3) ** 3, "sigmoid": np.tanh(0.07 * dot + 0.3),
           "rbf": np.exp(-0.07 * ((A[:, None] - B[None]) ** 2).sum(-1))}[kernel]
    np.testing.assert_allclose(K, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert ops.svm_kernel(A[:0], B, kernel).shape == (0, 61)


def test_max_iter_warns():
    from sklearn.exceptions import ConvergenceWarning
    X, y = _load("breast_cancer")
    with pytest.warns(ConvergenceWarning, match="max_iter=5"):
        m = fm.SVC(max_iter=5).fit(X, y)
    assert m.fit_status_ == 1
    with pytest.warns(ConvergenceWarning, match="Liblinear failed to converge"):
        fm.LinearSVC(dual=True, max_iter=2).fit(X, y)


def test_pickle_and_threads():
    import pickle

    import forgeml
    X, y = _load("digits")
    m = fm.SVC().fit(X, y)
    m2 = pickle.loads(pickle.dumps(m))
    np.testing.assert_array_equal(m.predict(X), m2.predict(X))
    old = forgeml._cpu.get_num_threads()
    try:
        forgeml._cpu.set_num_threads(1)
        m1 = fm.SVC().fit(X, y)
    finally:
        forgeml._cpu.set_num_threads(old)
    np.testing.assert_array_equal(m1.support_, m.support_)
    np.testing.assert_array_equal(m1.dual_coef_, m.dual_coef_)


@pytest.fixture(scope="module")
def binary_6k():
    # large enough that the solver shrinks, compacts its active set, rebuilds gradients, and shares
    # kernel rows (>= 4096 columns) with its helper thread
    from sklearn.datasets import make_classification
    X, y = make_classification(n_samples=6001, n_features=20, n_informative=10, random_state=3)
    return X, y, sk.SVC().fit(X, y)


def _assert_close_to(got, ref, X, y):
    assert got.score(X, y) == pytest.approx(ref.score(X, y), abs=2e-3)
    assert np.intersect1d(got.support_, ref.support_).size >= 0.98 * ref.support_.size
    d_ref = ref.decision_function(X)
    np.testing.assert_allclose(got.decision_function(X), d_ref, atol=1e-2 * np.abs(d_ref).max())


def test_svc_each_isa_matches_sklearn(binary_6k, isa):
    X, y, ref = binary_6k
    got = fm.SVC().fit(X, y)
    _assert_close_to(got, ref, X, y)


def test_svc_helper_thread_gives_the_same_answer(binary_6k):
    import forgeml
    X, y, ref = binary_6k
    old = forgeml._cpu.get_num_threads()
    try:
        forgeml._cpu.set_num_threads(1)
        one = fm.SVC().fit(X, y)
        forgeml._cpu.set_num_threads(2)
        two = fm.SVC().fit(X, y)
    finally:
        forgeml._cpu.set_num_threads(old)
    # the helper computes whole panels exactly as the caller would: bit-for-bit the same solve
    np.testing.assert_array_equal(one.support_, two.support_)
    np.testing.assert_array_equal(one.dual_coef_, two.dual_coef_)
    _assert_close_to(two, ref, X, y)


def test_svc_shrinking_off_agrees(binary_6k):
    X, y, ref = binary_6k
    _assert_close_to(fm.SVC(shrinking=False).fit(X, y), ref, X, y)
