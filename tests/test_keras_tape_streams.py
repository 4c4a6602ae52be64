"""Tape-trained models (subclassed, functional graphs, custom train_step) fed by Python generators,
keras.utils.PyDataset / Sequence and forgeml.data Datasets in fit / evaluate / predict, and
class_weight on the tape: the same numbers as the same batches given as arrays, and as Keras 3
(when installed) on the same weights."""

import numpy as np
import pytest

import forgeml
from forgeml import keras as fk
from keras_peer import real_keras

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def data(rng):
    x = rng.normal(size=(40, 5)).astype(np.float32)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)


class Net(fk.Model):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.a = fk.layers.Dense(6, activation="tanh")
        self.b = fk.layers.Dense(2, activation="softmax")

    def call(self, x):
        return self.b(self.a(x))


class Batches(fk.utils.PyDataset):
    def __init__(self, x, y, bs=8, **kw):
        super().__init__(**kw)
        self.x, self.y, self.bs = x, y, bs

    def __len__(self):
        return len(self.x) // self.bs

    def __getitem__(self, i):
        s = slice(i * self.bs, (i + 1) * self.bs)
        return self.x[s], self.y[s]


class SeqBatches(fk.utils.Sequence):
    """The Keras 2 spelling, without calling the base __init__ (old Sequence code often does not)."""

    def __init__(self, x, y, bs=8):
        self.x, self.y, self.bs = x, y, bs

    __len__ = Batches.__len__
    __getitem__ = Batches.__getitem__


def _pair(x):
    a, b = Net(), Net()
    a(x[:2])
    b(x[:2])
    b.set_weights(a.get_weights())
    for m in (a, b):
        m.compile(fk.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"], run_eagerly=True)
    return a, b


def _gen(x, y, bs=8, sw=None):
    for s in range(0, len(x), bs):
        yield (x[s : s + bs], y[s : s + bs]) if sw is None else (x[s : s + bs], y[s : s + bs], sw[s : s + bs])


@pytest.mark.parametrize("kind", ["generator", "pydataset", "sequence", "dataset"])
def test_streams_train_like_arrays(kind, data):
    x, y = data
    streamed, arrays = _pair(x)
    if kind == "generator":
        source = _gen(x, y)
    elif kind == "pydataset":
        source = Batches(x, y)
    elif kind == "sequence":
        source = SeqBatches(x, y)
    else:
        source = forgeml.data.Dataset.from_tensor_slices((x, y)).batch(8)
    hist = streamed.fit(source, epochs=1, verbose=0, shuffle=False)
    arrays.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(streamed.get_weights(), arrays.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert set(hist.history) == {"loss", "accuracy"}
    ev = streamed.evaluate(forgeml.data.Dataset.from_tensor_slices((x, y)).batch(8), verbose=0)
    np.testing.assert_allclose(ev, arrays.evaluate(x, y, verbose=0), rtol=1e-6)
    pred = streamed.predict(_gen(x, y), verbose=0)
    np.testing.assert_allclose(pred, arrays.predict(x, verbose=0), rtol=1e-6)


def test_stream_validation_steps_and_custom_train_step(data):
    x, y = data
    calls = []

    class Custom(Net):
        def train_step(self, batch):
            calls.append(len(batch[0]))
            return super().train_step(batch)

    model = Custom()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])

    def forever():
        while True:
            yield from _gen(x, y)

    hist = model.fit(
        forever(), steps_per_epoch=3, epochs=2, verbose=0, validation_data=Batches(x, y), validation_steps=2
    )
    assert calls == [8] * 6
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_class_weight_on_the_tape_equals_sample_weight(data):
    x, y = data
    cw = {0: 0.3, 1: 2.5}
    a, b = _pair(x)
    a.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, class_weight=cw)
    b.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, sample_weight=np.where(y == 1, 2.5, 0.3))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
    c, _ = _pair(x)
    c.set_weights(_pair(x)[0].get_weights())
    c2, _ = _pair(x)
    c2.set_weights(c.get_weights())
    c.fit(_gen(x, y), epochs=1, verbose=0, class_weight=cw)
    c2.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, class_weight=cw)
    for wa, wb in zip(c.get_weights(), c2.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="single output"):
        fk.utils.set_random_seed(0)
        i = fk.Input((5,))
        two = fk.Model(i, [fk.layers.Dense(2)(i), fk.layers.Dense(2)(i)])
        two.compile("sgd", ["mse", "mse"])
        two.fit(x, [np.zeros((40, 2)), np.zeros((40, 2))], class_weight=cw, verbose=0)


def test_sequential_generator_takes_class_weight(data):
    x, y = data
    m1 = fk.Sequential([fk.Input((5,)), fk.layers.Dense(2, activation="softmax")])
    m2 = fk.Sequential([fk.Input((5,)), fk.layers.Dense(2, activation="softmax")])
    m2.set_weights(m1.get_weights())
    for m in (m1, m2):
        m.compile(fk.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    m1.fit(_gen(x, y), epochs=1, verbose=0, class_weight={0: 0.2, 1: 3.0})
    m2.fit(x, y, batch_size=8, shuffle=False, epochs=1, verbose=0, sample_weight=np.where(y == 1, 3.0, 0.2))
    for wa, wb in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6, atol=1e-7)


def test_functional_pydataset_matches_keras(data):
    real = real_keras()
    x, y = data

    def build(K):
        i = K.Input((5,))
        h = K.layers.Dense(6, activation="relu")(i)
        h2 = K.layers.Dense(6, activation="tanh")(i)
        return K.Model(i, K.layers.Dense(2, activation="softmax")(K.layers.Add()([h, h2])))

    class RealBatches(real.utils.PyDataset):
        def __init__(self, **kw):
            super().__init__(**kw)

        __len__ = Batches.__len__
        __getitem__ = Batches.__getitem__

    ours, theirs = build(fk), build(real)
    theirs.set_weights(ours.get_weights())
    src = RealBatches()
    src.x, src.y, src.bs = x, y, 8
    cw = {0: 0.5, 1: 1.7}
    ours.compile(fk.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    theirs.compile(real.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    ours.fit(Batches(x, y), epochs=2, shuffle=False, verbose=0, class_weight=cw)
    theirs.fit(src, epochs=2, shuffle=False, verbose=0, class_weight=cw)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-4, atol=1e-6)
