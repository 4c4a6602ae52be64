"""The tape under Keras models: built-in layers as custom-VJP nodes, the traced chain path against
the plain tape, custom layers / losses / metrics / add_loss, bad input, and issue 14's forward-path
guarantees (threads, call == predict == reloaded, NaN loss)."""

import threading
import warnings

import numpy as np
import pytest

import forgeml as tf
from forgeml.keras import layers, ops
from forgeml.keras.autodiff.tape import GradientTape, NoGradientError
from gradcheck import numeric_grad

keras = tf.keras


def _data(n=300, d=12, k=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    y = (x[:, :k] + 0.3 * rng.standard_normal((n, k))).argmax(1)
    return x, y


class MLP(keras.Model):
    def __init__(self):
        super().__init__()
        self.d1 = layers.Dense(16, activation="relu")
        self.d2 = layers.Dense(4, activation="softmax")

    def call(self, x, training=False):
        return self.d2(self.d1(x))


def _train(model, x, y, run_eagerly=False, epochs=2):
    model.compile(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], run_eagerly=run_eagerly
    )
    return model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, shuffle=False)


# ---------------------------------------------------------------- the same numbers on every path
def test_traced_chain_matches_the_plain_tape_and_sequential():
    x, y = _data()
    keras.utils.set_random_seed(3)
    a = MLP()
    a(x[:2])
    w0 = a.get_weights()
    b = MLP()
    b(x[:2])
    b.set_weights(w0)
    seq = keras.Sequential(
        [keras.Input(shape=(12,)), layers.Dense(16, activation="relu"), layers.Dense(4, activation="softmax")]
    )
    seq.set_weights(w0)
    ha = _train(a, x, y)
    hb = _train(b, x, y, run_eagerly=True)
    hs = _train(seq, x, y)
    assert a.__dict__["_chain_step"] and not b.__dict__["_chain_step"]
    for wa, wb, ws in zip(a.get_weights(), b.get_weights(), seq.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(wa, ws, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(ha.history["loss"], hs.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(ha.history["accuracy"], hs.history["accuracy"])


def _tape_grads(layer, x, w):
    with GradientTape() as tape:
        out = layer(x, training=True)
        loss = ops.sum(out * w)
    return tape.gradient(loss, layer.trainable_weights)


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: layers.Dense(5, activation="tanh"), (4, 6)),
        (lambda: layers.Conv2D(3, 3, padding="same", activation="tanh"), (2, 6, 5, 2)),
        (lambda: layers.LSTM(4), (3, 5, 2)),
        (lambda: layers.GRU(3, return_sequences=True), (2, 4, 3)),
        (lambda: layers.BatchNormalization(), (6, 5)),
    ],
)
def test_builtin_layer_node_gradients_match_finite_differences(make, shape):
    """A built-in layer on the tape is one node whose VJP is its hand-written backward."""
    rng = np.random.default_rng(5)
    layer = make()
    x = rng.standard_normal(shape).astype("float32")
    out = layer(x, training=True)
    w = rng.standard_normal(np.shape(out)).astype("float32")
    grads = _tape_grads(layer, x, w)
    for var, g in zip(layer.trainable_weights, grads):
        value = var.value.astype(np.float64)

        def f():
            var.value[...] = value.astype(np.float32)
            return float((np.asarray(layer(x, training=True), np.float64) * w).sum())

        num = numeric_grad(f, value, eps=1e-2)
        var.value[...] = value.astype(np.float32)
        np.testing.assert_allclose(g, num, rtol=2e-2, atol=2e-2 * (1 + np.abs(num).max()), err_msg=var.path)


