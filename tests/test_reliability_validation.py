"""Reliability: inputs that crashed, hung or gave unhelpful errors (issue 14) now raise clear
errors naming the argument, or give the correct (possibly empty) result."""

import json
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import forgeml
from forgeml import _cpu, ops

# ---------------------------------------------------------------- CSR structure


def _csr(rng, n=30, d=6):
    X = sp.random(n, d, density=0.5, format="csr", random_state=1, dtype=np.float64)
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    y[:2] = [1, -1]
    return X, y


def _broken(X, what):
    X = X.copy()
    if what == "indptr_past_end":
        X.indptr[-1] = X.indptr[-1] + 1000
    elif what == "indptr_decreasing":
        X.indptr[5] = X.indptr[6] + 1
    elif what == "indptr_negative":
        X.indptr[3] = -4
    elif what == "index_out_of_range":
        X.indices[2] = 1 << 20
    elif what == "index_negative":
        X.indices[0] = -1
    return X


BROKEN = ["indptr_past_end", "indptr_decreasing", "indptr_negative", "index_out_of_range", "index_negative"]


@pytest.mark.parametrize("what", BROKEN)
def test_svm_linear_ops_reject_broken_csr(what, rng):
    X, y = _csr(rng)
    Xb = _broken(X, what)
    with pytest.raises(ValueError, match=r"X\.(indptr|indices)"):
        ops.svm_linear_fit(Xb, y[None], np.ones((1, len(y))))
    with pytest.raises(ValueError, match=r"X\.(indptr|indices)"):
        ops.svm_linear_cs_fit(Xb, (y > 0).astype(np.int32), np.ones(len(y)), 2)


@pytest.mark.parametrize("what", BROKEN)
def test_svc_and_linear_svc_reject_broken_csr(what, rng):
    from forgeml.svm import SVC, LinearSVC

    X, y = _csr(rng)
    Xb = _broken(X, what)
    for est in (SVC(), LinearSVC()):
        with pytest.raises(ValueError):
            est.fit(Xb, y)


def test_valid_csr_still_fits(rng):
    X, y = _csr(rng)
    W, _, conv = ops.svm_linear_fit(X, y[None], np.ones((1, len(y))))
    W_dense, _, _ = ops.svm_linear_fit(X.toarray(), y[None], np.ones((1, len(y))))
    np.testing.assert_allclose(W, W_dense, rtol=1e-4, atol=1e-5)
    _cpu.check_csr(X.indptr, X.indices, X.data.size, *X.shape)  # passes


def test_check_csr_messages():
    with pytest.raises(ValueError, match="must start at 0"):
        _cpu.check_csr(np.array([1, 2]), np.array([0, 0]), 2, 1, 3)
    with pytest.raises(ValueError, match="expected 3 entries"):
        _cpu.check_csr(np.array([0, 1]), np.array([0]), 1, 2, 3)
    with pytest.raises(ValueError, match=r"X\.indices: entry 1 = 3"):
        _cpu.check_csr(np.array([0, 2]), np.array([0, 3]), 2, 1, 3)


# ---------------------------------------------------------------- forest node arrays


def _stump():
    """One tree: x[1] <= 0.5 ? leaf 1 (value 10) : leaf 2 (value 20)."""
    nodes = np.zeros((3, 4), np.int32)
    nodes[0] = [1, np.float32(0.5).view(np.int32), 1, 2]
    nodes[1] = [-1, 0, -1, -1]
    nodes[2] = [-1, 0, -1, -1]
    values = np.array([[0.0], [10.0], [20.0]])
    return nodes, values, np.array([0], np.int64)


def test_forest_predict_valid_nodes():
    nodes, values, roots = _stump()
    X = np.array([[9, 0.2], [9, 0.9], [9, np.nan]], np.float32)
    np.testing.assert_array_equal(ops.tree_forest_predict(X, nodes, values, roots)[:, 0], [10, 20, 20])
    np.testing.assert_array_equal(ops.tree_forest_apply(X, nodes, roots)[:, 0], [1, 2, 2])


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda n: n.__setitem__((0, 2), 7), "children"),  # child out of range
        (lambda n: n.__setitem__((0, 3), -5), "children"),  # negative child
        (lambda n: n.__setitem__((0, 2), 0), "children"),  # self loop: a cycle
        (lambda n: n.__setitem__((0, 0), 2), "feature 2"),  # feature past X's columns
        (lambda n: n.__setitem__((0, 0), 5 | (1 << 30)), "feature 5"),  # with the nan_left bit
    ],
)
def test_forest_ops_reject_bad_nodes(edit, match):
    nodes, values, roots = _stump()
    edit(nodes)
    X = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=match):
        ops.tree_forest_predict(X, nodes, values, roots)
    with pytest.raises(ValueError, match=match):
        ops.tree_forest_apply(X, nodes, roots)


