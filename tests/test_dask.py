"""forgeml.dask on a real dask.distributed LocalCluster (2 worker processes on loopback)."""

import os
import pickle
import signal

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.dataframe")

import forgeml.dask as fd  # noqa: E402
from forgeml import ensemble  # noqa: E402
from forgeml.dask import _hist  # noqa: E402

# distributed's own sockets may be collected after a cluster closes: not forgeml's to fix
pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")

FOREST_FIELDS = (
    "offsets",
    "depth",
    "feature",
    "threshold",
    "children_left",
    "children_right",
    "missing_go_to_left",
    "impurity",
    "n_node_samples",
    "weighted_n_node_samples",
    "value",
)


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def test_no_client_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no dask.distributed Client"):
        fd.get_client()


def _data(n, d=10, seed=0, nan=False):
    from sklearn.datasets import make_classification

    X, y = make_classification(n, d, n_informative=min(6, d - 2), n_redundant=1, flip_y=0.03, random_state=seed)
    X = X.astype(np.float32)
    if nan:
        X[np.random.default_rng(seed).random(X.shape) < 0.02] = np.nan
    return X, y


def _same_forest(a, b):
    for name in FOREST_FIELDS:
        assert np.array_equal(getattr(a._forest, name), getattr(b._forest, name)), name


@pytest.mark.filterwarnings("ignore:Some inputs do not have OOB scores")
def test_tree_parallel_is_the_local_fit(client):
    X, y = _data(1500, nan=True)
    sw = np.random.default_rng(3).uniform(0.5, 2, len(y))
    params = dict(n_estimators=7, random_state=11, max_features=4, min_samples_leaf=2, oob_score=True)
    dist = fd.RandomForestClassifier(**params).fit(
        da.from_array(X, chunks=(400, 10)), da.from_array(y, chunks=400), sample_weight=sw
    )
    local = ensemble.RandomForestClassifier(**params).fit(X, y, sample_weight=sw)
    _same_forest(dist, local)
    assert dist.oob_score_ == local.oob_score_
    assert np.array_equal(dist.predict_proba(X), local.predict_proba(X))


def test_tree_parallel_regressor_from_dataframe(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, _ = _data(900, d=6, seed=2)
    y = X[:, 0] * 2 + np.sin(X[:, 1]) + 0.1 * np.random.default_rng(0).normal(size=len(X))
    frame = dd.from_pandas(pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]), npartitions=3)
    target = dd.from_pandas(pd.Series(y), npartitions=3)
    params = dict(n_estimators=5, random_state=4, max_depth=9)
    dist = fd.RandomForestRegressor(**params).fit(frame, target)
    local = ensemble.RandomForestRegressor(**params).fit(X, y)
    _same_forest(dist, local)
    lazy = dist.predict(frame)
    assert isinstance(lazy, da.Array)
    assert np.array_equal(lazy.compute(), local.predict(X))


@pytest.mark.slow
def test_data_parallel_accuracy_matches_local(client):
    X, y = _data(8000, d=12, seed=5)
    Xt, yt, Xv, yv = X[:6000], y[:6000], X[6000:], y[6000:]
    params = dict(n_estimators=40, random_state=0, max_depth=10)
    dist = fd.RandomForestClassifier(**params, mode="data").fit(
        da.from_array(Xt, chunks=(1500, 12)), da.from_array(yt, chunks=1500)
    )
    local = ensemble.RandomForestClassifier(**params).fit(Xt, yt)
    acc_dist, acc_local = dist.score(Xv, yv), local.score(Xv, yv)
    assert abs(acc_dist - acc_local) <= 0.005 + 1e-12, (acc_dist, acc_local)
    assert acc_dist > 0.85  # the task is learnable: a broken split would show here
    # an ordinary fitted forest: picklable, NumPy predict, the plain class on request
    back = pickle.loads(pickle.dumps(dist))
    assert np.array_equal(back.predict(Xv), dist.predict(Xv))
    plain = dist.to_local()
    assert type(plain) is ensemble.RandomForestClassifier
    assert np.array_equal(plain.predict_proba(Xv), dist.predict_proba(Xv))
    assert dist._comm["rounds"] >= 10 and dist._comm["hist_bytes"] > 0


