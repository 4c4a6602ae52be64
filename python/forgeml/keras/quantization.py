"""Post-training int8 quantization: ``model.quantize("int8")`` as in Keras 3.

Each Dense layer's kernel (in, units) (and each Conv2D kernel, as (KH KW C, filters)) is replaced by int8 values with one symmetric scale per
output channel (``scale_j = max_i |W_ij| / 127``); at predict time each input row is quantized
with its own dynamic scale and the product runs on the int8 GEMM
(``forgeml.ops.matmul_int8``: int32 sums, dequantize + bias + activation in the epilogue).
Conv2D quantizes each input image with its own dynamic scale and runs an int8 GEMM over the
im2col patches: on the CPU one C++ call quantizes, gathers and multiplies
(``conv2d_int8_packed``), elsewhere the patches are NumPy / CuPy views. The layer's weights become ``[kernel (int8), bias, kernel_scale]``; they save and load with the
model (the layer config records ``quantization_mode``). Other layers are left in float32, as
Keras does for layers it cannot quantize. A quantized model predicts and evaluates; ``fit``
raises (``model.quantize`` is post-training only).
"""

from __future__ import annotations

import numpy as np

from .. import _backend
from ..ops.gemm import ACTIVATIONS
from . import activations, backend
from .layers.base import Variable
from .layers.convolutional import Conv2D
from .layers.core import Dense
from .layers.pooling import MaxPooling2D
from .layers.reshaping import Flatten

__all__ = ["quantize_model", "quantize_layer", "is_quantized", "dense_chain", "QUANTIZATION_MODES"]

QUANTIZATION_MODES = ("int8",)
_ops = None


def _kernels():
    global _ops
    if _ops is None:
        from .. import ops

        _ops = ops
    return _ops


def _check_mode(mode):
    if mode not in QUANTIZATION_MODES:
        raise ValueError(f"mode: expected one of {QUANTIZATION_MODES}, got {mode!r}")


def quantizable(layer) -> bool:
    return type(layer) in (Dense, Conv2D)


def quantize_layer(layer, mode="int8"):
    """Replace a built Dense layer's float kernel with int8 values and per-channel scales."""
    _check_mode(mode)
    if not layer.built:
        raise ValueError(f"Layer {layer.name!r}: build it (call the model on data) before quantizing")
    if not quantizable(layer):
        raise NotImplementedError(f"Layer {layer.name!r} ({type(layer).__name__}) has no int8 path")
    xp = layer.xp
    w = backend.to_numpy(layer.kernel.value)
    q, scale = _kernels().quantize_int8(w.reshape(-1, w.shape[-1]), axis=0)  # Conv2D: (KH KW C, O)
    qv = Int8Kernel(
        backend.to_xp(q.reshape(w.shape), xp, dtype=np.int8), "kernel", trainable=False, path=f"{layer.name}/kernel"
    )
    sv = Variable(
        backend.to_xp(scale, xp, dtype=np.float32), "kernel_scale", trainable=False, path=f"{layer.name}/kernel_scale"
    )
    layer.kernel, layer.kernel_scale = qv, sv
    layer._weights = [qv] + ([layer.bias] if layer.use_bias else []) + [sv]
    layer._quantization_mode = mode
    qv.packed()
    global _generation
    _generation += 1


class Int8Kernel(Variable):
    """A quantized layer's int8 kernel. On the CPU it also keeps the kernel packed for the int8
    GEMM (``ops.pack_int8``), made at quantization and again after ``assign`` (set_weights,
    loading) or when the active ISA changed, so predict does not re-pack the weights per call."""

    _packed = None

    def assign(self, new):
        super().assign(new)
        self._packed = None

    def packed(self):
        """The (rows, out) int8 matrix packed for the CPU GEMM, or the plain array on a GPU."""
        v = self.value
        if type(v) is not np.ndarray:
            return v.reshape(-1, v.shape[-1])
        p = self._packed
        if p is None or p.isa != backend._device.active_isa():
            if backend._device.active_isa() == "reference":
                return v.reshape(-1, v.shape[-1])  # the oracle ISA has no packed layout
            p = self._packed = _kernels().pack_int8(v.reshape(-1, v.shape[-1]))
        return p