def test_forest_cycle_between_nodes_is_rejected():
    nodes = np.zeros((4, 4), np.int32)
    nodes[0] = [0, 0, 1, 3]
    nodes[1] = [0, 0, 2, 3]
    nodes[2] = [0, 0, 1, 3]  # back to node 1: a walk would never end
    nodes[3] = [-1, 0, -1, -1]
    with pytest.raises(ValueError, match="node 2"):
        ops.tree_forest_predict(np.zeros((2, 1), np.float32), nodes, np.zeros((4, 1)), np.array([0]))


def test_fitted_forest_nodes_pass_validation():
    from forgeml.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    f = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)
    assert f.score(X, y) > 0.9


# ---------------------------------------------------------------- clear errors


@pytest.mark.parametrize(
    "call",
    [
        lambda: ops.conv2d(None, np.ones((1, 1, 1, 1), np.float32)),
        lambda: ops.conv2d(np.ones((1, 2, 2, 1), np.float32), None),
        lambda: ops.conv2d_grad(None, np.ones((1, 1, 1, 1), np.float32), np.ones((1, 2, 2, 1), np.float32)),
        lambda: ops.max_pool2d(None, 2),
        lambda: ops.avg_pool2d(None, 2),
        lambda: ops.max_pool2d_grad(None, np.ones((1, 1, 1, 1), np.float32), 2),
    ],
)
def test_none_input_names_the_argument(call):
    with pytest.raises(TypeError, match=r"(x|w): expected an array, got None"):
        call()


def test_lists_work_like_arrays():
    a = [[1.0, 2.0], [3.0, 4.0]]
    np.testing.assert_allclose(ops.matmul(a, a), np.array(a) @ np.array(a))
    x = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(
        ops.conv2d(x.tolist(), np.ones((1, 1, 2, 1)).tolist()), ops.conv2d(x, np.ones((1, 1, 2, 1)))
    )
    np.testing.assert_array_equal(ops.max_pool2d(x.tolist(), 2), ops.max_pool2d(x, 2))
    np.testing.assert_allclose(ops.svm_kernel(a, a, "linear"), np.array(a) @ np.array(a).T)
    nodes, values, roots = _stump()
    np.testing.assert_array_equal(ops.tree_forest_predict([[0.0, 0.0]], nodes.tolist(), values.tolist(), [0]), [[10.0]])
    with pytest.raises(TypeError, match="a: expected a numeric array"):
        ops.matmul([["x"]], a)


def test_set_num_threads_out_of_range(restore_threads):
    for n in (2**31, 2**64, 0, -1):
        with pytest.raises(ValueError, match=r"n: expected a thread count (>= 1|<= 4096), got "):
            forgeml.set_num_threads(n)
    with pytest.raises(TypeError, match="n: expected an int"):
        forgeml.set_num_threads(2.0)


@pytest.mark.parametrize(
    "kw",
    [
        dict(strides=2**40),
        dict(dilation=2**40),
        dict(strides=(1, 2**31)),
        dict(dilation=2**30, padding="same"),
        dict(dilation=(1, 2**29), padding="same"),
    ],
)
def test_absurd_strides_and_dilations(kw):
    x = np.ones((1, 5, 5, 2), np.float32)
    w = np.ones((3, 3, 2, 2), np.float32)
    with pytest.raises(ValueError, match="strides|dilation"):
        ops.conv2d(x, w, **kw)
    with pytest.raises(ValueError, match="strides|dilation"):
        ops.conv2d_grad(x, w, np.ones((1, 3, 3, 2), np.float32), **kw)


def test_large_but_sane_stride_still_works():
    x = np.arange(50, dtype=np.float32).reshape(1, 5, 5, 2)
    y = ops.conv2d(x, np.ones((1, 1, 2, 1), np.float32), strides=10**6)
    np.testing.assert_array_equal(y, [[[[1.0]]]])


def _keras_zip(path, config):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("metadata.json", "{}")
        zf.writestr("model.weights.npz", b"")
    return path


