"""Compression in forgeml.keras: mixed_bfloat16 policies, model.quantize("int8") and its
save/load, on the digits task (scikit-learn's bundled data) against the float32 model."""

import numpy as np
import pytest

from forgeml import keras
from forgeml.keras import mixed_precision
from test_gemm_lowp import bf16


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture
def policy():
    yield mixed_precision.set_global_policy
    mixed_precision.set_global_policy("float32")


def mlp(**kw):
    return keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(128, activation="relu", **kw),
            keras.layers.Dense(10, activation="softmax", **kw),
        ]
    )


def train(model, digits, epochs=20):
    xtr, xte, ytr, yte = digits
    keras.utils.set_random_seed(0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(xtr, ytr, epochs=epochs, batch_size=32, verbose=0)
    return model.evaluate(xte, yte, verbose=0)[1]


def float32_and_bf16_accuracy(build, digits, epochs, seeds=(0, 1, 2)):
    """Mean test accuracy over seeds of the model trained under float32 and under mixed_bfloat16,
    each pair built from the same seed (so the comparison does not hang on test order) and averaged
    because one seed's accuracy on 450 test digits moves by about a point on its own."""
    acc32, acc16 = [], []
    for seed in seeds:
        for policy_name, accs in (("float32", acc32), ("mixed_bfloat16", acc16)):
            mixed_precision.set_global_policy(policy_name)
            keras.utils.set_random_seed(seed)
            model = build()
            accs.append(train(model, digits, epochs))
    return float(np.mean(acc32)), float(np.mean(acc16)), model


def test_policy_objects_and_errors(policy):
    p = mixed_precision.DTypePolicy("mixed_bfloat16")
    assert (p.compute_dtype, p.variable_dtype, p.name) == ("bfloat16", "float32", "mixed_bfloat16")
    assert mixed_precision.global_policy().name == "float32"
    policy("mixed_bfloat16")
    assert keras.layers.Dense(3).dtype_policy == p
    assert keras.layers.Dense(3, dtype="float32").dtype_policy.name == "float32"
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        keras.layers.Dense(3, dtype="float16")
    with pytest.raises(ValueError, match="dtype_policy"):
        mixed_precision.set_global_policy("int4")


def test_mixed_bf16_dense_forward_is_the_bf16_product(policy, rng):
    """Under mixed_bfloat16 a Dense layer's output is the float64 product of the bf16-rounded
    input and kernel (float32 sums), not the float32 product."""
    layer = keras.layers.Dense(7, dtype_policy="mixed_bfloat16")
    x = rng.standard_normal((5, 33)).astype(np.float32)
    y = layer(x)
    w, b = layer.get_weights()
    assert w.dtype == np.float32  # master weights stay float32
    ref = bf16(x) @ bf16(w) + b
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert np.abs(y - (x.astype(np.float64) @ w + b)).max() > 1e-5


def test_mixed_bf16_training_matches_float32_accuracy(policy, digits):
    acc32, acc16, model = float32_and_bf16_accuracy(mlp, digits, epochs=20)
    assert mixed_precision.bf16_layers(model) == [layer.name for layer in model.layers]
    assert model.get_weights()[0].dtype == np.float32
    print(f"digits MLP accuracy: float32 {acc32:.4f}, mixed_bfloat16 {acc16:.4f}")
    assert acc16 >= acc32 - 0.01


def test_mixed_policy_config_round_trip(policy, tmp_path, digits):
    policy("mixed_bfloat16")
    model = mlp()
    train(model, digits, epochs=1)
    model.save(tmp_path / "m.keras")
    policy("float32")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert [layer.dtype_policy.name for layer in loaded.layers] == ["mixed_bfloat16"] * 2
    np.testing.assert_array_equal(loaded.predict(digits[1], verbose=0), model.predict(digits[1], verbose=0))


def test_quantize_int8_dense(digits, tmp_path):
    model = mlp()
    acc = train(model, digits)
    xte, yte = digits[1], digits[3]
    float_pred = model.predict(xte, verbose=0)
    w_float = model.layers[0].get_weights()[0]
    model.quantize("int8")
    layer = model.layers[0]
    assert layer.kernel.value.dtype == np.int8 and layer.kernel_scale.shape == (128,)
    np.testing.assert_allclose(
        layer.kernel.numpy() * layer.kernel_scale.numpy(),
        w_float,
        atol=float(layer.kernel_scale.numpy().max()) / 2 + 1e-7,
    )
    q_pred = model.predict(xte, verbose=0)
    acc_q = float((q_pred.argmax(1) == yte).mean())
    print(f"digits MLP accuracy: float32 {acc:.4f}, int8 {acc_q:.4f}")
    assert acc_q >= acc - 0.01
    assert np.abs(q_pred - float_pred).max() < 0.1
    assert model.evaluate(xte, yte, verbose=0)[1] == pytest.approx(acc_q)
    with pytest.raises(ValueError, match="cannot be trained"):
        model.fit(digits[0], digits[2], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="already quantized"):
        model.quantize("int8")
    model.save(tmp_path / "q.keras")
    loaded = keras.models.load_model(tmp_path / "q.keras")
    assert loaded.layers[0]._quantization_mode == "int8" and loaded.layers[0].kernel.value.dtype == np.int8
    np.testing.assert_array_equal(loaded.predict(xte, verbose=0), q_pred)


def test_quantize_errors():
    model = keras.Sequential([keras.layers.Dense(3)])
    with pytest.raises(ValueError, match="built"):
        model.quantize("int8")
    model = mlp()
    with pytest.raises(ValueError, match="mode"):
        model.quantize("int4")
    flat = keras.Sequential([keras.Input(shape=(4, 4, 1)), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="no layer"):
        flat.quantize("int8")


def test_quantize_int8_conv2d_matches_im2col_reference_and_keeps_accuracy(digits, rng, tmp_path):
    xtr, xte, ytr, yte = (a.reshape(-1, 8, 8, 1) if a.ndim == 2 else a for a in digits)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(12, (3, 2), strides=(2, 1), dilation_rate=1, padding="valid", activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    acc = train(model, (xtr, xte, ytr, yte), epochs=10)
    conv = model.layers[1]
    w, b = conv.get_weights()
    h = model.layers[0](xte[:5])  # the second conv's input
    model.quantize("int8")
    # reference: quantize patches and kernel as documented, integer products in int64
    from forgeml import ops
    from forgeml.keras.quantization import _patches

    cols, (n, oh, ow) = _patches(h, conv)
    qx, sx = image_quantized_patches(h, conv)
    qw, sw = ops.quantize_int8(w.reshape(-1, 12), axis=0)
    ref = np.maximum((qx.astype(np.int64) @ qw.astype(np.int64)) * sx[:, None].astype(np.float64) * sw + b, 0)
    np.testing.assert_allclose(conv(h), ref.reshape(n, oh, ow, 12), rtol=1e-5, atol=1e-5)
    # and the patches are the convolution's: the float conv equals cols @ w
    np.testing.assert_allclose(
        (cols @ w.reshape(-1, 12) + b).clip(0).reshape(n, oh, ow, 12),
        ops.conv2d(h, w, b, strides=(2, 1), padding="valid", activation="relu"),
        rtol=1e-4,
        atol=1e-5,
    )
    acc_q = float((model.predict(xte, verbose=0).argmax(1) == yte).mean())
    print(f"digits CNN accuracy: float32 {acc:.4f}, int8 {acc_q:.4f}")
    assert acc_q >= acc - 0.01
    model.save(tmp_path / "cnn.keras")
    loaded = keras.models.load_model(tmp_path / "cnn.keras")
    np.testing.assert_array_equal(loaded.predict(xte, verbose=0), model.predict(xte, verbose=0))


def image_quantized_patches(x, conv):
    """The documented int8 convolution input, in NumPy: each image scaled by max|image| / 127 and
    rounded (half to even), then its im2col patches; (int8 patches, one scale per patch row)."""
    from forgeml.keras.quantization import _patches

    amax = np.abs(x).reshape(len(x), -1).max(axis=1)  # float32 arithmetic, as the kernel's
    scale = np.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(x / scale[:, None, None, None]), -127, 127).astype(np.int8)
    cols, (n, oh, ow) = _patches(q, conv)
    return cols, np.repeat(scale, oh * ow)


@pytest.mark.parametrize(
    "kernel, strides, dilation, padding, activation",
    [
        (3, 1, 1, "same", "relu"),
        ((3, 2), (2, 1), 1, "valid", None),
        ((2, 3), (1, 2), 1, "same", "tanh"),
        (3, 1, 2, "same", "sigmoid"),
        ((1, 1), 3, 1, "valid", "gelu"),
        (3, 2, 1, "same", "softmax"),  # not an epilogue activation: applied after the GEMM
    ],
)
def test_quantized_conv2d_matches_int64_reference(isa, rng, kernel, strides, dilation, padding, activation):
    """The fused C++ int8 convolution (images quantized, patches gathered and multiplied in one
    call; the NumPy patches path under the reference ISA) against the documented arithmetic in
    int64 / float64 on odd-sized inputs."""
    from forgeml import ops
    from forgeml.keras import activations

    conv = keras.layers.Conv2D(
        7, kernel, strides=strides, dilation_rate=dilation, padding=padding, activation=activation
    )
    x = rng.standard_normal((3, 11, 9, 5)).astype(np.float32)
    x[0, :3] = 0  # some all-zero patches
    x[2] = 0  # an all-zero image (scale 1)
    conv(x)
    w, b = conv.get_weights()
    b = rng.standard_normal(b.shape).astype(np.float32)
    conv.set_weights([w, b])
    from forgeml.keras.quantization import quantize_layer

    quantize_layer(conv)
    assert (type(conv.kernel.packed()).__name__ == "PackedInt8") == (isa != "reference")
    y = conv(x)
    qx, sx = image_quantized_patches(x, conv)
    n, oh, ow = x.shape[0], y.shape[1], y.shape[2]
    qw, sw = ops.quantize_int8(w.reshape(-1, 7), axis=0)
    z = (qx.astype(np.int64) @ qw.astype(np.int64)) * sx[:, None].astype(np.float64) * sw + b
    ref = activations.get(activation or "linear").forward(z.astype(np.float32).reshape(n, oh, ow, 7))
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=2e-5)


def test_quantized_conv2d_rejects_non_finite_input(isa, rng):
    conv = keras.layers.Conv2D(4, 3, padding="same")
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    conv(x)
    from forgeml.keras.quantization import quantize_layer

    quantize_layer(conv)
    x[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        conv(x)


def test_mixed_bf16_conv2d_forward_and_kernel_gradient_are_bf16_products(policy, rng):
    """Under mixed_bfloat16 a Conv2D's output is the float64 product of the bf16-rounded patches
    and kernel, and its kernel gradient the bf16 product of the patches and the output gradient;
    the float32 policy gives the float32 convolution."""
    from forgeml import ops
    from forgeml.keras.quantization import _patches

    x = rng.standard_normal((3, 9, 7, 5)).astype(np.float32)
    conv = keras.layers.Conv2D(6, (3, 2), strides=(2, 1), padding="same", dtype_policy="mixed_bfloat16")
    y = conv(x)
    w, b = conv.get_weights()
    assert w.dtype == np.float32
    cols, (n, oh, ow) = _patches(x, conv)
    ref = (bf16(cols) @ bf16(w.reshape(-1, 6)) + b).reshape(n, oh, ow, 6)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    f32 = ops.conv2d(x, w, b, strides=(2, 1), padding="same")
    assert np.abs(y - f32).max() > 1e-5
    dy = rng.standard_normal(y.shape).astype(np.float32)
    conv.forward(x, True)
    dx = conv.backward(dy.copy())
    dw_ref = (bf16(cols).T @ bf16(dy.reshape(-1, 6))).reshape(w.shape)
    np.testing.assert_allclose(conv.kernel.grad, dw_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(conv.bias.grad, dy.reshape(-1, 6).sum(0), rtol=1e-4, atol=1e-4)
    dx_ref, _, _ = ops.conv2d_grad(x, w, dy, strides=(2, 1), padding="same")
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)  # the input gradient stays float32


def test_mixed_bf16_digits_cnn_matches_float32_accuracy(policy, digits):
    xtr, xte, ytr, yte = (a.reshape(-1, 8, 8, 1) if a.ndim == 2 else a for a in digits)

    def cnn():
        L = keras.layers
        return keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                L.Conv2D(16, 3, padding="same", activation="relu"),
                L.MaxPooling2D(),
                L.Flatten(),
                L.Dense(10, activation="softmax"),
            ]
        )

    acc32, acc16, model = float32_and_bf16_accuracy(cnn, (xtr, xte, ytr, yte), epochs=8)
    assert mixed_precision.bf16_layers(model) == [model.layers[0].name, model.layers[-1].name]
    print(f"digits CNN accuracy: float32 {acc32:.4f}, mixed_bfloat16 {acc16:.4f}")
    assert acc16 >= acc32 - 0.01


