"""forgeml.distributed under a real `mpirun -n 2` on loopback (Open MPI or MPICH + mpi4py)."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mpi4py")
MPIRUN = shutil.which("mpirun")
pytestmark = pytest.mark.skipif(MPIRUN is None, reason="no mpirun on PATH (install Open MPI or MPICH)")
SCRIPT = os.path.join(os.path.dirname(__file__), "mpi_train.py")


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    import forgeml

    home = os.path.dirname(os.path.dirname(os.path.abspath(forgeml.__file__)))  # the forgeml this test imported
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    return env


def _run(args, ranks, timeout=240):
    cmd = [sys.executable, SCRIPT, *map(str, args)]
    if ranks:
        cmd = [MPIRUN, "-n", str(ranks), "--oversubscribe", *cmd]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("kind", ["mlp", "cnn", "keras3_mlp", "subclassed"])
def test_two_ranks_equal_one_process_on_the_global_batch(kind, tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    one.mkdir()
    r = _run([kind, two, 64, 3], ranks=2)
    assert r.returncode == 0, r.stdout + r.stderr
    r = _run([kind, one, 64, 3], ranks=None)  # the same script, no mpirun: a world of one
    assert r.returncode == 0, r.stdout + r.stderr
    a, b, c = (np.load(p / "rank0.npz") for p in (two, two, one))
    b = np.load(two / "rank1.npz")
    weights = [k for k in a.files if k.startswith("arr_")]
    assert len(weights) >= 4
    for k in weights:
        np.testing.assert_array_equal(a[k], b[k])  # identical on every rank
        scale = np.abs(c[k]).max()
        np.testing.assert_allclose(a[k], c[k], rtol=0, atol=1e-5 * scale)  # float32 sum order only
    assert int(a["steps"]) == int(c["steps"]) > 0
    np.testing.assert_allclose(a["loss"], c["loss"], rtol=1e-5)  # metrics averaged over ranks
    np.testing.assert_allclose(a["accuracy"], c["accuracy"], atol=2 / 1000)
    np.testing.assert_array_equal(a["loss"], b["loss"])
    assert a["loss"][-1] < a["loss"][0]  # it trains
    assert float(a["allreduce_seconds"]) > 0 and float(c["allreduce_seconds"]) == 0


def test_a_rank_without_data_fails_the_job_without_hanging(tmp_path):
    r = _run(["empty_rank_mlp", tmp_path, 64, 1], ranks=2, timeout=120)
    assert r.returncode != 0
    assert "training data is empty" in r.stdout + r.stderr
    assert not list(tmp_path.iterdir())


def test_shard_and_single_process_world():
    import forgeml.distributed as dist

    assert dist.size() == 1 and dist.rank() == 0 and dist.is_root()
    x = np.arange(10)
    np.testing.assert_array_equal(dist.shard(x), x)
    with pytest.raises(ValueError, match="array 1 has 3 rows"):
        dist.shard(x, x[:3])
    buf = np.ones(5, dtype=np.float32)
    dist.allreduce_mean(buf)
    np.testing.assert_array_equal(buf, 1)


def test_distributed_optimizer_keeps_name_config_and_kernel():
    import forgeml as tf
    import forgeml.distributed as dist

    opt = dist.DistributedOptimizer(tf.keras.optimizers.Adam(0.01, beta_1=0.8))
    assert isinstance(opt, tf.keras.optimizers.Adam) and type(opt).__name__ == "Adam"
    assert opt.get_config()["beta_1"] == 0.8 and dist.DistributedOptimizer(opt) is opt
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.layers.Input((4,)), tf.keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model.fit(x, np.arange(32) % 3, epochs=1, verbose=0)
    assert model.optimizer._kernel is not None  # the C++ update of the wrapped rule is kept
    assert model._fast is None  # the fused whole-epoch path has no all-reduce point: off