@pytest.mark.parametrize(
    "config",
    [
        [1, 2, 3],
        "text",
        7,
        None,
        {"class_name": "Sequential"},
        {"class_name": "Sequential", "config": {"layers": 5}},
        {"class_name": "Sequential", "config": {"layers": [{"class_name": 3}]}},
        # found by the fuzz target: a layer asking for 32 TiB of weights
        {
            "class_name": "Sequential",
            "config": {
                "name": "s",
                "layers": [
                    {"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
                    {"class_name": "Dense", "config": {"units": 1 << 40}},
                ],
            },
        },
    ],
)
def test_load_model_bad_config_is_a_value_error(tmp_path, config):
    from forgeml import keras

    with pytest.raises(ValueError, match="filepath|Unsupported|config|Could not locate"):
        keras.models.load_model(_keras_zip(tmp_path / "m.keras", config))


def test_load_model_missing_member(tmp_path):
    from forgeml import keras

    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", "{}")
    with pytest.raises(ValueError, match="not a readable .keras file"):
        keras.models.load_model(path)


# ---------------------------------------------------------------- zero features


def test_svm_kernel_with_zero_features():
    X1, X2 = np.zeros((4, 0), np.float32), np.zeros((3, 0), np.float32)
    np.testing.assert_array_equal(ops.svm_kernel(X1, X2, "linear"), np.zeros((4, 3)))
    np.testing.assert_array_equal(ops.svm_kernel(X1, X2, "rbf", gamma=0.7), np.ones((4, 3)))
    np.testing.assert_allclose(ops.svm_kernel(X1, X2, "poly", gamma=0.5, coef0=2.0, degree=3), np.full((4, 3), 8.0))
    np.testing.assert_allclose(ops.svm_kernel(X1, X2, "sigmoid", coef0=0.5), np.full((4, 3), np.tanh(0.5)), rtol=1e-6)


def test_matmul_with_zero_inner_dimension():
    out = ops.matmul(np.zeros((3, 0), np.float32), np.zeros((0, 4), np.float32), bias=np.arange(4, dtype=np.float32))
    np.testing.assert_array_equal(out, np.tile(np.arange(4, dtype=np.float32), (3, 1)))
    out = _cpu.sgemm(
        np.zeros((3, 0), np.float32),
        np.zeros((0, 4), np.float32),
        np.empty((3, 4), np.float32),
        False,
        False,
        1.0,
        0.0,
        None,
        0,
    )


def _simple_rnn_ref(x, k, rk, b, h0):
    h = h0.astype(np.float64)
    ys = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t].astype(np.float64) @ k + h @ rk + b)
        ys.append(h)
    return np.stack(ys, 1)


def test_rnn_ops_with_zero_features(rng):
    n, t, hdim = 3, 4, 5
    x = np.zeros((n, t, 0), np.float32)
    rk = (rng.standard_normal((hdim, hdim)) * 0.5).astype(np.float32)
    b = rng.standard_normal(hdim).astype(np.float32)
    h0 = rng.standard_normal((n, hdim)).astype(np.float32)
    y, h_t = ops.simple_rnn(x, np.zeros((0, hdim), np.float32), rk, b, h0)
    np.testing.assert_allclose(y, _simple_rnn_ref(x, np.zeros((0, hdim)), rk, b, h0), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(h_t, y[:, -1])
    y, h_t, c_t = ops.lstm(
        x, np.zeros((0, 4 * hdim), np.float32), np.zeros((hdim, 4 * hdim), np.float32), np.zeros(4 * hdim, np.float32)
    )
    # all gates are sigmoid(0) = 0.5, candidate tanh(0) = 0: c stays 0, h = 0.5 * tanh(0) = 0
    np.testing.assert_array_equal(y, np.zeros((n, t, hdim)))
    y, _ = ops.gru(
        x,
        np.zeros((0, 3 * hdim), np.float32),
        np.zeros((hdim, 3 * hdim), np.float32),
        np.zeros((2, 3 * hdim), np.float32),
        h0,
    )
    # z = 0.5, candidate tanh(0) = 0: h_t = 0.5 h_{t-1}
    np.testing.assert_allclose(y[:, -1], h0 * 0.5**t, rtol=1e-6)


@pytest.mark.parametrize("weights", [b"", b"PK\x03\x04garbage", b"\x93NUMPY"])
def test_load_model_damaged_weights(tmp_path, weights):
    """Found by the fuzz target: an empty weights member raised EOFError."""
    from forgeml import keras

    model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(2)])
    good = tmp_path / "good.keras"
    model.save(good)
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, weights if name == "model.weights.npz" else src.read(name))
    with pytest.raises(ValueError):
        keras.models.load_model(bad)