def test_dense_and_conv_nodes_match_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    dense = layers.Dense(5, activation="sigmoid")
    x = rng.standard_normal((7, 6)).astype("float32")
    w = rng.standard_normal((7, 5)).astype("float32")
    gk, gb = _tape_grads(dense, x, w)
    tk = torch.tensor(dense.kernel.numpy(), requires_grad=True)
    tb = torch.tensor(dense.bias.numpy(), requires_grad=True)
    (torch.sigmoid(torch.tensor(x) @ tk + tb) * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(gk, tk.grad.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-4, atol=1e-5)
    conv = layers.Conv2D(4, (3, 2), strides=1)
    xc = rng.standard_normal((2, 7, 6, 3)).astype("float32")
    out = conv(xc)
    wc = rng.standard_normal(out.shape).astype("float32")
    gk, gb = _tape_grads(conv, xc, wc)
    tk = torch.tensor(conv.kernel.numpy().transpose(3, 2, 0, 1), requires_grad=True)
    tb = torch.tensor(conv.bias.numpy(), requires_grad=True)
    ty = torch.nn.functional.conv2d(torch.tensor(xc).permute(0, 3, 1, 2), tk, tb).permute(0, 2, 3, 1)
    (ty * torch.tensor(wc)).sum().backward()
    np.testing.assert_allclose(gk, tk.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_shared_layer_gets_the_sum_of_both_uses():
    dense = layers.Dense(3)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 3)).astype("float32"), rng.standard_normal((4, 3)).astype("float32")
    with GradientTape() as tape:
        loss = ops.sum(dense(a)) + ops.sum(ops.square(dense(b)))
    gk = tape.gradient(loss, dense.kernel)
    yb = b @ dense.kernel.numpy() + dense.bias.numpy()
    ref = a.T @ np.ones((4, 3)) + b.T @ (2 * yb)
    np.testing.assert_allclose(gk, ref, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- custom losses, metrics, add_loss
class ActivityPenalty(layers.Layer):
    def call(self, inputs):
        self.add_loss(1e-3 * ops.sum(ops.square(inputs)))
        return inputs


class HingeLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        onehot = ops.one_hot(ops.cast(y_true, "int32"), 4)
        return ops.sum(ops.relu(1.0 - (2 * onehot - 1) * y_pred), axis=-1)


class Hits(keras.metrics.Metric):
    def __init__(self, name="hits", **kw):
        super().__init__(name=name, **kw)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")

    def update_state(self, y_true, y_pred, sample_weight=None):
        self.hits.assign_add(np.sum(np.argmax(y_pred, -1) == y_true))

    def result(self):
        return self.hits.numpy()

    def reset_state(self):
        self.hits.assign(0.0)


def test_loss_and_metric_subclasses_and_add_loss():
    x, y = _data()
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape=(12,))
    out = layers.Dense(4)(ActivityPenalty()(layers.Dense(16, activation="relu")(inp)))
    model = keras.Model(inp, out)
    model.compile(optimizer="adam", loss=HingeLoss(), metrics=[Hits()])
    h = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["hits"][-1] > 0.6 * len(x) / 10  # hits counted over the last batch's epoch total
    # the penalty is in the loss: the same model without it reports a smaller value
    y_pred = model.predict(x, verbose=0)
    hinge = float(HingeLoss()(y, y_pred))
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["loss"] > hinge


# ---------------------------------------------------------------- bad input
def test_op_without_gradient_rule_names_the_layer():
    class Sorts(layers.Layer):
        def call(self, inputs):
            return np.sort(inputs, axis=-1)

    model = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(3), Sorts(name="sorter")])
    with GradientTape() as tape:
        with pytest.raises(NoGradientError, match=r"numpy.sort has no gradient rule in layer 'sorter'"):
            model(np.ones((2, 3), np.float32), training=True)
    del tape


def test_graph_shape_mismatch_names_the_layer():
    a, b = keras.Input(shape=(3,)), keras.Input(shape=(4,))
    with pytest.raises(ValueError, match=r"Layer 'bad_add' \(Add\).*matching shapes"):
        layers.Add(name="bad_add")([a, b])
    with pytest.raises(ValueError, match="incompatible"):
        keras.Model(a, layers.Dense(2)(a)).predict(np.ones((2, 5), np.float32), verbose=0)


