"""forgeml.keras on device "cuda": training, evaluation, prediction and save/load of Dense, Conv2D,
pooling and recurrent models with each optimizer, against the same program on the CPU.

Each test runs twice through the ``cupy`` fixture (tests/conftest.py): on a real GPU with CuPy
(marked gpu, skipped without one) and on the CuPy stand-in with "cuda" work on forgeml._emu (the
CUDA kernels under the SIMT emulator), so the Python device path runs in every test run. Shapes
are small: the emulator runs one fiber per CUDA thread."""

import numpy as np
import pytest

import forgeml
from forgeml import keras


def _data(n, shape, classes, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    y = (x.reshape(n, -1)[:, :classes].argmax(1) + (x.reshape(n, -1).sum(1) > 0)) % classes
    return x, y


def _mlp():
    return keras.Sequential(
        [
            keras.Input(shape=(13,)),
            keras.layers.Dense(17, activation="relu"),
            keras.layers.Dense(9, activation="tanh"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def _cnn():
    return keras.Sequential(
        [
            keras.Input(shape=(9, 8, 3)),
            keras.layers.Conv2D(5, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(4, (2, 3), strides=1, activation="tanh"),
            keras.layers.AveragePooling2D(2, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def _rnn(kind):
    layer = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN}[kind]
    return keras.Sequential(
        [
            keras.Input(shape=(6, 5)),
            layer(7, return_sequences=True),
            layer(4),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def _twins(build, optimizer, cupy):
    """The same model, same initial weights, on the CPU and on device "cuda"."""
    keras.utils.set_random_seed(3)
    cpu = build()
    with forgeml.device("cuda"):
        gpu = build()
    gpu.set_weights(cpu.get_weights())
    for m in (cpu, gpu):
        m.compile(
            optimizer=keras.optimizers.get(optimizer), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    return cpu, gpu


def _close(got, want, cupy, tol):
    if isinstance(got, cupy.ndarray):
        got = cupy.asnumpy(got)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def _fit_both(cpu, gpu, x, y, cupy, epochs=2):
    h_cpu = cpu.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0)
    h_gpu = gpu.fit(cupy.asarray(x), cupy.asarray(y), epochs=epochs, batch_size=16, shuffle=False, verbose=0)
    np.testing.assert_allclose(h_gpu.history["loss"], h_cpu.history["loss"], rtol=2e-4, atol=2e-5)
    for wg, wc in zip(gpu.get_weights(), cpu.get_weights()):
        assert isinstance(wg, np.ndarray)  # get_weights gives NumPy, as Keras does
        np.testing.assert_allclose(wg, wc, rtol=1e-3, atol=2e-5)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_dense_fit_matches_cpu(optimizer, cupy, copies):
    x, y = _data(53, (13,), 3, seed=1)
    cpu, gpu = _twins(_mlp, optimizer, cupy)
    assert all(type(w.value) is cupy.ndarray for w in gpu.weights)
    _fit_both(cpu, gpu, x, y, cupy)
    xd = cupy.asarray(x)
    if copies is not None:
        copies.reset()
    probs = gpu.predict(xd, verbose=0)
    assert isinstance(probs, cupy.ndarray)
    if copies is not None:  # CuPy in, CuPy out, weights on the device: nothing crosses
        assert (copies.h2d, copies.d2h) == (0, 0)
    _close(probs, cpu.predict(x, verbose=0), cupy, 1e-4)
    loss_c, acc_c = cpu.evaluate(x, y, verbose=0)
    loss_g, acc_g = gpu.evaluate(xd, cupy.asarray(y), verbose=0)
    assert isinstance(loss_g, float)
    np.testing.assert_allclose([loss_g, acc_g], [loss_c, acc_c], rtol=1e-4, atol=1e-5)


def test_dense_fit_stays_on_device(cupy, copies):
    """An epoch on device data moves no array from the device, and one to it: the epoch's shuffle
    permutation (drawn by the host generator, so a seed gives the same order on either device).
    The running loss and metrics are scalar reads."""
    if copies is None:
        pytest.skip("copy counts are kept by the CuPy stand-in only")
    x, y = _data(64, (13,), 3, seed=2)
    _, gpu = _twins(_mlp, "adam", cupy)
    xd, yd = cupy.asarray(x), cupy.asarray(y)
    gpu.fit(xd, yd, epochs=1, batch_size=16, verbose=0)  # builds the optimizer state
    copies.reset()
    gpu.fit(xd, yd, epochs=2, batch_size=16, verbose=0)
    assert (copies.h2d, copies.d2h) == (2, 0)
    assert copies.scalars <= 2 * 8 * 4  # a few scalar reads per step at most, not per sample


def test_cnn_fit_predict_save_load(cupy, tmp_path):
    x, y = _data(24, (9, 8, 3), 3, seed=4)
    cpu, gpu = _twins(_cnn, "adam", cupy)
    _fit_both(cpu, gpu, x, y, cupy, epochs=1)
    path = tmp_path / "cnn.keras"
    gpu.save(path)
    with forgeml.device("cuda"):
        back = keras.models.load_model(path)
    probs = back.predict(cupy.asarray(x), verbose=0)
    assert isinstance(probs, cupy.ndarray)
    _close(probs, cpu.predict(x, verbose=0), cupy, 1e-4)
    on_cpu = keras.models.load_model(path)  # a model saved from the GPU loads on the CPU
    np.testing.assert_allclose(on_cpu.predict(x, verbose=0), cupy.asnumpy(probs), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm", "gru"])
def test_recurrent_fit_matches_cpu(kind, cupy):
    x, y = _data(20, (6, 5), 3, seed=5)
    cpu, gpu = _twins(lambda: _rnn(kind), "rmsprop" if kind == "gru" else "sgd", cupy)
    _fit_both(cpu, gpu, x, y, cupy, epochs=1)
    _close(gpu.predict(cupy.asarray(x), verbose=0), cpu.predict(x, verbose=0), cupy, 1e-4)


def test_numpy_input_to_a_device_model(cupy):
    """NumPy data (float64, as users often pass it) given to a model on the GPU is converted and
    moved there once; results come back as CuPy float32."""
    x, y = _data(21, (13,), 3, seed=6)
    x = x.astype(np.float64)
    sw = np.linspace(0.5, 2.0, len(y))
    cpu, gpu = _twins(_mlp, "sgd", cupy)
    probs = gpu.predict(x, verbose=0)
    assert isinstance(probs, cupy.ndarray) and probs.dtype == np.float32
    _close(probs, cpu.predict(x, verbose=0), cupy, 1e-4)
    h_c = cpu.fit(x, y, sample_weight=sw, epochs=1, batch_size=8, shuffle=False, verbose=0)
    h_g = gpu.fit(x, y, sample_weight=sw, epochs=1, batch_size=8, shuffle=False, verbose=0)
    np.testing.assert_allclose(h_g.history["loss"], h_c.history["loss"], rtol=2e-4)
    for layer in gpu.layers:
        for w in layer.weights:
            assert type(w.value) is cupy.ndarray and w.value.dtype == np.float32