def quantize_model(model, mode="int8"):
    """model.quantize(mode): every Dense and Conv2D layer to int8; the model is repacked for predict."""
    _check_mode(mode)
    if not model.built:
        raise ValueError(f"Model {model.name!r} must be built before quantizing: call it on data or build() it")
    done = 0
    for layer in model.layers:
        if layer._quantization_mode:
            raise ValueError(f"Layer {layer.name!r} is already quantized ({layer._quantization_mode})")
        if quantizable(layer):
            quantize_layer(layer, mode)
            done += 1
    if not done:
        raise ValueError(f"Model {model.name!r} has no layer that can be quantized to {mode} (Dense, Conv2D)")
    model._pack()
    model.__dict__["_int8_fusion"] = _pool_fusion(model)
    return model


def _pool_fusion(model):
    """Indices i of a layer chain where a quantized Conv2D is followed directly by a MaxPooling2D:
    predict runs the pair as one call (``forward_fused``), the pooling inside the convolution's
    C++ call, so the full convolution output is never written. Only plain chains (Sequential);
    a functional graph runs its layers one by one."""
    if getattr(model, "_graph", None) is not None:
        return ()
    layers = model._layers
    return tuple(i for i in range(len(layers) - 1) if _fusable(layers[i], layers[i + 1]))


def _fusable(conv, pool):
    return (
        type(conv) is Conv2D
        and conv._quantization_mode == "int8"
        and type(pool) is MaxPooling2D
        and pool.data_format == "channels_last"
    )


def forward_fused(model, x):
    """Model._forward at predict time with the (Conv2D int8, MaxPooling2D) pairs of
    ``model._int8_fusion`` fused; the same values as the layers in sequence."""
    layers, fused = model._layers, model._int8_fusion
    i = 0
    while i < len(layers):
        if i in fused and i + 1 < len(layers) and _fusable(layers[i], layers[i + 1]):
            plan = _tail_plan(model, i + 2)
            if plan is not None:  # Flatten + int8 Dense layers to the end: inside the same call
                y = conv_forward_int8(layers[i], x, pool=layers[i + 1], chain=plan)
                if y is not None:
                    return y
            x = conv_forward_int8(layers[i], x, pool=layers[i + 1])
            i += 2
        else:
            x = layers[i].forward(x, False)
            i += 1
    return x


def _tail_plan(model, start):
    """The chain plan of the layers after a fused conv + pool pair at ``start``: a Flatten, then
    int8 Dense layers to the end of the model (``_chain_plan``); None otherwise. Cached per model
    and start as ``dense_chain``'s plan is."""
    layers = model._layers
    cached = model.__dict__.get("_int8_tail")
    if cached is None or cached[0] != _generation or cached[1] != layers:
        cached = model._int8_tail = (_generation, list(layers), {})
    plans = cached[2]
    if start not in plans:
        flat = start < len(layers) and type(layers[start]) is Flatten
        plans[start] = _chain_plan(layers[start + 1 :]) if flat else None
    return plans[start]


def is_quantized(model) -> bool:
    return any(getattr(layer, "_quantization_mode", None) for layer in model.layers)  # nested models too


def _int8_kernel(layer):
    k = layer.kernel
    return k.packed() if isinstance(k, Int8Kernel) else k.value.reshape(-1, k.value.shape[-1])


def dense_forward_int8(layer, x, logits=False):
    """Dense.forward of an int8 layer: dynamic per-row activation scales, the int8 GEMM with the
    bias and relu/sigmoid/tanh/gelu in its epilogue, other activations after it."""
    ops = _kernels()
    lead = x.shape[:-1]
    if x.ndim != 2:
        x = x.reshape(-1, x.shape[-1])
    act = activations.linear if logits else layer.activation
    bias = layer.bias.value if layer.use_bias else None
    q, s = _int8_kernel(layer), layer.kernel_scale.value
    fused = act.kernel is not None and not act.needs_input or act is activations.linear
    if type(q).__name__ == "PackedInt8" and type(x) is np.ndarray and x.dtype == np.float32 and x.strides[-1] == 4:
        # straight to the binding (it checks shapes, dtypes and strides): a small layer's call
        # would otherwise spend more time in matmul_int8's Python checks than in the GEMM
        y = np.empty((x.shape[0], layer.units), np.float32)
        _backend.cpu.gemm_int8_packed(x, None, q, s, y, bias, ACTIVATIONS[act.kernel] if fused else 0)
        if act is activations.softmax and y.shape[0]:
            _backend.cpu.softmax_rows(y)  # the softmax dense_chain ends with: the same bits either way
        elif not fused:
            y = act.forward(y)
        return y if len(lead) == 1 else y.reshape(*lead, layer.units)
    if fused:
        y = ops.matmul_int8(x, None, q, s, bias=bias, activation=act.kernel)
    else:
        y = act.forward(ops.matmul_int8(x, None, q, s, bias=bias))
    return y if len(lead) == 1 else y.reshape(*lead, layer.units)