def test_non_scalar_loss_is_an_error():
    x, y = _data()

    def per_class(y_true, y_pred):  # (classes,), not one value per sample
        return ops.mean(y_pred, axis=0)

    model = MLP()
    model.compile(optimizer="adam", loss=per_class)
    with pytest.raises(ValueError, match="loss 'per_class'.*scalar or one value per sample"):
        model.fit(x, y, epochs=1, verbose=0)


def test_variable_without_gradient_warns_like_keras():
    class Unused(keras.Model):
        def __init__(self):
            super().__init__()
            self.used = layers.Dense(4, activation="softmax")
            self.unused = layers.Dense(4)

        def call(self, x):
            self.unused(x)  # built and run, but the loss does not depend on it
            return self.used(x)

    x, y = _data()
    model = Unused()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match=r"Gradients do not exist for variables \['dense_\d+/kernel'"):
        model.fit(x, y, epochs=1, verbose=0)


# ---------------------------------------------------------------- issue 14: the forward path
def _mlp_and_data():
    x, y = _data(n=1000)
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input(shape=(12,)), layers.Dense(32, activation="relu"), layers.Dense(4, activation="softmax")]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, verbose=0)
    return model, x, y


@pytest.mark.parametrize("compiled", [True, False])
def test_four_threads_predicting_get_their_own_rows(compiled):
    model, x, _ = _mlp_and_data()
    if not compiled:  # the layer-by-layer forward (per-thread buffers) instead of the fused one
        twin = keras.Sequential(
            [keras.Input(shape=(12,)), layers.Dense(32, activation="relu"), layers.Dense(4, activation="softmax")]
        )
        twin.set_weights(model.get_weights())
        model = twin
    ref = [np.asarray(model.predict(x[i::4], verbose=0, batch_size=7)) for i in range(4)]
    results, errors = [None] * 4, []

    def work(i):
        try:
            outs = [np.asarray(model.predict(x[i::4], verbose=0, batch_size=7)) for _ in range(20)]
            results[i] = outs
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        for out in results[i]:
            np.testing.assert_array_equal(out, ref[i])


def test_call_predict_and_reloaded_model_agree_bit_for_bit(tmp_path):
    model, x, _ = _mlp_and_data()
    a = np.asarray(model(x))
    b = model.predict(x, verbose=0)
    np.testing.assert_array_equal(a, b)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_array_equal(again.predict(x, verbose=0), b)
    np.testing.assert_array_equal(np.asarray(again(x)), b)
    wpath = str(tmp_path / "m.weights.npz")
    model.save_weights(wpath)
    twin = keras.Sequential(
        [keras.Input(shape=(12,)), layers.Dense(32, activation="relu"), layers.Dense(4, activation="softmax")]
    )
    twin.load_weights(wpath)
    np.testing.assert_array_equal(np.asarray(twin(x)), b)


@pytest.mark.parametrize("subclassed", [False, True])
def test_nan_in_the_data_gives_a_nan_loss_and_terminate_on_nan_fires(subclassed):
    x, y = _data()
    x[5, 3] = np.nan
    model = (
        MLP()
        if subclassed
        else keras.Sequential(
            [keras.Input(shape=(12,)), layers.Dense(16, activation="relu"), layers.Dense(4, activation="softmax")]
        )
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        h = model.fit(
            x, y, epochs=3, batch_size=32, verbose=0, shuffle=False, callbacks=[keras.callbacks.TerminateOnNaN()]
        )
    assert np.isnan(h.history["loss"][0])
    assert len(h.history["loss"]) == 1  # training stopped after the first epoch


# ---------------------------------------------------------------- save / load
@keras.saving.register_keras_serializable(package="test_autodiff")
class Scale(layers.Layer):
    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, inputs):
        return inputs * self.w * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="test_autodiff")
