"""A quantized Dense stack predicts in one C++ call (quantization.dense_chain -> int8_dense_chain):
the same bits as the layers one by one, the documented int8 arithmetic against an int64 / float64
reference, and the fallbacks where a model or input does not qualify."""

import numpy as np
import pytest

from forgeml import _backend, keras, ops
from forgeml.keras import activations, quantization


def stack(dims, acts, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape=(dims[0],))]
    layers += [keras.layers.Dense(d, activation=a) for d, a in zip(dims[1:], acts)]
    model = keras.Sequential(layers)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3 for w in model.get_weights()])
    return model


def layer_by_layer(model, x):
    for layer in model.layers:
        x = layer.forward(x)
    return x


def reference(model, x):
    """Each layer: rows quantized with scale max|x| / 127 (round half even), the int64 product,
    scales, bias in float64, then the activation (softmax over rows)."""
    for layer in model.layers:
        q_w, s_w, b = layer.kernel.numpy().astype(np.int64), layer.kernel_scale.numpy(), layer.bias.numpy()
        amax = np.abs(x).max(axis=1)
        s_x = np.where(amax > 0, amax.astype(np.float32) / np.float32(127), np.float32(1))
        q_x = np.clip(np.rint(x / s_x[:, None]), -127, 127).astype(np.int64)
        z = (q_x @ q_w) * s_x[:, None].astype(np.float64) * s_w + b
        act = layer.activation
        if act is activations.softmax:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            x = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        else:
            x = act.forward(z.astype(np.float32))
    return x


@pytest.mark.parametrize("rows", [1, 3, 64, 65, 257])
@pytest.mark.parametrize(
    "dims, acts",
    [
        ([37, 29, 13, 7], ["relu", "tanh", "softmax"]),
        ([64, 64, 32, 10], ["relu", "relu", "softmax"]),
        ([5, 70], ["sigmoid"]),
        ([19, 33, 3], [None, "linear"]),
    ],
)
def test_chain_equals_layers_and_reference(isa, rng, dims, acts, rows):
    model = stack(dims, acts)
    model.quantize("int8")
    x = rng.standard_normal((rows, dims[0])).astype(np.float32)
    x[0] = 0  # an all-zero row (scale 1)
    y = model.predict_on_batch(x)
    chained = quantization.dense_chain(model, x)
    assert (chained is not None) == (isa != "reference")  # the reference ISA has no packed layout
    np.testing.assert_array_equal(y, layer_by_layer(model, x))
    np.testing.assert_array_equal(model.predict(x, batch_size=17, verbose=0), y)
    np.testing.assert_allclose(y, reference(model, x), rtol=2e-5, atol=2e-6)


def test_chain_follows_new_weights_and_falls_back(rng):
    model = stack([12, 9, 4], ["relu", "softmax"])
    model.quantize("int8")
    x = rng.standard_normal((40, 12)).astype(np.float32)
    before = model.predict_on_batch(x)
    w = model.get_weights()
    w[0] = np.ascontiguousarray(w[0][:, ::-1])  # reorder the first layer's output channels
    w[2] = np.ascontiguousarray(w[2][::-1])
    w[1] = np.ascontiguousarray(w[1][::-1])
    model.set_weights(w)
    after = model.predict_on_batch(x)
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(after, layer_by_layer(model, x))
    # inputs the chain does not take: float64 and a strided view go through the layers
    np.testing.assert_array_equal(model.predict_on_batch(x.astype(np.float64)), after)
    wide = np.repeat(x, 2, axis=1)[:, ::2]
    assert quantization.dense_chain(model, wide) is None
    np.testing.assert_array_equal(model.predict_on_batch(wide), after)


def test_models_the_chain_does_not_take(rng):
    x = rng.standard_normal((10, 8)).astype(np.float32)
    elu = stack([8, 6, 3], ["elu", "softmax"])  # elu is not an epilogue activation
    mid_softmax = stack([8, 6, 3], ["softmax", "relu"])
    dropout = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(6), keras.layers.Dropout(0.5), keras.layers.Dense(3)]
    )
    for model in (elu, mid_softmax, dropout):
        model.quantize("int8")
        assert quantization.dense_chain(model, x) is None
        np.testing.assert_array_equal(model.predict_on_batch(x), layer_by_layer(model, x))
    plain = stack([8, 3], ["relu"])
    assert quantization.dense_chain(plain, x) is None  # not quantized


def test_softmax_rows_matches_numpy_and_checks_its_argument(rng):
    z = (rng.standard_normal((37, 11)) * 30).astype(np.float32)
    y = z.copy()
    _backend.cpu.softmax_rows(y)
    e = np.exp(z.astype(np.float64) - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="y: expected a C-contiguous 2-D float32"):
        _backend.cpu.softmax_rows(z.astype(np.float64))
    with pytest.raises(ValueError, match="y: expected a C-contiguous"):
        _backend.cpu.softmax_rows(np.ones((4, 6), np.float32)[:, ::2])
    frozen = z.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="y: array is read-only"):
        _backend.cpu.softmax_rows(frozen)


def test_chain_binding_rejects_mismatched_layers(rng):
    def layer(k, n):
        q, s = ops.quantize_int8(rng.standard_normal((k, n)).astype(np.float32), axis=0)
        return (ops.pack_int8(q), s, None, 1)

    x = rng.standard_normal((4, 6)).astype(np.float32)
    out = np.empty((4, 3), np.float32)
    with pytest.raises(ValueError, match="layer 1 takes 5 inputs but layer 0 gives 4"):
        _backend.cpu.int8_dense_chain(x, [layer(6, 4), layer(5, 3)], False, out)
    with pytest.raises(ValueError, match="x: expected 6 columns"):
        _backend.cpu.int8_dense_chain(x[:, :5].copy(), [layer(6, 3)], False, out)
    with pytest.raises(ValueError, match="out: expected 4 rows"):
        _backend.cpu.int8_dense_chain(x, [layer(6, 3)], False, np.empty((5, 3), np.float32))
    with pytest.raises(ValueError, match="activation: expected 0..4"):
        _backend.cpu.int8_dense_chain(x, [layer(6, 3)[:3] + (9,)], False, out)
    with pytest.raises(ValueError, match="layers: expected at least one layer"):
        _backend.cpu.int8_dense_chain(x, [], False, out)