def dense_chain(model, x):
    """A model whose layers are all int8 Dense layers on the CPU, predicting a 2-D float32 batch:
    the whole stack in one C++ call (``int8_dense_chain``: row blocks through every layer on one
    thread, the activations kept in cache, one thread-pool call), bit-identical to the layers one
    by one. None when the model or the input does not qualify (then the layers run in turn)."""
    if type(x) is not np.ndarray or x.ndim != 2 or x.dtype != np.float32 or not x.flags.c_contiguous:
        return None
    layers = model._layers
    cached = model.__dict__.get("_int8_chain")
    if cached is None or cached[0] != _generation or cached[1] != layers:
        cached = model._int8_chain = (_generation, list(layers), _chain_plan(layers))
    plan = cached[2]
    if plan is None or x.shape[1] != plan[0][0].kernel.value.shape[0]:
        return None
    stack = _chain_stack(plan)
    if stack is None:
        return None
    last = plan[-1][0]
    y = np.empty((x.shape[0], last.units), np.float32)
    if x.shape[0]:
        _backend.cpu.int8_dense_chain(x, stack, last.activation is activations.softmax, y)
    return y


def _chain_stack(plan):
    """The chain binding's layer list [(packed kernel, scale, bias, activation code)] of a plan;
    None on the reference ISA (no packed layout). Kept on the plan while every layer still has
    the same packed kernel, scale and bias objects under the same ISA (assign drops the packing)."""
    isa = backend._device.active_isa()
    memo = plan.stack
    if (
        memo is not None
        and memo[0] == isa
        and all(
            layer.kernel._packed is q
            and layer.kernel_scale.value is s
            and (layer.bias.value if layer.use_bias else None) is b
            for (layer, _), (q, s, b, _) in zip(plan, memo[1])
        )
    ):
        return memo[1]
    stack = []
    for layer, code in plan:
        q = layer.kernel.packed()
        if type(q) is np.ndarray:
            return None
        stack.append((q, layer.kernel_scale.value, layer.bias.value if layer.use_bias else None, code))
    plan.stack = (isa, stack)
    return stack


class _Plan(list):
    """[(layer, epilogue activation code)], with the binding's stack of the last call."""

    stack = None


_generation = 0  # bumped by quantize_layer: a model's cached chain plan is then rebuilt


def _chain_plan(layers):
    """[(layer, epilogue activation code)] when every layer is an int8 Dense whose activation the
    GEMM epilogue applies (the last may also be softmax, code 0 then), else None."""
    plan = _Plan()
    for i, layer in enumerate(layers):
        if type(layer) is not Dense or layer._quantization_mode != "int8" or not isinstance(layer.kernel, Int8Kernel):
            return None
        if layer.kernel.value.ndim != 2 or type(layer.kernel.value) is not np.ndarray:
            return None
        act = layer.activation
        if act is activations.softmax and i == len(layers) - 1:
            plan.append((layer, 0))
        elif act is activations.linear or (act.kernel is not None and not act.needs_input):
            plan.append((layer, ACTIVATIONS[act.kernel]))
        else:
            return None
    return plan or None


def _patches(x, layer):
    """im2col: (N, H, W, C) -> (N * OH * OW, KH * KW * C) in the kernel's (kh, kw, c) order."""
    xp = backend.xp_of(x)
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.strides, layer.dilation_rate
    n, h, w, c = x.shape
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if layer.padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        ph, pw = max((oh - 1) * sh + eh - h, 0), max((ow - 1) * sw + ew - w, 0)
        x = xp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    win = xp.lib.stride_tricks.sliding_window_view(x, (eh, ew), axis=(1, 2))  # (N, H', W', C, eh, ew)
    win = win[:, ::sh, ::sw, :, ::dh, ::dw]
    oh, ow = win.shape[1], win.shape[2]
    cols = xp.ascontiguousarray(win.transpose(0, 1, 2, 4, 5, 3)).reshape(n * oh * ow, kh * kw * c)
    return cols, (n, oh, ow)


