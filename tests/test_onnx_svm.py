"""forgeml.onnx.to_onnx for SVC, NuSVC and LinearSVC: ONNX Runtime reproduces the labels exactly
and decision_function within 1e-5 (binary, one-vs-one and ovr shapes, every kernel)."""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from forgeml.onnx import to_onnx  # noqa: E402
from forgeml.svm import SVC, LinearSVC, NuSVC, SVR  # noqa: E402


def run(model, X):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": X})


def data(rng, n, classes, d=5):
    X = rng.standard_normal((n, d)).astype(np.float32)
    score = X[:, 0] + 0.5 * X[:, 1] ** 2 - X[:, 2] * X[:, 3]
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])) * 3 + 1  # labels 1, 4, 7, ...
    return X, y


def check(est, X):
    label, scores = run(to_onnx(est, X), X)
    np.testing.assert_array_equal(label, est.predict(X))
    want = est.decision_function(X)
    assert scores.shape == want.shape and scores.dtype == np.float32
    assert np.abs(scores - want).max() <= 1e-5 * max(1.0, np.abs(want).max())


@pytest.mark.parametrize("kernel", ["linear", "poly", "rbf", "sigmoid"])
@pytest.mark.parametrize("classes", [2, 4])
def test_svc_kernels(rng, kernel, classes):
    X, y = data(rng, 240, classes)
    est = SVC(kernel=kernel, C=2.0, degree=3, coef0=0.5, gamma="scale" if kernel != "sigmoid" else 0.05).fit(X, y)
    check(est, data(rng, 151, classes)[0])


@pytest.mark.parametrize("shape,break_ties", [("ovo", False), ("ovr", True)])
def test_svc_decision_shapes_and_nusvc(rng, shape, break_ties):
    X, y = data(rng, 200, 3)
    Xt = data(rng, 97, 3)[0]
    check(SVC(decision_function_shape=shape, break_ties=break_ties).fit(X, y), Xt)
    check(NuSVC(nu=0.3).fit(X, y), Xt)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # any fitted model exports
@pytest.mark.parametrize("classes,multi_class", [(2, "ovr"), (3, "ovr"), (3, "crammer_singer")])
def test_linear_svc(rng, classes, multi_class):
    X, y = data(rng, 300, classes)
    est = LinearSVC(multi_class=multi_class, max_iter=5000).fit(X, y)
    check(est, data(rng, 131, classes)[0])
    check(LinearSVC(fit_intercept=False).fit(X, y), X)


def test_svm_errors(rng):
    X, y = data(rng, 60, 2)
    with pytest.raises(NotImplementedError, match="kernel"):
        to_onnx(SVC(kernel=lambda a, b: a @ b.T).fit(X, y), X)
    with pytest.raises(NotImplementedError, match="SVR is not supported"):
        to_onnx(SVR().fit(X, y.astype(float)), X)