def conv_pool_dense(image, dense, acts, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [
        keras.Input(shape=image),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
    ]
    layers += [keras.layers.Dense(d, activation=a) for d, a in zip(dense, acts)]
    model = keras.Sequential(layers)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3 for w in model.get_weights()])
    return model


@pytest.mark.parametrize("batch", [1, 5, 33, 257])
@pytest.mark.parametrize("dense, acts", [([10], ["softmax"]), ([9, 4], ["relu", None]), ([7, 3], ["tanh", "softmax"])])
def test_conv_pool_then_dense_chain_in_one_call_equals_the_layers(isa, rng, batch, dense, acts):
    """Conv2D + MaxPooling2D + Flatten + int8 Dense layers: the Dense layers run inside the
    convolution's C++ call on each thread's pooled images; the same bits as the layers in turn."""
    model = conv_pool_dense((9, 7, 2), dense, acts)
    model.quantize("int8")
    x = rng.standard_normal((batch, 9, 7, 2)).astype(np.float32)
    x[0] = 0  # an all-zero image and, after relu and pooling, possibly an all-zero row
    y = model.predict_on_batch(x)
    plan = quantization._tail_plan(model, 2)
    assert plan is not None and (quantization._chain_stack(plan) is None) == (isa == "reference")
    np.testing.assert_array_equal(y, layer_by_layer(model, x))
    np.testing.assert_array_equal(model.predict(x, batch_size=16, verbose=0), y)


def test_conv_pool_tail_falls_back_where_the_chain_does_not_apply(rng):
    x = rng.standard_normal((6, 9, 7, 2)).astype(np.float32)
    elu = conv_pool_dense((9, 7, 2), [5], ["elu"])  # not an epilogue activation: the layers run in turn
    elu.quantize("int8")
    assert quantization._tail_plan(elu, 2) is None
    np.testing.assert_array_equal(elu.predict_on_batch(x), layer_by_layer(elu, x))
    keras.utils.set_random_seed(0)
    no_flatten = keras.Sequential(
        [
            keras.Input(shape=(9, 7, 2)),
            keras.layers.Conv2D(6, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Dense(3),  # on the channel axis of every pixel, not a chain over images
        ]
    )
    no_flatten.quantize("int8")
    assert quantization._tail_plan(no_flatten, 2) is None
    np.testing.assert_array_equal(no_flatten.predict_on_batch(x), layer_by_layer(no_flatten, x))


def _int8_layer(rng, k, n, act=1):
    q, s = ops.quantize_int8(rng.standard_normal((k, n)).astype(np.float32), axis=0)
    return (ops.pack_int8(q), s, rng.standard_normal(n).astype(np.float32), act)


@pytest.mark.parametrize("image", [(5, 6), (21, 19)])  # 19 x 17 outputs: more rows than a block
def test_conv_binding_chain_without_pooling_equals_conv_then_chain(rng, image):
    c, f = 3, 4
    x = rng.standard_normal((3, *image, c)).astype(np.float32)
    q, s = ops.quantize_int8(rng.standard_normal((9 * c, f)).astype(np.float32), axis=0)
    w = ops.pack_int8(q)
    oh, ow = image[0] - 2, image[1] - 2
    geometry = ((3, 3), (1, 1), (1, 1), (0, 0))
    layers = [_int8_layer(rng, oh * ow * f, 6), _int8_layer(rng, 6, 2, 0)]
    y = np.empty((3, oh, ow, f), np.float32)
    _backend.cpu.conv2d_int8_packed(x, w, s, y, *geometry, None, 1)
    expected = np.empty((3, 2), np.float32)
    _backend.cpu.int8_dense_chain(y.reshape(3, -1), layers, True, expected)
    y2, z = np.empty_like(y), np.empty((3, 2), np.float32)
    _backend.cpu.conv2d_int8_packed(x, w, s, y2, *geometry, None, 1, None, (layers, True, z))
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(z, expected)
    with pytest.raises(ValueError, match="layer 0 takes 7 inputs, its input has"):
        _backend.cpu.conv2d_int8_packed(x, w, s, y2, *geometry, None, 1, None, ([_int8_layer(rng, 7, 2)], False, z))
    with pytest.raises(ValueError, match="chain out: expected"):
        _backend.cpu.conv2d_int8_packed(x, w, s, y2, *geometry, None, 1, None, (layers, False, z[:2]))
    with pytest.raises(ValueError, match="chain: expected"):
        _backend.cpu.conv2d_int8_packed(x, w, s, y2, *geometry, None, 1, None, (layers, False))


def test_two_conv_pool_pairs_then_the_tail_in_the_second_call(rng):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input(shape=(12, 10, 2)),
            keras.layers.Conv2D(5, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(7, 3, padding="same"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.quantize("int8")
    assert model._int8_fusion == (0, 2)
    x = rng.standard_normal((9, 12, 10, 2)).astype(np.float32)
    for _ in range(2):  # the second call reads the cached plans
        np.testing.assert_array_equal(model.predict_on_batch(x), layer_by_layer(model, x))
    assert quantization._tail_plan(model, 2) is None and quantization._tail_plan(model, 4) is not None
