"""``model.export(path, format="onnx")``: a forgeml.keras model as an ONNX graph (opset 17).

One small converter per layer type (the skl2onnx shape: a registry of converters). Tensors stay
channels-last as in forgeml; Conv and pooling, which ONNX defines on NCHW, get a Transpose in
front, and the graph transposes back only where a layout-sensitive layer (Flatten, Dense,
BatchNormalization, ...) follows. Dropout is the identity at inference. SimpleRNN, LSTM and GRU
map to ONNX's RNN / LSTM / GRU (gates reordered; GRU reset_after=True is linear_before_reset=1). An int8-quantized Dense
becomes the same arithmetic in ONNX integer ops: per-row symmetric quantization of its input,
MatMulInteger with the int8 kernel, then the two scales and the bias; an int8 Conv2D likewise
with a scale per image and ConvInteger (operands offset to uint8 with zero point 128).

Before returning, the file is loaded into ONNX Runtime and run on sample inputs; its outputs must
agree with ``model.predict`` (max |diff| <= atol + rtol |ref|) or the export raises and removes
the file. Needs ``pip install 'forgeml[onnx]'`` (onnx, onnxruntime).
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["export_onnx", "to_model_proto", "CONVERTERS", "OPSET"]

OPSET = 17
CONVERTERS = {}


def _converter(*names):
    def deco(fn):
        for n in names:
            CONVERTERS[n] = fn
        return fn

    return deco


def _require():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"ONNX export needs onnx and onnxruntime: pip install 'forgeml[onnx]' ({exc})") from None


class _Graph:
    """Accumulates nodes and initializers; tracks whether the current tensor is NCHW."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits, self._n = [], [], 0

    def name(self, base):
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, array, base="const"):
        n = self.name(base)
        self.inits.append(self.numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(self, op_type, inputs, base=None, **attrs):
        out = self.name(base or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], **attrs))
        return out


class _State:
    def __init__(self, tensor, nchw=False):
        self.tensor, self.nchw = tensor, nchw


def _nhwc(g, s):
    if s.nchw:
        s.tensor, s.nchw = g.op("Transpose", [s.tensor], perm=[0, 2, 3, 1]), False
    return s.tensor


def _nchw(g, s):
    if not s.nchw:
        s.tensor, s.nchw = g.op("Transpose", [s.tensor], perm=[0, 3, 1, 2]), True
    return s.tensor


def _activation(g, s, act):
    """The activation function object of forgeml.keras.activations, applied to s."""
    name = act.name
    x = s.tensor
    if name == "linear":
        return
    if name == "relu":
        s.tensor = g.op("Relu", [x])
    elif name == "sigmoid":
        s.tensor = g.op("Sigmoid", [x])
    elif name == "tanh":
        s.tensor = g.op("Tanh", [x])
    elif name == "softmax":
        s.tensor = g.op("Softmax", [_nhwc(g, s)], axis=-1)
    elif name == "gelu":  # the exact erf form
        e = g.op("Erf", [g.op("Mul", [x, g.const(np.float32(1 / np.sqrt(2)))])])
        s.tensor = g.op("Mul", [g.op("Mul", [x, g.const(np.float32(0.5))]), g.op("Add", [e, g.const(np.float32(1))])])
    else:
        raise NotImplementedError(f"ONNX export: activation {name!r} has no converter")


