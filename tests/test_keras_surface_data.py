"""Data sources for fit / evaluate / predict (generators, keras.utils.PyDataset, forgeml.data.Dataset),
the tf.* names beside keras, keras.random and keras.backend.clear_session."""

import warnings

import numpy as np
import pytest

import forgeml as tf
from forgeml import keras
from keras_peer import real_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
RNG = np.random.default_rng(7)


def _xy(n=50):
    x = RNG.normal(size=(n, 3)).astype(np.float32)
    return x, (x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]


def test_dataset_pipeline_semantics():
    x = np.arange(10)
    ds = tf.data.Dataset.from_tensor_slices(x)
    assert [int(v) for v in ds] == list(range(10))
    batches = list(ds.batch(4))
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(list(ds.batch(4, drop_remainder=True))) == 2 == ds.batch(4, drop_remainder=True).cardinality()
    assert [int(v) for v in ds.map(lambda v: v * 10).take(3)] == [0, 10, 20]
    assert [int(v) for v in ds.skip(8)] == [8, 9]
    assert [int(v) for v in ds.filter(lambda v: v % 3 == 0)] == [0, 3, 6, 9]
    assert len(list(ds.repeat(3))) == 30 and ds.repeat().cardinality() == tf.data.INFINITE_CARDINALITY
    assert len(list(ds.repeat().take(25))) == 25
    sh = ds.shuffle(10, seed=3)
    p1, p2 = [int(v) for v in sh], [int(v) for v in sh]
    assert sorted(p1) == list(range(10)) and p1 != p2  # reshuffled every pass
    fixed = ds.shuffle(10, seed=3, reshuffle_each_iteration=False)
    assert [int(v) for v in fixed] == [int(v) for v in fixed]
    shb = [b.tolist() for b in ds.shuffle(10, seed=1).batch(3)]
    assert sorted(sum(shb, [])) == list(range(10)) and [len(b) for b in shb] == [3, 3, 3, 1]
    pairs = tf.data.Dataset.from_tensor_slices((x, x * 2)).batch(5)
    a, b = next(iter(pairs))
    np.testing.assert_array_equal(b, a * 2)
    d = next(iter(tf.data.Dataset.from_tensor_slices({"u": x, "v": -x}).batch(2)))
    np.testing.assert_array_equal(d["v"], [0, -1])
    assert list(ds.batch(4).unbatch().as_numpy_iterator()) == list(range(10))
    gen = tf.data.Dataset.from_generator(lambda: iter([(1, 2), (3, 4)]))
    assert [tuple(e) for e in gen] == [(1, 2), (3, 4)]
    with pytest.raises(ValueError, match="same first dimension"):
        tf.data.Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))
    assert tf.data.Dataset.from_tensor_slices([0.5, 1.5]).element_spec[1] == np.float32


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y, batch):
        super().__init__()
        self.x, self.y, self.batch, self.epochs_seen = x, y, batch, 0

    def __len__(self):
        return -(-len(self.x) // self.batch)

    def __getitem__(self, i):
        s = slice(i * self.batch, (i + 1) * self.batch)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs_seen += 1


def _linear(k, lr=0.05):
    m = k.Sequential([k.Input((3,)), k.layers.Dense(1)])
    m.compile(k.optimizers.SGD(lr), "mse")
    return m


def test_every_source_trains_like_the_arrays():
    """Same batches in the same order: arrays, PyDataset, Dataset and a generator give the same weights."""
    x, y = _xy(48)
    ref = _linear(keras)
    w0 = ref.get_weights()
    ref.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    sources = {
        "pydataset": lambda: Batches(x, y, 16),
        "dataset": lambda: tf.data.Dataset.from_tensor_slices((x, y)).batch(16),
        "generator": lambda: (Batches(x, y, 16)[i] for _ in range(3) for i in range(3)),
    }
    for name, make in sources.items():
        m = _linear(keras)
        m.set_weights(w0)
        kw = {"steps_per_epoch": 3} if name == "generator" else {}
        m.fit(make(), epochs=3, shuffle=False, verbose=0, **kw)
        for a, b in zip(m.get_weights(), ref.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=name)
        np.testing.assert_allclose(
            m.predict(make(), verbose=0, **({"steps": 3} if name == "generator" else {})),
            ref.predict(x, verbose=0),
            rtol=1e-6,
        )
        assert m.evaluate(make(), verbose=0) == pytest.approx(ref.evaluate(x, y, verbose=0), rel=1e-6)
    ds = Batches(x, y, 16)
    _linear(keras).fit(ds, epochs=2, verbose=0)
    assert ds.epochs_seen == 2


def test_pydataset_training_matches_keras():
    real = real_keras()
    x, y = _xy(48)

    class TheirBatches(real.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return x[i * 16 : (i + 1) * 16], y[i * 16 : (i + 1) * 16]

    ours, theirs = _linear(keras), _linear(real)
    theirs.set_weights(ours.get_weights())
    h1 = ours.fit(Batches(x, y, 16), epochs=3, shuffle=False, verbose=0)
    h2 = theirs.fit(TheirBatches(), epochs=3, shuffle=False, verbose=0)
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_exhausted_generator_stops_training_with_keras_warning():
    x, y = _xy(32)
    m = _linear(keras)
    with pytest.warns(UserWarning, match="ran out of data"):
        h = m.fit(iter([(x[:16], y[:16]), (x[16:], y[16:])]), steps_per_epoch=2, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 1


def test_tf_names_map_onto_numpy():
    c = tf.constant([[1.0, 2.0], [3.0, 5.0]])
    assert c.dtype == np.float32 and tf.constant(3).dtype == np.int32
    assert tf.reduce_mean(c) == pytest.approx(2.75) and tf.reduce_sum(c, axis=0).tolist() == [4.0, 7.0]
    assert tf.reduce_max(c, axis=1, keepdims=True).shape == (2, 1)
    assert tf.argmax(c).tolist() == [1, 1] and tf.argmax(c, axis=1).tolist() == [1, 1]
    np.testing.assert_array_equal(tf.one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    assert tf.cast(c, tf.int32).dtype == np.int32 and tf.convert_to_tensor([1.5]).dtype == np.float32
    assert tf.concat([c, c], axis=0).shape == (4, 2) and tf.shape(c).tolist() == [2, 2]
    tf.random.set_seed(5)
    a = tf.random.normal((3,))
    tf.random.set_seed(5)
    np.testing.assert_array_equal(a, tf.random.normal((3,)))
    assert tf.random.uniform((4,), 0, 10, dtype=tf.int32).dtype == np.int32
    with pytest.raises(AttributeError, match="no attribute 'reduce_meen'"):
        tf.reduce_meen  # noqa: B018


def test_keras_random_and_clear_session():
    a = keras.random.normal((4,), seed=3)
    np.testing.assert_array_equal(a, keras.random.normal((4,), seed=3))
    gen = keras.random.SeedGenerator(1)
    assert not np.array_equal(keras.random.uniform((4,), seed=gen), keras.random.uniform((4,), seed=gen))
    t = keras.random.truncated_normal((2000,), stddev=2.0, seed=0)
    assert np.abs(t).max() <= 4.0 and abs(t.std() - 1.76) < 0.1  # truncation at 2 sigma shrinks the spread
    assert set(np.unique(keras.random.randint((100,), 0, 3, seed=1))) == {0, 1, 2}
    keras.backend.clear_session()
    assert keras.layers.Dense(2).name == "dense"
    assert keras.layers.Dense(2).name == "dense_1"


def test_split_and_timeseries_helpers():
    x = np.arange(20)
    left, right = keras.utils.split_dataset(x, left_size=0.75)
    assert len(list(left)) == 15 and [int(v) for v in right] == list(range(15, 20))
    ds = keras.utils.timeseries_dataset_from_array(x, x + 100, sequence_length=4, sequence_stride=2, batch_size=3)
    xb, yb = next(iter(ds))
    np.testing.assert_array_equal(xb, [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]])
    np.testing.assert_array_equal(yb, [100, 102, 104])  # Keras's own needs TensorFlow: checked by hand
    assert sum(len(b[0]) for b in ds) == 9  # starts 0, 2, ..., 16


def test_generator_input_without_steps_runs_one_pass():
    x, y = _xy(40)
    m = _linear(keras)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = m.fit((Batches(x, y, 10)[i] for i in range(4)), epochs=1, verbose=0)
    assert len(h.history["loss"]) == 1