def test_data_parallel_regressor_matches_local(client):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(5000, 6)).astype(np.float32)
    y = X[:, 0] * 2 + np.sin(3 * X[:, 1]) + X[:, 2] * X[:, 3] + 0.1 * rng.normal(size=len(X))
    params = dict(n_estimators=20, random_state=1, max_depth=8, max_features=0.5, min_samples_leaf=3)
    dist = fd.RandomForestRegressor(**params, mode="data").fit(
        da.from_array(X[:4000], chunks=(1000, 6)), da.from_array(y[:4000], chunks=1000)
    )
    local = ensemble.RandomForestRegressor(**params).fit(X[:4000], y[:4000])
    r2_dist, r2_local = dist.score(X[4000:], y[4000:]), local.score(X[4000:], y[4000:])
    assert abs(r2_dist - r2_local) < 0.02, (r2_dist, r2_local)
    f = dist._forest
    leaves = f.feature < 0
    assert (f.n_node_samples[leaves] >= 1).all()
    assert f.depth.max() <= 8


def test_data_parallel_does_not_depend_on_partitioning(client):
    X, y = _data(2400, d=8, seed=9, nan=True)
    params = dict(n_estimators=4, random_state=2, max_depth=6, mode="data")
    a = fd.RandomForestClassifier(**params).fit(da.from_array(X, chunks=(1200, 8)), da.from_array(y, chunks=1200))
    b = fd.RandomForestClassifier(**params).fit(da.from_array(X, chunks=(700, 8)), da.from_array(y, chunks=700))
    _same_forest(a, b)


def test_poisson_counts_have_mean_and_variance_one():
    c = _hist.poisson_counts(12345, np.arange(200_000), 1.0)
    assert abs(c.mean() - 1) < 0.01 and abs(c.var() - 1) < 0.02
    assert np.array_equal(c[1000:2000], _hist.poisson_counts(12345, np.arange(1000, 2000), 1.0))
    assert not np.array_equal(c[:1000], _hist.poisson_counts(54321, np.arange(1000), 1.0))


def test_lazy_predict_equals_local_row_for_row(client):
    X, y = _data(1200, d=7, seed=4)
    Xd = da.from_array(X, chunks=(250, 7))
    forest = fd.RandomForestClassifier(6, random_state=0).fit(X, y)
    assert np.array_equal(forest.predict(Xd).compute(), forest.predict(X))
    assert np.array_equal(forest.predict_proba(Xd).compute(), forest.predict_proba(X))
    from forgeml.svm import SVC, LinearSVC

    for model in (SVC(probability=False).fit(X, y), LinearSVC(max_iter=2000).fit(X, y)):
        assert np.array_equal(fd.predict(model, Xd).compute(), model.predict(X))


def test_keras_predict_on_dask_array(client):
    import forgeml as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential(
        [
            tf.keras.layers.Input((7,)),
            tf.keras.layers.Dense(9, activation="relu"),
            tf.keras.layers.Dense(3, activation="softmax"),
        ]
    )
    X = np.random.default_rng(0).normal(size=(333, 7)).astype(np.float32)
    out = fd.predict(model, da.from_array(X, chunks=(100, 7)))
    assert out.shape == (333, 3)
    np.testing.assert_array_equal(out.compute(), model.predict(X, verbose=0))


def test_bad_setups_raise_clear_errors(client):
    import dask

    X, y = _data(300, d=5)
    good = da.from_array(X[:150], chunks=(150, 5))
    lying = da.from_delayed(dask.delayed(np.asarray)(X[150:, :4]), shape=(150, 5), dtype=np.float32)
    Xbad = da.concatenate([good, lying])
    with pytest.raises(ValueError, match="partition 1 has shape"):
        fd.RandomForestClassifier(3, mode="data").fit(Xbad, da.from_array(y, chunks=150))
    with pytest.raises(ValueError, match="mode"):
        fd.RandomForestClassifier(3, mode="rows").fit(X, y)
    with pytest.raises(ValueError, match="oob_score"):
        fd.RandomForestClassifier(3, mode="data", oob_score=True).fit(X, y)
    with pytest.raises(ValueError, match="y: expected 300 values"):
        fd.RandomForestClassifier(3, mode="data").fit(X, y[:299])


@pytest.mark.slow
def test_worker_dying_mid_fit_raises_and_leaves_no_hang():
    X, y = _data(2000, d=6, seed=1)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        pids = c.run(os.getpid)

        def kill_one(r):
            if r == 2:  # a real death: SIGKILL to one worker process between rounds
                os.kill(pids[sorted(pids)[0]], signal.SIGKILL)

        _hist.ON_ROUND = kill_one
        try:
            with pytest.raises(RuntimeError, match="died mid-fit"):
                fd.RandomForestClassifier(4, random_state=0, max_depth=6, mode="data").fit(
                    da.from_array(X, chunks=(1000, 6)), da.from_array(y, chunks=1000)
                )
        finally:
            _hist.ON_ROUND = None


def test_params_clone_and_mode_validation():
    from sklearn.base import clone

    est = fd.RandomForestRegressor(7, mode="data", max_depth=3)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and twin.mode == "data"
    assert isinstance(twin, ensemble.RandomForestRegressor)