class Sub(keras.Model):
    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.hidden = layers.Dense(units, activation="relu")
        self.scale = Scale(0.5)
        self.head = layers.Dense(4, activation="softmax")

    def call(self, x, training=False):
        return self.head(self.scale(self.hidden(x)))

    def get_config(self):
        return {"units": self.units, "name": self.name}


def _dag():
    a, b = keras.Input(shape=(6,), name="a"), keras.Input(shape=(6,), name="b")
    shared = layers.Dense(5, activation="tanh", name="shared")
    base_in = keras.Input(shape=(10,))
    base = keras.Model(base_in, Scale(2.0)(layers.Dense(7, name="feat")(base_in)), name="base")
    h = base(layers.concatenate([shared(a), shared(b)]))
    res = layers.Add()([h, layers.Dense(7)(h)])
    out1 = layers.Dense(4, activation="softmax", name="cls")(res)
    out2 = layers.Dense(1, name="reg")(layers.Multiply()([res, res]))
    return keras.Model([a, b], [out1, out2])


@pytest.mark.parametrize("kind", ["dag", "subclassed", "sequential_custom"])
def test_save_and_load_keras_file(kind, tmp_path):
    x, y = _data()
    keras.utils.set_random_seed(0)
    if kind == "dag":
        model = _dag()
        model.compile(
            "adam",
            loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
            loss_weights={"cls": 1.0, "reg": 0.1},
            metrics={"cls": ["accuracy"]},
        )
        xs, ys = [x[:, :6], x[:, 6:]], {"cls": y, "reg": x[:, :1]}
    elif kind == "subclassed":
        model = Sub(units=9)
        model.compile("adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        xs, ys = x, y
    else:
        model = keras.Sequential([keras.Input(shape=(12,)), layers.Dense(8), Scale(3.0), layers.Dense(4)])
        model.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        xs, ys = x, y
    model.fit(xs, ys, epochs=2, verbose=0)
    before = model.predict(xs, verbose=0)
    path = str(tmp_path / f"{kind}.keras")
    model.save(path)
    again = keras.models.load_model(path)
    after = again.predict(xs, verbose=0)
    for p, q in zip(before if isinstance(before, list) else [before], after if isinstance(after, list) else [after]):
        np.testing.assert_array_equal(np.asarray(p), np.asarray(q))
    assert [w.shape for w in again.weights] == [w.shape for w in model.weights]
    if kind == "subclassed":
        assert type(again) is Sub and again.units == 9
    again.fit(xs, ys, epochs=1, verbose=0)  # the reloaded model trains (compiled from the file)


def test_intermediate_feature_model_and_get_layer():
    model = _dag()
    feat = keras.Model(model.get_layer("base").input, model.get_layer("base").get_layer("feat").output)
    x = np.random.default_rng(0).standard_normal((3, 10)).astype("float32")
    dense = model.get_layer("base").get_layer("feat")
    np.testing.assert_allclose(
        feat.predict(x, verbose=0), x @ dense.kernel.numpy() + dense.bias.numpy(), rtol=1e-5, atol=1e-6
    )
    assert model.output_names == ["cls", "reg"] and len(model.inputs) == 2


def test_relu_epilogues_propagate_nan():
    """max(0, x) in the GEMM and conv epilogues keeps a NaN (Keras's relu does), so a NaN input
    reaches the loss instead of turning into a silent zero."""
    from forgeml import ops as kernels

    x = np.ones((3, 4), np.float32)
    x[1, 2] = np.nan
    y = kernels.matmul(x, np.ones((4, 5), np.float32), activation="relu")
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()
    xc = np.ones((1, 7, 7, 2), np.float32)
    xc[0, 5, 5, 0] = np.nan
    yc = kernels.conv2d(xc, np.ones((3, 3, 2, 4), np.float32), activation="relu")
    assert np.isnan(yc).any() and np.isfinite(yc[0, 0, 0]).all()
    np.testing.assert_array_equal(
        kernels.matmul(-np.ones((2, 2), np.float32), np.eye(2, dtype=np.float32), activation="relu"), 0
    )
