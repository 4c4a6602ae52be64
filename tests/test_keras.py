"""forgeml.keras end to end: the reference program, training correctness, saving, determinism,
frozen layers, callbacks, optimizers and clear errors."""
import math

import numpy as np
import pytest

import forgeml
import forgeml as tf
from forgeml import keras
from conftest import supported_isas


def teacher_data(n=3000, d=100, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    w1 = rng.normal(size=(d, 32)) / np.sqrt(d)
    w2 = rng.normal(size=(32, classes))
    y = (np.tanh(x @ w1) @ w2).argmax(1)
    return x, y


def reference_model():
    model = tf.keras.Sequential([
        tf.keras.layers.Dense(64, activation='relu', input_shape=(100,)),
        tf.keras.layers.Dense(32, activation='relu'),
        tf.keras.layers.Dense(10, activation='softmax')
    ])
    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', metrics=['accuracy'])
    return model


def test_reference_program_learns(capsys):
    keras.utils.set_random_seed(0)
    x_train, y_train = teacher_data()
    model = reference_model()
    history = model.fit(x_train, y_train, epochs=10)
    out = capsys.readouterr().out
    assert "Epoch 10/10" in out and "94/94 ━━━━━━━━━━━━━━━━━━━━" in out and "- accuracy: " in out
    assert history.history["accuracy"][-1] > 0.85
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.epoch == list(range(10))
    assert [w.shape for w in model.get_weights()] == [(100, 64), (64,), (64, 32), (32,), (32, 10), (10,)]
    loss, acc = model.evaluate(x_train, y_train, verbose=0)
    assert acc > 0.85
    probs = model.predict(x_train[:50], verbose=0)
    assert probs.shape == (50, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)


def test_digits_mlp():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    keras.utils.set_random_seed(42)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = keras.Sequential([keras.Input(shape=(64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=30, batch_size=32, verbose=0, validation_split=0.1)
    _, acc = model.evaluate(xte, yte, verbose=0)
    assert acc >= 0.95


def _small_model(opt):
    model = keras.Sequential([keras.layers.Dense(4, activation="relu", input_shape=(3,)),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    return model


def _hand_grads(x, y, w1, b1, w2, b2):
    """Hand-derived backprop of mean sparse cross-entropy through relu -> softmax (float64)."""
    n = x.shape[0]
    z1 = x @ w1 + b1
    h = np.maximum(z1, 0)
    z2 = h @ w2 + b2
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(n), y]).mean()
    dz2 = p.copy()
    dz2[np.arange(n), y] -= 1
    dz2 /= n
    dw2, db2 = h.T @ dz2, dz2.sum(0)
    dz1 = (dz2 @ w2.T) * (z1 > 0)
    return loss, [x.T @ dz1, dz1.sum(0), dw2, db2]


def test_one_sgd_step_matches_numpy():
    rng = np.random.default_rng(3)
    ws = [rng.normal(size=(3, 4)), rng.normal(size=4) * 0.1, rng.normal(size=(4, 3)), rng.normal(size=3) * 0.1]
    x = rng.normal(size=(7, 3))
    y = rng.integers(0, 3, 7)
    model = _small_model(keras.optimizers.SGD(learning_rate=0.1))
    model.set_weights([w.astype(np.float32) for w in ws])
    loss = model.train_on_batch(x, y)
    ref_loss, grads = _hand_grads(x, y, *ws)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for got, w, g in zip(model.get_weights(), ws, grads):
        np.testing.assert_allclose(got, w - 0.1 * g, rtol=1e-5, atol=1e-6)


def _ref_update(name, w, g, state, t, lr=0.01):
    if name == "sgd_momentum":
        m = state.setdefault("m", np.zeros_like(w))
        m[:] = 0.9 * m - lr * g
        return w + m
    if name == "nesterov":
        m = state.setdefault("m", np.zeros_like(w))
        m[:] = 0.9 * m - lr * g
        return w + 0.9 * m - lr * g
    if name in ("adam", "adamw"):
        if name == "adamw":
            w = w - w * 0.004 * lr
        m = state.setdefault("m", np.zeros_like(w))
        v = state.setdefault("v", np.zeros_like(w))
        m[:] = 0.9 * m + 0.1 * g
        v[:] = 0.999 * v + 0.001 * g * g
        alpha = lr * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        return w - alpha * m / (np.sqrt(v) + 1e-7)
    if name == "rmsprop":
        v = state.setdefault("v", np.zeros_like(w))
        v[:] = 0.9 * v + 0.1 * g * g
        return w - lr * g / np.sqrt(v + 1e-7)
    raise AssertionError(name)


@pytest.mark.parametrize("kernel", [True, False], ids=["cpp", "numpy"])
@pytest.mark.parametrize("name", ["sgd_momentum", "nesterov", "adam", "adamw", "rmsprop"])
def test_optimizer_steps_match_formulas(name, kernel):
    opt = {"sgd_momentum": keras.optimizers.SGD(0.01, momentum=0.9),
           "nesterov": keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
           "adam": keras.optimizers.Adam(0.01), "adamw": keras.optimizers.AdamW(0.01),
           "rmsprop": keras.optimizers.RMSprop(0.01)}[name]
    rng = np.random.default_rng(5)
    p = rng.normal(size=37).astype(np.float32)
    g = np.empty_like(p)
    opt.build(p, g, [(0, 20), (20, 37)], [(0, 37)])
    assert opt._kernel is not None
    if not kernel:
        opt._kernel = None  # the array-module path (what CuPy buffers use)
    ref, state = p.astype(np.float64), {}
    for t in range(1, 4):
        g[:] = rng.normal(size=37)
        ref = _ref_update(name, ref, g.astype(np.float64), state, t)
        opt.apply()
        np.testing.assert_allclose(p, ref, rtol=2e-5, atol=1e-6)
    assert int(opt.iterations) == 3


def test_clipnorm_and_schedule():
    opt = keras.optimizers.SGD(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5),
                               clipnorm=1.0)
    p = np.zeros(6, np.float32)
    g = np.array([3, 4, 0, 0.3, 0.4, 0], np.float32)
    opt.build(p, g, [(0, 3), (3, 6)], [(0, 6)])
    assert float(opt.learning_rate) == pytest.approx(0.1)
    opt.apply()
    np.testing.assert_allclose(p, [-0.06, -0.08, 0, -0.03, -0.04, 0], rtol=1e-6)  # first var clipped to norm 1
    opt.iterations.assign(10)
    assert float(opt.learning_rate) == pytest.approx(0.05)
    staircase = keras.optimizers.schedules.ExponentialDecay(1.0, 4, 0.5, staircase=True)
    assert staircase(7) == 0.5 and staircase(8) == 0.25


def test_save_load_round_trip(tmp_path):
    keras.utils.set_random_seed(1)
    x, y = teacher_data(400)
    model = keras.Sequential([keras.Input(shape=(100,)), keras.layers.Dense(16, activation="tanh"),
                              keras.layers.BatchNormalization(), keras.layers.Dropout(0.2),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.AdamW(2e-3, clipnorm=1.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    import zipfile
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["config.json", "metadata.json", "model.weights.npz"]
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert isinstance(loaded.optimizer, keras.optimizers.AdamW) and loaded.optimizer.clipnorm == 1.0
    # training continues identically (optimizer state restored)
    keras.utils.set_random_seed(9)
    model.fit(x, y, epochs=1, verbose=0)
    keras.utils.set_random_seed(9)
    loaded.fit(x, y, epochs=1, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    wpath = tmp_path / "w.weights.h5"
    model.save_weights(wpath)
    fresh = keras.models.clone_model(model)
    fresh.load_weights(wpath)
    np.testing.assert_array_equal(fresh.predict(x[:20], verbose=0), model.predict(x[:20], verbose=0))


@pytest.mark.parametrize("dropout", [True, False], ids=["layer-path", "fused-path"])
def test_same_seed_same_run(dropout):
    x, y = teacher_data(1200)

    def run(threads):
        forgeml.set_num_threads(threads)
        keras.utils.set_random_seed(123)
        model = keras.Sequential([keras.layers.Dense(256, activation="relu", input_shape=(100,))] +
                                 ([keras.layers.Dropout(0.3)] if dropout else []) +
                                 [keras.layers.Dense(10, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        h = model.fit(x, y, epochs=2, batch_size=600, verbose=0)  # big enough for threaded matmuls
        return model.get_weights(), h.history

    before = forgeml.get_num_threads()
    try:
        w1, h1 = run(1)
        w2, h2 = run(2)
        w3, h3 = run(1)
    finally:
        forgeml.set_num_threads(before)
    assert h1 == h2 == h3
    for a, b, c in zip(w1, w2, w3):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_frozen_layers_are_not_updated():
    keras.utils.set_random_seed(2)
    x, y = teacher_data(300)
    model = keras.Sequential([keras.layers.Dense(16, activation="relu", input_shape=(100,)),
                              keras.layers.BatchNormalization(), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.layers[0].trainable = False
    model.layers[1].trainable = False
    model.layers[1].moving_mean.assign(np.full(16, 0.5))
    before = model.get_weights()
    model.fit(x, y, epochs=2, verbose=0)
    after = model.get_weights()
    for i in range(6):  # dense kernel, bias; bn gamma, beta, moving mean, moving variance
        np.testing.assert_array_equal(before[i], after[i])
    for i in range(6, 10):
        assert not np.array_equal(before[i], after[i])
    assert len(model.trainable_weights) == 4 and len(model.non_trainable_weights) == 6
    model.layers[0].trainable = True  # unfreezing takes effect at the next fit
    model.fit(x, y, epochs=1, verbose=0)
    assert not np.array_equal(model.get_weights()[0], after[0])


def test_bad_inputs_give_clear_errors():
    model = reference_model()
    x, y = teacher_data(64)
    with pytest.raises(ValueError, match=r'expected axis -1 of input shape to have value 100, but received input '
                                         r'with shape \(64, 50\)'):
        model.fit(x[:, :50], y, verbose=0)
    with pytest.raises(ValueError, match=r"label value of 10 which is outside the valid range of \[0, 10\)"):
        model.fit(x, np.where(y == 0, 10, y), verbose=0)
    with pytest.raises(ValueError, match=r"label value of -1"):
        model.evaluate(x, np.full(64, -1), verbose=0)
    with pytest.raises(ValueError, match="Could not interpret loss identifier: 'sparse_crossentropy'"):
        model.compile(optimizer="adam", loss="sparse_crossentropy")
    with pytest.raises(ValueError, match="Could not interpret optimizer identifier: 'adamx'"):
        model.compile(optimizer="adamx", loss="mse")
    with pytest.raises(ValueError, match="Could not interpret activation"):
        keras.layers.Dense(3, activation="swishy")
    with pytest.raises(ValueError, match="Data cardinality is ambiguous"):
        model.fit(x, y[:10], verbose=0)
    with pytest.raises(ValueError, match="units"):
        keras.layers.Dense(0)
    with pytest.raises(TypeError, match="Unrecognized keyword arguments"):
        keras.layers.Dense(3, activaton="relu")
    fresh = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
    with pytest.raises(RuntimeError, match="compile"):
        fresh.fit(np.ones((4, 3)), np.ones(4), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.predict(x, batch_size=0)


def test_cuda_device_without_gpu_is_a_clear_error():
    if forgeml.cuda.is_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(RuntimeError, match="cannot run CUDA kernels"):
        with forgeml.device("cuda"):
            keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])


def test_callbacks(tmp_path):
    keras.utils.set_random_seed(4)
    x, y = teacher_data(500)
    model = reference_model()
    seen = []
    ckpt = tmp_path / "best.keras"
    cbs = [keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0),
           keras.callbacks.ModelCheckpoint(str(ckpt), monitor="loss", save_best_only=True),
           keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.01 / (epoch + 1)),
           keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(logs["loss"]))]
    h = model.fit(x, y, epochs=5, verbose=0, callbacks=cbs, batch_size=100)
    assert len(h.epoch) == 2  # no 10.0 improvement after the first epoch: stop at the second
    assert h.history["learning_rate"] == [0.01, 0.005]
    assert len(seen) == 10 and all(np.isfinite(seen))
    assert ckpt.exists() and keras.models.load_model(ckpt).count_params() == model.count_params()


def test_validation_weights_and_metrics():
    keras.utils.set_random_seed(5)
    x, y = teacher_data(400, classes=3)
    model = keras.Sequential([keras.layers.Dense(8, activation="relu", input_shape=(100,)),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy", "mae"])
    yc = keras.utils.to_categorical(y, 3)
    h = model.fit(x, yc, epochs=2, validation_data=(x[:50], yc[:50]), verbose=0,
                  class_weight={0: 1.0, 1: 2.0, 2: 0.5})
    assert set(h.history) == {"loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae"}
    res = model.evaluate(x[:50], yc[:50], verbose=0, return_dict=True)
    assert res["loss"] == pytest.approx(h.history["val_loss"][-1], rel=1e-6)
    # weighting all samples by 2 doubles the loss and leaves accuracy unchanged
    base = model.evaluate(x, yc, verbose=0)
    doubled = model.evaluate(x, yc, sample_weight=np.full(400, 2.0), verbose=0)
    assert doubled[0] == pytest.approx(2 * base[0], rel=1e-6) and doubled[1] == base[1]
    assert model.metrics_names == ["loss", "accuracy", "mae"]


def test_binary_regression_embedding_models():
    keras.utils.set_random_seed(6)
    rng = np.random.default_rng(6)
    ids = rng.integers(0, 20, (256, 5))
    target = (ids.sum(1) > 47).astype(np.float32)
    model = keras.Sequential([keras.layers.Embedding(20, 4, input_shape=(5,)), keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
    h = model.fit(ids, target, epochs=15, verbose=0)
    assert h.history["accuracy"][-1] > 0.8
    with pytest.raises(ValueError, match=r"ids must be in \[0, 20\)"):
        model.predict(ids + 5, verbose=0)
    x = rng.normal(size=(200, 6)).astype(np.float32)
    t = x @ rng.normal(size=(6, 2))
    reg = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="gelu"),
                            keras.layers.Reshape((2, 8)), keras.layers.Flatten(), keras.layers.Dense(2)])
    reg.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True), loss="mse", metrics=["mae"])
    h = reg.fit(x, t, epochs=20, verbose=0, batch_size=16)
    assert h.history["loss"][-1] < 0.2 * h.history["loss"][0]


def test_functional_chain_and_layer_api():
    inp = keras.Input(shape=(4,))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(3, activation="relu")(inp))
    model = keras.Model(inp, out)
    assert model.output_shape == (None, 2) and model.count_params() == 4 * 3 + 3 + 3 * 2 + 2
    layer = keras.layers.Dense(5)
    y = layer(np.ones((2, 7), np.float32))
    assert y.shape == (2, 5) and layer.kernel.shape == (7, 5) and layer.bias.shape == (5,)
    np.testing.assert_allclose(layer.bias.numpy(), 0)
    lim = math.sqrt(6 / 12)
    assert np.abs(layer.kernel.numpy()).max() <= lim
    emb = keras.layers.Embedding(10, 3)
    emb(np.zeros((1, 2), np.int64))
    assert np.abs(emb.embeddings.numpy()).max() <= 0.05
    assert keras.utils.to_categorical([0, 2], 3).tolist() == [[1, 0, 0], [0, 0, 1]]


def test_summary_and_progress_formats(capsys):
    model = reference_model()
    model.summary()
    out = capsys.readouterr().out
    assert 'Model: "' in out and "│ dense" in out and "(None, 64)" in out and "6,464" in out
    assert "Total params: 8,874 (34.66 KB)" in out
    x, y = teacher_data(100)
    model.fit(x, y, epochs=1, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "Epoch 1/1" and lines[1].startswith("4/4 - ") and "step - accuracy: " in lines[1]
    model.evaluate(x, y)
    assert capsys.readouterr().out.startswith("4/4 ━━━━━━━━━━━━━━━━━━━━ ")


def test_train_and_test_on_batch():
    keras.utils.set_random_seed(8)
    x, y = teacher_data(64)
    model = reference_model()
    loss, acc = model.train_on_batch(x, y)
    assert np.isfinite(loss) and 0 <= acc <= 1
    logs = model.test_on_batch(x, y, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}
    p = model.predict_on_batch(x[:3])
    np.testing.assert_allclose(p, model.predict(x[:3], verbose=0), rtol=1e-6)


@pytest.mark.parametrize("opt, from_logits, weighted", [
    (lambda: keras.optimizers.Adam(2e-3, clipnorm=0.5), False, False),
    (lambda: keras.optimizers.AdamW(learning_rate=keras.optimizers.schedules.ExponentialDecay(3e-3, 5, 0.9),
                                    amsgrad=True), False, True),
    (lambda: keras.optimizers.RMSprop(1e-3, momentum=0.5, centered=True, global_clipnorm=2.0), True, False),
    (lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True, clipvalue=0.1), False, True),
    (lambda: keras.optimizers.SGD(0.1), True, False),
    (lambda: keras.optimizers.Adam(3e-3), "onehot", False),
])
@pytest.mark.parametrize("isa", supported_isas("portable"), indirect=True)
def test_fused_dense_path_matches_layer_path(monkeypatch, opt, from_logits, weighted, isa):
    """The one-call-per-epoch C++ step and the layer-by-layer path train the same model alike,
    on every SIMD path of the elementwise kernels."""
    _run_fused_vs_layer(monkeypatch, opt, from_logits, weighted)


@pytest.mark.parametrize("threads", [2, 3])
def test_fused_dense_path_splits_big_batches_over_threads(monkeypatch, restore_threads, threads):
    """Batches of 150 rows run as row slices on the threads, their gradients summed: the same
    training as the layer path (the last batch of 33 rows runs whole)."""
    import forgeml

    forgeml.set_num_threads(threads)
    _run_fused_vs_layer(monkeypatch, lambda: keras.optimizers.Adam(2e-3), False, True, batch_size=150)


def _run_fused_vs_layer(monkeypatch, opt, from_logits, weighted, batch_size=25):
    from forgeml.keras import _fast
    x, y = teacher_data(333, d=20, classes=5)
    sw = np.random.default_rng(1).uniform(0.5, 2, 333) if weighted else None

    def run(fast):
        monkeypatch.setattr(_fast, "ENABLED", fast)
        keras.utils.set_random_seed(11)
        model = keras.Sequential([keras.layers.Dense(17, activation="tanh", input_shape=(20,)),
                                  keras.layers.Dense(9, activation="sigmoid"),
                                  keras.layers.Dense(13, activation="relu", use_bias=False),
                                  keras.layers.Dense(5, activation=None if from_logits is True else "softmax")])
        if from_logits == "onehot":
            loss, targets = "categorical_crossentropy", keras.utils.to_categorical(y, 5)
        else:
            loss, targets = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), y
        model.compile(optimizer=opt(), metrics=["accuracy"], loss=loss)
        model._ready()
        assert (model._fast is not None) == fast
        h = model.fit(x, targets, epochs=3, batch_size=batch_size, verbose=0, sample_weight=sw)
        return model.get_weights(), h.history, int(model.optimizer.iterations)

    w_fast, h_fast, it_fast = run(True)
    w_ref, h_ref, it_ref = run(False)
    assert it_fast == it_ref == 3 * -(-333 // batch_size)
    for a, b in zip(w_fast, w_ref):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-4)
    np.testing.assert_allclose(h_fast["loss"], h_ref["loss"], rtol=1e-4)
    np.testing.assert_allclose(h_fast["accuracy"], h_ref["accuracy"], atol=1.5 / 333)


def test_fused_dense_forward_matches():
    from forgeml import ops
    keras.utils.set_random_seed(12)
    model = reference_model()
    x, _ = teacher_data(77)
    from forgeml.keras._fast import DensePlan, _optimizer_spec
    model.predict(x[:1], verbose=0)
    model._metrics = []
    plan = DensePlan(model, _optimizer_spec(model.optimizer))
    probs = ops.dense_forward(plan.layout, x, model._params, batch_size=16)
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"x: expected shape \(n, 100\)"):
        ops.dense_forward(plan.layout, x[:, :5], model._params)
    opt = model.optimizer
    model._ready()
    kw = dict(optimizer=plan.kind, hyper=plan.hyper, slots=opt.slots, lrs=1e-3, t0=0, batch_size=8)
    with pytest.raises(ValueError, match=r"y: label 10 at row 3 is outside \[0, 10\)"):
        ops.dense_train_steps(plan.layout, x[:5], np.array([0, 1, 2, 10, 4]), model._params, model._grads, **kw)
    with pytest.raises(ValueError, match="perm: entry 1 is not a row index"):
        ops.dense_train_steps(plan.layout, x[:3], np.zeros(3), model._params, model._grads, perm=[0, 7, 1], **kw)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside Keras's own Variable.__array__
def test_matches_keras3_on_jax():
    """Same initial weights, no shuffling: forgeml.keras and Keras 3 (JAX backend) train alike."""
    import os
    import sys
    pytest.importorskip("jax")
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "jax")
    real = pytest.importorskip("keras")
    if real.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend here")
    x, y = teacher_data(640)

    def build(k, opt):
        m = k.Sequential([k.Input(shape=(100,)), k.layers.Dense(32, activation="relu"),
                          k.layers.Dense(10, activation="softmax")])
        m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return m
    for make in (lambda k: k.optimizers.AdamW(2e-3, clipnorm=0.5),
                 lambda k: k.optimizers.SGD(0.05, momentum=0.9, nesterov=True)):
        ours, theirs = build(keras, make(keras)), build(real, make(real))
        theirs.set_weights(ours.get_weights())
        h1 = ours.fit(x, y, epochs=2, shuffle=False, verbose=0)
        h2 = theirs.fit(x, y, epochs=2, shuffle=False, verbose=0)
        for a, b in zip(ours.get_weights(), theirs.get_weights()):
            np.testing.assert_allclose(a, b, atol=5e-5)
        np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-5)
        np.testing.assert_allclose(h1.history["accuracy"], h2.history["accuracy"], atol=1e-6)


def test_more_api(tmp_path, capsys):
    keras.utils.set_random_seed(13)
    x, y = teacher_data(300)
    model = reference_model()
    assert model.summary() is None and "Total params" in capsys.readouterr().out
    cbs = [keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=5.0, restore_best_weights=True),
           keras.callbacks.ModelCheckpoint(str(tmp_path / "w{epoch:02d}.weights.h5"), save_weights_only=True)]
    h = model.fit(x, y, epochs=6, verbose=0, callbacks=cbs)
    assert len(h.epoch) == 2 and (tmp_path / "w02.weights.h5").exists()  # Keras: stop once wait >= patience
    import json
    cfg = json.loads(model.to_json())
    assert cfg["class_name"] == "Sequential" and cfg["config"]["layers"][1]["class_name"] == "Dense"
    again = keras.models.model_from_json(model.to_json())
    assert [l.units for l in again.layers] == [64, 32, 10] and again.count_params() == model.count_params()
    popped = model.pop()
    assert popped.units == 10 and model.output_shape == (None, 32)
    with pytest.raises(ValueError, match=r"filepath provided must end in `.keras`"):
        keras.callbacks.ModelCheckpoint(str(tmp_path / "m.h5"))
    with pytest.raises(ValueError, match="total size of the new array must be unchanged"):
        keras.Sequential([keras.Input((6,)), keras.layers.Reshape((4, 2))])
    unbuilt = keras.Sequential([keras.layers.Dense(3)])
    unbuilt.summary()
    assert "unbuilt" in capsys.readouterr().out
    with pytest.raises(ValueError, match="Invalid filepath extension"):
        model.save(str(tmp_path / "m.h5"))
    with pytest.raises(ValueError, match="allow|File format not supported"):
        (tmp_path / "bad.keras").write_bytes(b"not a zip")
        keras.models.load_model(tmp_path / "bad.keras")


def test_a_new_layer_needs_no_model_changes(tmp_path):
    """Part 2 adds layers (convolution, pooling, recurrent) the way this one is added: subclass,
    build / forward / backward / get_config; training, summary and saving just work."""
    @keras.saving.register_keras_serializable()
    class Scale(keras.layers.Layer):
        def __init__(self, init=1.0, **kwargs):
            super().__init__(**kwargs)
            self.init = init

        def build(self, input_shape):
            self.w = self.add_weight((input_shape[-1],), keras.initializers.Constant(self.init), "w")

        def forward(self, x, training=False):
            self._x = x
            return x * self.w.value

        def backward(self, dy, need_dx=True):
            if self.trainable:
                (dy * self._x).sum(axis=0, out=self.w.grad)
            return dy * self.w.value if need_dx else None

        def get_config(self):
            return {**super().get_config(), "init": self.init}

    keras.utils.set_random_seed(21)
    x, y = teacher_data(256, d=10, classes=3)
    model = keras.Sequential([keras.Input((10,)), Scale(0.5), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.layers[0].get_weights()[0].copy()
    model.fit(x, y, epochs=3, verbose=0)
    assert not np.array_equal(before, model.layers[0].get_weights()[0])
    path = tmp_path / "custom.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.layers[0]).__name__ == "Scale" and loaded.layers[0].init == 0.5
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_soft_targets_fall_back_to_the_layer_path():
    keras.utils.set_random_seed(22)
    x, y = teacher_data(200, d=20, classes=4)
    soft = keras.utils.to_categorical(y, 4) * 0.9 + 0.025
    model = keras.Sequential([keras.layers.Dense(4, activation="softmax", input_shape=(20,))])
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    model._ready()
    assert model._fast is not None and model._fast.labels(model._prepare_y(soft, 200)) is None
    h = model.fit(x, soft, epochs=2, verbose=0)
    assert h.history["loss"][1] < h.history["loss"][0]
    assert int(model.optimizer.iterations) == 14


def test_default_layer_names_follow_keras():
    # Keras' to_snake_case: digits do not start a new word ("conv2d", not "conv2_d")
    from forgeml.keras.layers.base import _snake
    names = {"Conv2D": "conv2d", "MaxPooling2D": "max_pooling2d", "SimpleRNN": "simple_rnn",
             "GlobalAveragePooling2D": "global_average_pooling2d", "ReLU": "re_lu", "LSTM": "lstm"}
    assert {k: _snake(k) for k in names} == names


def test_summary_wraps_long_names_inside_the_box(capsys):
    name = "a_layer_name_much_longer_than_the_first_column"
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, name=name)])
    model.summary()
    rows = capsys.readouterr().out.splitlines()[1:-3]
    assert len({len(r) for r in rows}) == 1  # every line of the table is equally wide
    assert name in "".join(r.split("│")[1].strip() for r in rows if r.startswith("│"))
