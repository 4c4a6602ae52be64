"""model.export(path, format="onnx"): every supported layer type round-trips through ONNX Runtime
(max |diff| <= 1e-5 against forgeml's predict), int8-quantized Dense included; unsupported layers
and mismatches raise."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from forgeml import keras  # noqa: E402
from forgeml.keras.export import onnx as onnx_export  # noqa: E402

L = keras.layers


def run_ort(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


def built(layers, x):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(layers)
    model.predict(x, verbose=0)
    return model


def check(model, x, tmp_path, atol=1e-5):
    path = tmp_path / "m.onnx"
    diff = model.export(path, format="onnx")
    assert diff <= atol
    got, ref = run_ort(path, x), model.predict(x, verbose=0)
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= atol
    return got


def test_cnn_layers(tmp_path, rng):
    x = rng.standard_normal((6, 9, 11, 2)).astype(np.float32)
    model = built(
        [
            keras.Input(shape=(9, 11, 2)),
            L.Conv2D(4, 3, padding="same", activation="relu"),
            L.BatchNormalization(),
            L.MaxPooling2D(2, padding="same"),
            L.Conv2D(5, (2, 3), strides=(1, 2), padding="valid", activation="tanh", dilation_rate=1),
            L.AveragePooling2D(2, strides=1),
            L.Flatten(),
            L.Dropout(0.3),
            L.Dense(12, activation="gelu"),
            L.Dense(4, activation="softmax"),
        ],
        x,
    )
    bn = model.layers[1]  # non-trivial statistics, so the folded scale and shift are exercised
    bn.moving_mean.assign(rng.standard_normal(4)), bn.moving_variance.assign(rng.uniform(0.5, 2, 4))
    bn.gamma.assign(rng.uniform(0.5, 1.5, 4)), bn.beta.assign(rng.standard_normal(4))
    check(model, x, tmp_path)


def test_dilated_strided_same_conv_and_global_pools(tmp_path, rng):
    x = rng.standard_normal((3, 12, 10, 3)).astype(np.float32)
    for pool in (L.GlobalAveragePooling2D(), L.GlobalMaxPooling2D()):
        model = built(
            [
                keras.Input(shape=(12, 10, 3)),
                L.Conv2D(4, 3, strides=2, padding="same", activation="sigmoid"),
                L.Conv2D(4, 3, dilation_rate=2, padding="same"),
                pool,
                L.Dense(2),
            ],
            x,
        )
        check(model, x, tmp_path)


def test_dense_reshape_activation_embedding(tmp_path, rng):
    x = rng.standard_normal((5, 24)).astype(np.float32)
    model = built(
        [
            keras.Input(shape=(24,)),
            L.Reshape((4, 6)),
            L.Dense(3),
            L.Activation("relu"),
            L.Flatten(),
            L.Dense(2, activation="sigmoid"),
        ],
        x,
    )
    check(model, x, tmp_path)
    ids = rng.integers(0, 30, (7, 5)).astype(np.float32)
    emb = built([keras.Input(shape=(5,)), L.Embedding(30, 4), L.Flatten(), L.Dense(3, activation="softmax")], ids)
    check(emb, ids, tmp_path)


def test_int8_quantized_dense_matches_exactly(tmp_path, rng):
    x = rng.standard_normal((16, 20)).astype(np.float32)
    model = built([keras.Input(shape=(20,)), L.Dense(32, activation="relu"), L.Dense(5, activation="softmax")], x)
    model.quantize("int8")
    got = check(model, x, tmp_path, atol=1e-6)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert "MatMulInteger" in ops  # the integer product, not a dequantized float kernel
    assert got.shape == (16, 5)


@pytest.mark.parametrize(
    "conv",
    [
        lambda: L.Conv2D(6, 3, padding="same", activation="relu"),
        lambda: L.Conv2D(5, (3, 2), strides=(2, 1), padding="valid", activation="tanh"),
        lambda: L.Conv2D(4, 3, dilation_rate=2, padding="same", use_bias=False),
    ],
)
def test_int8_quantized_conv2d_runs_as_conv_integer(tmp_path, rng, conv):
    x = rng.standard_normal((5, 9, 8, 3)).astype(np.float32)
    x[1] = 0  # an all-zero image: scale 1, as in forgeml
    layers = [keras.Input(shape=(9, 8, 3)), conv(), L.MaxPooling2D(), L.Flatten(), L.Dense(4, activation="softmax")]
    model = built(layers, x)
    model.layers[0].bias is None or model.layers[0].bias.assign(rng.standard_normal(model.layers[0].bias.shape) * 0.3)
    model.quantize("int8")
    got = check(model, x, tmp_path, atol=1e-6)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
    assert {"ConvInteger", "MatMulInteger"} <= ops  # integer products, not dequantized float kernels
    assert got.shape == (5, 4)


@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU", "GRU_v1"])
def test_recurrent_layers(tmp_path, rng, cell):
    x = rng.standard_normal((4, 7, 5)).astype(np.float32)
    make = (lambda **kw: L.GRU(reset_after=False, **kw)) if cell == "GRU_v1" else getattr(L, cell)
    model = built([keras.Input(shape=(7, 5)), make(units=6, return_sequences=True), make(units=3), L.Dense(2)], x)
    for layer in model.layers[:2]:  # non-zero biases
        layer.bias.assign(rng.standard_normal(layer.bias.shape) * 0.3)
    check(model, x, tmp_path)


def test_unsupported_layer_and_mismatch_raise(tmp_path, rng):
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    model = built([keras.Input(shape=(4, 3)), L.SimpleRNN(2, go_backwards=True)], x)
    with pytest.raises(NotImplementedError, match="SimpleRNN"):
        model.export(tmp_path / "r.onnx")
    with pytest.raises(ValueError, match="format"):
        model.export(tmp_path / "r.tflite", format="tflite")
    x4 = rng.standard_normal((2, 4)).astype(np.float32)
    dense = built([keras.Input(shape=(4,)), L.Dense(3)], x4)
    path = tmp_path / "bad.onnx"
    onnx_export.export_onnx(dense, path)
    dense.layers[0].bias.assign(np.ones(3))  # the model changes after export: the check must notice
    with pytest.raises(RuntimeError, match="disagree"):
        onnx_export.check_in_onnxruntime(dense, str(path), x4)