def _lstm_bf16_reference(x, w, u, b):
    """float64 LSTM (gates i, f, c, o) whose two products take bf16-rounded operands."""
    n, t, _ = x.shape
    hdim = u.shape[0]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h, c = np.zeros((n, hdim)), np.zeros((n, hdim))
    xz = bf16(x.reshape(n * t, -1)) @ bf16(w)
    xz = xz.reshape(n, t, -1)
    for s in range(t):
        z = xz[:, s] + bf16(h.astype(np.float32)) @ bf16(u) + b
        i, f, g, o = (
            sig(z[:, :hdim]),
            sig(z[:, hdim : 2 * hdim]),
            np.tanh(z[:, 2 * hdim : 3 * hdim]),
            sig(z[:, 3 * hdim :]),
        )
        c = f * c + i * g
        h = o * np.tanh(c)
    return h


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "SimpleRNN"])
def test_mixed_bf16_recurrent_products_run_in_bf16(policy, rng, cls):
    """Under mixed_bfloat16 the recurrent layers' products take bf16 operands (float32 sums):
    outputs and weight gradients stay within bf16 rounding of the float32 layer, weights float32."""
    x = rng.standard_normal((5, 7, 9)).astype(np.float32)
    layer16 = getattr(keras.layers, cls)(11, dtype_policy="mixed_bfloat16")
    layer32 = getattr(keras.layers, cls)(11)
    y16 = layer16(x)
    layer32(x)
    layer32.set_weights(layer16.get_weights())
    y32 = layer32(x)
    assert all(w.dtype == np.float32 for w in layer16.get_weights())
    assert y16.dtype == np.float32
    assert np.abs(y16 - y32).max() > 1e-6  # not the float32 products
    np.testing.assert_allclose(y16, y32, atol=3e-2)
    if cls == "LSTM":
        w, u, b = layer16.get_weights()
        np.testing.assert_allclose(y16, _lstm_bf16_reference(x, w, u, b), rtol=1e-4, atol=1e-4)
    dy = rng.standard_normal(y16.shape).astype(np.float32)
    for layer in (layer16, layer32):
        layer.forward(x, True)
        layer.backward(dy.copy())
    for w16, w32 in zip(layer16.trainable_weights, layer32.trainable_weights):
        scale = np.abs(w32.grad).max()
        np.testing.assert_allclose(w16.grad, w32.grad, atol=3e-2 * scale)
    assert mixed_precision.bf16_layers(keras.Sequential([keras.Input((7, 9)), layer16])) == [layer16.name]