def _same_pads(in_hw, k, stride, dilation, padding):
    if padding == "valid":
        return [0, 0, 0, 0]
    pads_begin, pads_end = [], []
    for size, kk, st, d in zip(in_hw, k, stride, dilation):
        out = -(-size // st)
        total = max((out - 1) * st + (kk - 1) * d + 1 - size, 0)
        pads_begin.append(total // 2)
        pads_end.append(total - total // 2)
    return pads_begin + pads_end


# ---------------------------------------------------------------- converters: (graph, state, layer)


@_converter("InputLayer", "Dropout")
def _identity(g, s, layer):
    return


@_converter("Activation")
def _act_layer(g, s, layer):
    _activation(g, s, layer.activation)


@_converter("Dense")
def _dense(g, s, layer):
    x = _nhwc(g, s)
    if layer._quantization_mode == "int8":
        y = _dense_int8(g, x, layer)
    else:
        y = g.op("MatMul", [x, g.const(np.asarray(layer.kernel.numpy(), np.float32), "kernel")])
    if layer.use_bias:
        y = g.op("Add", [y, g.const(layer.bias.numpy().astype(np.float32), "bias")])
    s.tensor = y
    _activation(g, s, layer.activation)


def _dense_int8(g, x, layer):
    """x @ dequant(W) with x quantized per row, symmetric: the arithmetic of ops.matmul_int8."""
    amax = g.op("ReduceMax", [g.op("Abs", [x])], axes=[-1], keepdims=1)
    zero = g.op("Equal", [amax, g.const(np.float32(0))])
    scale = g.op("Where", [zero, g.const(np.float32(1)), g.op("Div", [amax, g.const(np.float32(127))])])
    q = g.op("Clip", [g.op("Round", [g.op("Div", [x, scale])]), g.const(np.float32(-127)), g.const(np.float32(127))])
    q8 = g.op("Cast", [q], to=3)  # INT8
    acc = g.op("MatMulInteger", [q8, g.const(layer.kernel.numpy().astype(np.int8), "kernel_int8")])
    y = g.op("Mul", [g.op("Cast", [acc], to=1), scale])
    return g.op("Mul", [y, g.const(layer.kernel_scale.numpy().astype(np.float32), "kernel_scale")])


@_converter("Conv2D", "Convolution2D")
def _conv(g, s, layer):
    in_hw = layer.input_shape[1:3]
    x = _nchw(g, s)
    if layer._quantization_mode == "int8":
        s.tensor = _conv_int8(
            g, x, layer, _same_pads(in_hw, layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding)
        )
        return _activation(g, s, layer.activation)
    w = np.ascontiguousarray(np.transpose(layer.kernel.numpy(), (3, 2, 0, 1)), np.float32)  # (O, C, KH, KW)
    inputs = [x, g.const(w, "kernel")]
    if layer.use_bias:
        inputs.append(g.const(layer.bias.numpy().astype(np.float32), "bias"))
    s.tensor = g.op(
        "Conv",
        inputs,
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
        pads=_same_pads(in_hw, layer.kernel_size, layer.strides, layer.dilation_rate, layer.padding),
    )
    _activation(g, s, layer.activation)


def _conv_int8(g, x, layer, pads):
    """The arithmetic of the int8 Conv2D (quantization.conv_forward_int8) in ONNX integer ops, on
    NCHW x: each image quantized symmetrically with its own scale, as unsigned bytes q + 128
    (zero point 128, padded with 128 = a zero), ConvInteger with the kernel as q_w + 128 (zero
    point 128), then the image scale, the per-filter kernel scale and the bias."""
    amax = g.op("ReduceMax", [g.op("Abs", [x])], axes=[1, 2, 3], keepdims=1)  # (N, 1, 1, 1)
    zero = g.op("Equal", [amax, g.const(np.float32(0))])
    scale = g.op("Where", [zero, g.const(np.float32(1)), g.op("Div", [amax, g.const(np.float32(127))])])
    q = g.op("Clip", [g.op("Round", [g.op("Div", [x, scale])]), g.const(np.float32(-127)), g.const(np.float32(127))])
    qu = g.op("Cast", [g.op("Add", [q, g.const(np.float32(128))])], to=2)  # UINT8
    if any(pads):
        top, left, bottom, right = pads
        qu = g.op(
            "Pad",
            [qu, g.const(np.asarray([0, 0, top, left, 0, 0, bottom, right], np.int64), "pads"), g.const(np.uint8(128))],
        )
    w = np.transpose(layer.kernel.numpy().astype(np.int16) + 128, (3, 2, 0, 1)).astype(np.uint8)  # (O, C, KH, KW)
    zp = g.const(np.uint8(128), "zero_point")
    acc = g.op(
        "ConvInteger",
        [qu, g.const(np.ascontiguousarray(w), "kernel_u8"), zp, zp],
        kernel_shape=list(layer.kernel_size),
        strides=list(layer.strides),
        dilations=list(layer.dilation_rate),
    )
    per_filter = (1, layer.filters, 1, 1)
    y = g.op("Mul", [g.op("Cast", [acc], to=1), scale])
    y = g.op("Mul", [y, g.const(layer.kernel_scale.numpy().astype(np.float32).reshape(per_filter), "kernel_scale")])
    if layer.use_bias:
        y = g.op("Add", [y, g.const(layer.bias.numpy().astype(np.float32).reshape(per_filter), "bias")])
    return y


@_converter("MaxPooling2D", "MaxPool2D", "AveragePooling2D", "AvgPool2D")
def _pool(g, s, layer):
    in_hw = layer.input_shape[1:3]
    x = _nchw(g, s)
    op = "MaxPool" if "Max" in type(layer).__name__ else "AveragePool"
    s.tensor = g.op(
        op,
        [x],
        kernel_shape=list(layer.pool_size),
        strides=list(layer.strides),
        pads=_same_pads(in_hw, layer.pool_size, layer.strides, (1, 1), layer.padding),
    )


@_converter("GlobalAveragePooling2D", "GlobalAvgPool2D", "GlobalMaxPooling2D", "GlobalMaxPool2D")
def _global_pool(g, s, layer):
    x = _nhwc(g, s)
    op = "ReduceMax" if "Max" in type(layer).__name__ else "ReduceMean"
    s.tensor = g.op(op, [x], axes=[1, 2], keepdims=int(layer.keepdims))


@_converter("Flatten")
def _flatten(g, s, layer):
    s.tensor = g.op("Flatten", [_nhwc(g, s)], axis=1)


@_converter("Reshape")
def _reshape(g, s, layer):
    shape = np.asarray([0, *layer.target_shape], np.int64)  # 0: keep the batch dimension
    s.tensor = g.op("Reshape", [_nhwc(g, s), g.const(shape, "shape")])


@_converter("BatchNormalization")
def _batchnorm(g, s, layer):
    if layer.axis not in (-1, len(layer.input_shape) - 1):
        raise NotImplementedError(f"ONNX export: BatchNormalization {layer.name!r} with axis={layer.axis}")
    x = _nhwc(g, s)
    inv = 1.0 / np.sqrt(layer.moving_variance.numpy().astype(np.float64) + layer.epsilon)
    a = inv * (layer.gamma.numpy() if layer.scale else 1.0)
    b = (layer.beta.numpy() if layer.center else 0.0) - layer.moving_mean.numpy() * a
    s.tensor = g.op(
        "Add",
        [g.op("Mul", [x, g.const(a.astype(np.float32), "bn_scale")]), g.const(np.asarray(b, np.float32), "bn_shift")],
    )


@_converter("Embedding")
def _embedding(g, s, layer):
    ids = g.op("Cast", [_nhwc(g, s)], to=7)  # INT64
    s.tensor = g.op("Gather", [g.const(layer.embeddings.numpy().astype(np.float32), "embeddings"), ids], axis=0)


# Keras gate order -> ONNX gate order (LSTM: Keras i, f, c, o; ONNX i, o, f, c. GRU: z, r, h both).
_GATE_ORDER = {"SimpleRNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [0, 1, 2]}


def _gates(w, order, h):
    """Columns of w (..., g*h) regrouped into ONNX's gate order."""
    return np.concatenate([w[..., k * h : (k + 1) * h] for k in order], axis=-1)


@_converter("SimpleRNN", "LSTM", "GRU")
def _recurrent(g, s, layer):
    kind = type(layer).__name__
    default = layer.activation.name == "tanh" and (kind == "SimpleRNN" or layer.recurrent_activation.name == "sigmoid")
    if not default or layer.go_backwards or layer.return_state:
        raise NotImplementedError(
            f"ONNX export: {kind} {layer.name!r} needs the default activations and no go_backwards / return_state"
        )
    h, order = layer.units, _GATE_ORDER[kind]
    W = _gates(layer.kernel.numpy(), order, h).T[None].astype(np.float32)  # (1, g*h, in)
    R = _gates(layer.recurrent_kernel.numpy(), order, h).T[None].astype(np.float32)
    gh = W.shape[1]
    if layer.use_bias:
        b = layer.bias.numpy()
        wb, rb = (b[0], b[1]) if b.ndim == 2 else (b, np.zeros_like(b))
        B = np.concatenate([_gates(wb, order, h), _gates(rb, order, h)])[None].astype(np.float32)
    else:
        B = np.zeros((1, 2 * gh), np.float32)
    x = g.op("Transpose", [_nhwc(g, s)], perm=[1, 0, 2])  # (seq, batch, features)
    attrs = {"hidden_size": h}
    if kind == "GRU":
        attrs["linear_before_reset"] = int(layer.reset_after)
    y, y_h = g.name("y"), g.name("y_h")
    g.nodes.append(
        g.helper.make_node(
            "RNN" if kind == "SimpleRNN" else kind,
            [x, g.const(W, "W"), g.const(R, "R"), g.const(B, "B")],
            [y, y_h],
            **attrs,
        )
    )
    if layer.return_sequences:  # (seq, 1, batch, h) -> (batch, seq, h)
        y = g.op("Squeeze", [y, g.const(np.asarray([1], np.int64))])
        s.tensor = g.op("Transpose", [y], perm=[1, 0, 2])
    else:  # (1, batch, h) -> (batch, h)
        s.tensor = g.op("Squeeze", [y_h, g.const(np.asarray([0], np.int64))])


# ---------------------------------------------------------------- model -> graph -> file


def to_model_proto(model):
    """The ONNX ModelProto of a built forgeml.keras model (input 'input', output 'output')."""
    _require()
    from onnx import TensorProto, checker, helper

    if not model.built:
        raise ValueError(f"Model {model.name!r} must be built before export: call it on data first")
    g = _Graph()
    s = _State("input")
    for layer in model.layers:
        conv = CONVERTERS.get(type(layer).__name__)
        if conv is None:
            raise NotImplementedError(
                f"ONNX export: layer {layer.name!r} of type {type(layer).__name__} has no "
                f"converter (supported: {', '.join(sorted(CONVERTERS))})"
            )
        conv(g, s, layer)
    _nhwc(g, s)
    g.nodes.append(helper.make_node("Identity", [s.tensor], ["output"]))
    in_shape = ["batch", *model.input_shape[1:]]
    out_shape = ["batch", *model.output_shape[1:]]
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        g.inits,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="forgeml")
    proto.ir_version = 8  # readable by every onnxruntime that supports opset 17
    checker.check_model(proto)
    return proto


def _sample(model, n, seed):
    rng = np.random.default_rng(seed)
    shape = (n, *model.input_shape[1:])
    first = model.layers[0]
    if type(first).__name__ == "Embedding":
        return rng.integers(0, first.input_dim, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def check_in_onnxruntime(model, path_or_bytes, x, rtol=1e-4, atol=1e-5):
    """Run the exported graph in ONNX Runtime on x and compare with model.predict; returns the
    max abs difference; a mismatch raises RuntimeError."""
    import onnxruntime as ort

    sess = ort.InferenceSession(path_or_bytes, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": np.ascontiguousarray(x, np.float32)})[0]
    ref = np.asarray(model.predict(x, verbose=0))
    if got.shape != ref.shape:
        raise RuntimeError(f"ONNX export: ONNX Runtime output shape {got.shape} differs from predict's {ref.shape}")
    diff = float(np.abs(got - ref).max()) if ref.size else 0.0
    limit = atol + rtol * float(np.abs(ref).max()) if ref.size else 0.0
    if not diff <= limit:
        raise RuntimeError(f"ONNX export: ONNX Runtime and forgeml disagree: max |diff| = {diff:.3g} > {limit:.3g}")
    return diff


def export_onnx(model, filepath, sample_input=None, rtol=None, atol=1e-5):
    """Write the model to `filepath` as ONNX, then check it in ONNX Runtime on `sample_input`
    (default: 8 random rows of the input shape). Returns the max abs difference found.

    Layers whose products run in bf16 (mixed_bfloat16) are exported in float32, so the check
    allows bf16 rounding (rtol 2e-2) for such models; otherwise rtol is 1e-4."""
    _require()
    from .. import mixed_precision

    proto = to_model_proto(model)
    filepath = os.fspath(filepath)
    with open(filepath, "wb") as f:
        f.write(proto.SerializeToString())
    x = _sample(model, 8, 0) if sample_input is None else np.asarray(sample_input, np.float32)
    if rtol is None:
        rtol = 2e-2 if mixed_precision.bf16_layers(model) else 1e-4
    try:
        return check_in_onnxruntime(model, filepath, x, rtol, atol)
    except Exception:
        os.remove(filepath)
        raise