def _conv_geometry(layer, h, w):
    """(oh, ow, pad_top, pad_left) of the layer on an h x w input, Keras's "same" / "valid"."""
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.strides, layer.dilation_rate
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if layer.padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        return oh, ow, max((oh - 1) * sh + eh - h, 0) // 2, max((ow - 1) * sw + ew - w, 0) // 2
    return max((h - eh) // sh + 1, 0), max((w - ew) // sw + 1, 0), 0, 0


def conv_forward_int8(layer, x, pool=None, chain=None):
    """Conv2D.forward of an int8 layer: each input image quantized with its own dynamic scale, the
    int8 GEMM over the im2col patches of the quantized images, bias and relu/sigmoid/tanh/gelu in
    the epilogue. (A scale per image, not per patch: the same product for a fraction of the
    work, since a small kernel's patch is only a few values.) On the CPU with a packed kernel one
    C++ call quantizes, gathers the int8 patches into the GEMM's operand and runs the GEMM
    (``conv2d_int8_packed``); elsewhere the patches are built with NumPy / CuPy views.
    pool: a MaxPooling2D layer applied to the result (inside the same C++ call on the CPU when the
    activation is in the epilogue; the output is then the pooled one, the same values).
    chain: with pool, the ``_chain_plan`` of int8 Dense layers applied to each flattened pooled
    image inside the same C++ call; their output is returned, or None when the call cannot take
    them (then nothing was computed)."""
    ops = _kernels()
    act = layer.activation
    bias = layer.bias.value if layer.use_bias else None
    q = _int8_kernel(layer)
    s = layer.kernel_scale.value
    fused = act.kernel is not None and not act.needs_input or act is activations.linear
    if chain is not None and not (pool is not None and fused and type(q).__name__ == "PackedInt8"):
        return None
    if type(q).__name__ == "PackedInt8" and type(x) is np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        n, h, w, _ = x.shape
        fuse_pool = pool is not None and fused
        key = (h, w, act, pool if fuse_pool else None)
        cache = layer.__dict__.setdefault("_int8_call_cache", {})  # per input size: the call's fixed args
        args = cache.get(key)
        if args is None:
            oh, ow, top, left = _conv_geometry(layer, h, w)
            geometry = (tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate), (top, left))
            code = ACTIVATIONS[act.kernel] if fused else 0
            if fuse_pool:
                ph, pw, pt, pl = _pool_geometry(pool, oh, ow)
                (kh, kw), (sh, sw) = pool.pool_size, pool.strides
                args = cache[key] = ((ph, pw, layer.filters), geometry, code, (oh, ow, kh, kw, sh, sw, pt, pl))
            else:
                args = cache[key] = ((oh, ow, layer.filters), geometry, code, None)
        out, geometry, code, pooling = args
        y = np.empty((n, *out), np.float32)
        if chain is not None:
            stack = _chain_stack(chain) if chain[0][0].kernel.value.shape[0] == y[0].size else None
            if stack is None:
                return None
            last = chain[-1][0]
            z = np.empty((n, last.units), np.float32)
            tail = (stack, last.activation is activations.softmax, z)
            _backend.cpu.conv2d_int8_packed(x, q, s, y, *geometry, bias, code, pooling, tail)
            return z
        _backend.cpu.conv2d_int8_packed(x, q, s, y, *geometry, bias, code, pooling)
        if fuse_pool:
            return y
        y = y if fused else act.forward(y)
        return y if pool is None else pool.forward(y, False)
    q_img, s_img = _quantize_images(x)
    cols, (n, oh, ow) = _patches(q_img, layer)
    xp = backend.xp_of(cols)
    row_scale = xp.repeat(s_img, oh * ow)
    if fused:
        y = ops.matmul_int8(cols, row_scale, q, s, bias=bias, activation=act.kernel)
    else:
        y = act.forward(ops.matmul_int8(cols, row_scale, q, s, bias=bias))
    y = y.reshape(n, oh, ow, layer.filters)
    return y if pool is None else pool.forward(y, False)


def _pool_geometry(pool, h, w):
    """(oh, ow, pad_top, pad_left) of a pooling layer on an h x w input (ops.conv._pads_1d's
    arithmetic; the layer's build already rejected windows larger than a "valid" input)."""
    (kh, kw), (sh, sw) = pool.pool_size, pool.strides
    if pool.padding == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        return oh, ow, max((oh - 1) * sh + kh - h, 0) // 2, max((ow - 1) * sw + kw - w, 0) // 2
    return (h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0


def _quantize_images(x):
    """Each image (N, H, W, C) quantized with its own dynamic scale (max |x| / 127 over the image):
    (int8 images, scales (N,)). Zero padding stays an exact zero."""
    q, s = _kernels().quantize_int8(x.reshape(x.shape[0], -1), axis=-1)
    return q.reshape(x.shape), s