@pytest.mark.parametrize("cls", ["LSTM", "GRU"])
def test_mixed_bf16_recurrent_digits_matches_float32_accuracy(policy, digits, cls):
    """Digits read row by row (8 steps of 8 pixels): the mixed_bfloat16 recurrent model reaches
    the float32 model's mean accuracy over three seeds within 1 point."""
    xtr, xte, ytr, yte = (a.reshape(-1, 8, 8) if a.ndim == 2 else a for a in digits)

    def rnn():
        return keras.Sequential(
            [keras.Input((8, 8)), getattr(keras.layers, cls)(32), keras.layers.Dense(10, activation="softmax")]
        )

    acc32, acc16, model = float32_and_bf16_accuracy(rnn, (xtr, xte, ytr, yte), epochs=20)
    assert mixed_precision.bf16_layers(model) == [layer.name for layer in model.layers]
    print(f"digits {cls} accuracy: float32 {acc32:.4f}, mixed_bfloat16 {acc16:.4f}")
    assert acc16 >= acc32 - 0.01


def test_mixed_bf16_lstm_dtypes_against_keras3(policy, rng):
    """Under mixed_bfloat16 forgeml's LSTM reports Keras 3's compute and variable dtypes and keeps
    float32 variables as Keras does; its outputs stay float32 NumPy arrays where Keras returns
    bfloat16 tensors (documented in mixed_precision.py)."""
    pytest.importorskip("jax")
    real = pytest.importorskip("keras")
    if not hasattr(real, "mixed_precision") or real.backend.backend() != "jax":
        pytest.skip("needs Keras 3 on the jax backend (KERAS_BACKEND=jax)")
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    ours = keras.layers.LSTM(5, return_state=True, dtype_policy="mixed_bfloat16")
    theirs = real.layers.LSTM(5, return_state=True, dtype="mixed_bfloat16")
    outs, touts = ours(x), theirs(x)
    assert (ours.compute_dtype, ours.variable_dtype) == (theirs.compute_dtype, theirs.variable_dtype)
    assert [w.dtype.name for w in ours.get_weights()] == [str(v.dtype) for v in theirs.weights] == ["float32"] * 3
    assert [str(t.dtype) for t in touts] == ["bfloat16"] * 3
    assert [o.dtype for o in outs] == [np.float32] * 3


