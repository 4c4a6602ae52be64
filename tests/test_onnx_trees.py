"""forgeml.onnx.to_onnx for trees and forests: ONNX Runtime's TreeEnsemble ops reproduce forgeml's
probabilities (<= 1e-5), labels (exactly) and regression values, NaN routing included."""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from forgeml.ensemble import RandomForestClassifier, RandomForestRegressor  # noqa: E402
from forgeml.onnx import to_onnx  # noqa: E402
from forgeml.tree import DecisionTreeClassifier, DecisionTreeRegressor  # noqa: E402


def run(model, X):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": X})


def data(rng, n=400, d=7, nan=True):
    X = rng.standard_normal((n, d)).astype(np.float32)
    if nan:
        X[rng.random((n, d)) < 0.1] = np.nan
    return X


@pytest.mark.parametrize(
    "est",
    [
        DecisionTreeClassifier(max_depth=8, random_state=0),
        RandomForestClassifier(n_estimators=7, max_depth=6, random_state=0),
    ],
)
def test_classifiers(rng, est):
    X = data(rng)
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) > 0).astype(int) + (np.isnan(X[:, 2]) * 2)
    est.fit(X, y)
    Xt = data(rng, 300)
    label, proba = run(to_onnx(est, Xt), Xt)
    np.testing.assert_array_equal(label, est.predict(Xt))
    assert np.abs(proba - est.predict_proba(Xt)).max() <= 1e-5


@pytest.mark.parametrize(
    "est",
    [
        DecisionTreeRegressor(max_depth=7, random_state=0),
        RandomForestRegressor(n_estimators=6, max_depth=5, random_state=0),
    ],
)
def test_regressors(rng, est):
    X = data(rng)
    y = np.nan_to_num(X[:, 0]) * 3 - np.nan_to_num(X[:, 3]) ** 2 + np.isnan(X[:, 1])
    est.fit(X, y)
    Xt = data(rng, 300)
    (pred,) = run(to_onnx(est, Xt), Xt)
    np.testing.assert_allclose(pred[:, 0], est.predict(Xt), rtol=1e-5, atol=1e-5)


def test_unsupported_estimator_raises():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(NotImplementedError, match="LogisticRegression"):
        to_onnx(LogisticRegression(), np.zeros((2, 2), np.float32))