@pytest.mark.parametrize(
    "batch, image, conv, pool",
    [
        (256, (8, 8, 1), dict(filters=16, kernel_size=3, padding="same", activation="relu"), dict()),
        (1, (9, 7, 3), dict(filters=5, kernel_size=3, padding="same", activation="relu"), dict()),
        (3, (9, 7, 3), dict(filters=7, kernel_size=(2, 3), strides=(2, 1), padding="valid"), dict(padding="same")),
        (
            257,
            (5, 6, 2),
            dict(filters=17, kernel_size=3, padding="same", activation="tanh"),
            dict(pool_size=3, strides=2, padding="same"),
        ),
        (
            3,
            (11, 9, 4),
            dict(filters=33, kernel_size=3, dilation_rate=2, padding="same", activation="relu"),
            dict(pool_size=(2, 3), strides=(1, 2)),
        ),
        (2, (7, 7, 2), dict(filters=4, kernel_size=3, padding="valid", activation="softmax"), dict()),  # unfused
        (5, (10, 11, 2), dict(filters=20, kernel_size=3, use_bias=False, activation="relu"), dict()),
        (4, (6, 6, 3), dict(filters=40, kernel_size=(1, 3), padding="same"), dict(pool_size=2, strides=2)),
        # single-channel 3 x 3 (the AVX2 window shuffles): odd output sizes, partial column panels
        (7, (7, 9, 1), dict(filters=13, kernel_size=3, padding="valid", activation="relu"), dict()),
        (3, (9, 6, 1), dict(filters=5, kernel_size=3, padding="same"), dict()),
    ],
)
def test_quantized_conv_then_max_pool_fused_predict_matches_the_layers_in_sequence(isa, rng, batch, image, conv, pool):
    """model.quantize marks a Conv2D directly followed by MaxPooling2D; predict then runs the pair
    as one C++ call (the pooling after the epilogue, the full conv output never written; 2 x 2
    windows with relu / no activation on the int32 sums where the ISA has that tile). The output
    is bit for bit what the two layers give one after the other, on odd sizes."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input(shape=image),
            keras.layers.Conv2D(**conv),
            keras.layers.MaxPooling2D(**pool),
            keras.layers.Flatten(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    x = rng.standard_normal((batch, *image)).astype(np.float32)
    x[0, : image[0] // 2] = 0  # some all-zero patches
    model(x[:1])
    c = model.layers[0]
    if c.use_bias:
        w, b = c.get_weights()
        c.set_weights([w, rng.standard_normal(b.shape).astype(np.float32)])
    model.quantize("int8")
    assert model._int8_fusion == (0,)
    fused = model.predict_on_batch(x)
    pooled = keras.Sequential(model.layers[:2])  # the two layers alone, fused
    pooled.__dict__["_int8_fusion"] = (0,)
    y = pooled.predict_on_batch(x)
    model.__dict__["_int8_fusion"] = ()
    np.testing.assert_array_equal(fused, model.predict_on_batch(x))
    z = model.layers[1].forward(model.layers[0].forward(x, False), False)  # layer by layer
    np.testing.assert_array_equal(y, z)
    assert y.shape == z.shape


def test_quantized_conv_pool_fusion_with_negative_scales_matches_the_layers(isa, rng):
    """Pooling on the int32 sums assumes positive column scales (what quantization gives); scales
    set by hand to negative values must still give the two layers' output."""
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [keras.Input(shape=(6, 8, 3)), keras.layers.Conv2D(5, 3, padding="same"), keras.layers.MaxPooling2D()]
    )
    x = rng.standard_normal((7, 6, 8, 3)).astype(np.float32)
    model(x[:1])
    model.quantize("int8")
    q, b, s = model.layers[0].get_weights()
    model.layers[0].set_weights([q, b, -s])
    fused = model.predict_on_batch(x)
    z = model.layers[1].forward(model.layers[0].forward(x, False), False)
    np.testing.assert_array_equal(fused, z)


def test_quantized_conv_pool_fusion_only_for_a_direct_conv_maxpool_chain():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(6, 6, 2)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
            keras.layers.AveragePooling2D(),
            keras.layers.Conv2D(4, 1),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    model.quantize("int8")
    assert model._int8_fusion == ()
