"""2-D convolution and pooling, channels last (Keras layout), forward and backward.

x is (N, H, W, C), a kernel w is (KH, KW, C, O), outputs are (N, OH, OW, O). ``padding`` follows
TensorFlow: "valid" uses no padding; "same" gives OH = ceil(H / stride) with total padding
max((OH - 1) * stride + (KH - 1) * dilation + 1 - H, 0), the odd extra row/column at the
bottom/right. NumPy arrays run the CPU kernels (csrc/cpu/conv), CuPy arrays the CUDA ones.
"""
from __future__ import annotations

import numpy as np

from .. import _backend
from .._backend import cuda_stream as _stream
from .._backend import device_ptr as _ptr

__all__ = ["conv2d", "conv2d_grad", "max_pool2d", "avg_pool2d", "max_pool2d_grad", "avg_pool2d_grad",
           "conv_output_shape"]

_MAX_SIZE = 2 ** 31 - 1  # strides, dilations and padded extents the kernels index with
_ACTIVATIONS = {None: 0, "linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3, "gelu": 4}


def _pair(v, name):
    """An int or a pair of ints, each >= 1, as a tuple of two ints."""
    vals = (v, v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
    try:
        vals = tuple(vals)
    except TypeError:
        raise TypeError(f"{name}: expected an int or a pair of ints, got {v!r}") from None
    if len(vals) != 2 or any(isinstance(t, bool) or not isinstance(t, (int, np.integer)) for t in vals):
        raise TypeError(f"{name}: expected an int or a pair of ints, got {v!r}")
    if any(t < 1 or t > _MAX_SIZE for t in vals):
        raise ValueError(f"{name}: expected integers in [1, {_MAX_SIZE}], got {v!r}")
    return int(vals[0]), int(vals[1])


def _pads_1d(size, k, stride, dilation, padding, what):
    """(output size, pad before, pad after) along one axis."""
    eff = (k - 1) * dilation + 1
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + eff - size, 0)
        if size + total > _MAX_SIZE:
            raise ValueError(f"dilation: the dilated window of size {eff} needs the input padded to {size + total}, "
                             f"past {_MAX_SIZE}; use a smaller dilation or padding='valid'")
        return out, total // 2, total - total // 2
    if eff > size:
        raise ValueError(f"{what}: the (dilated) window of size {eff} is larger than the input of size {size} "
                         f"with padding='valid'")
    return (size - eff) // stride + 1, 0, 0


def _padding(padding):
    p = padding.lower() if isinstance(padding, str) else padding
    if p not in ("same", "valid"):
        raise ValueError(f"padding: expected 'same' or 'valid', got {padding!r}")
    return p


def conv_output_shape(input_shape, kernel_shape, *, strides=1, padding="valid", dilation=1):
    """(OH, OW, pads) for an input (H, W) and kernel (KH, KW); pads is (top, bottom, left, right)."""
    (h, w), (kh, kw) = input_shape, kernel_shape
    sh, sw = _pair(strides, "strides")
    dh, dw = _pair(dilation, "dilation")
    p = _padding(padding)
    oh, pt, pb = _pads_1d(h, kh, sh, dh, p, "kernel")
    ow, pl, pr = _pads_1d(w, kw, sw, dw, p, "kernel")
    return oh, ow, (pt, pb, pl, pr)


def _arrays(names, arrays):
    for n, a in zip(names, arrays):
        if a is None and n != "bias":
            raise TypeError(f"{n}: expected an array, got None")
    kind, mod = _backend.backend_of(*arrays, names=names)
    xp = np
    if kind == "cuda":
        import cupy as xp
    out = [None if a is None else _backend.as_array(a, n, ndim=(1 if n == "bias" else 4), xp=xp)
           for n, a in zip(names, arrays)]
    return kind, mod, out


def _conv_dims(x, w):
    return (*x.shape, *w.shape[:2], w.shape[3])


def _conv_setup(x, w, strides, padding, dilation):
    if x.shape[3] != w.shape[2]:
        raise ValueError(f"w: expected {x.shape[3]} input channels to match x of shape {tuple(x.shape)}, "
                         f"got w of shape {tuple(w.shape)}")
    sh, sw = _pair(strides, "strides")
    dh, dw = _pair(dilation, "dilation")
    _, _, pads = conv_output_shape(x.shape[1:3], w.shape[:2], strides=(sh, sw), padding=padding,
                                   dilation=(dh, dw))
    padded = (x.shape[1] + pads[0] + pads[1]) * (x.shape[2] + pads[2] + pads[3]) * x.shape[3]
    if any(pads) and padded > _MAX_SIZE:  # the kernels pad one image at a time
        raise ValueError(f"dilation: a window of dilation {(dh, dw)} with padding='same' pads each image to "
                         f"{padded} elements, past {_MAX_SIZE}; use a smaller dilation or padding='valid'")
    return (sh, sw), (dh, dw), pads


def conv2d(x, w, bias=None, *, strides=1, padding="valid", dilation=1, activation=None):
    """``activation(conv(x, w) + bias)``.

    x: (N, H, W, C); w: (KH, KW, C, O); bias: (O,) or None; strides, dilation: int or pair;
    padding: "valid" or "same"; activation: None, "relu", "sigmoid", "tanh" or "gelu".
    Returns y of shape (N, OH, OW, O), float32, on the inputs' device.
    """
    try:
        act = _ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise ValueError(f"activation: expected one of None, 'relu', 'sigmoid', 'tanh', 'gelu', "
                         f"got {activation!r}") from None
    kind, mod, (x, w, bias) = _arrays(("x", "w", "bias"), (x, w, bias))
    s, d, pads = _conv_setup(x, w, strides, padding, dilation)
    if bias is not None and bias.shape != (w.shape[3],):
        raise ValueError(f"bias: expected shape ({w.shape[3]},), got {tuple(bias.shape)}")
    if kind == "cpu":
        return mod.conv2d_forward(x, w, bias, s, d, pads, act)
    import cupy
    oh, ow, _ = conv_output_shape(x.shape[1:3], w.shape[:2], strides=s, padding=padding, dilation=d)
    y = cupy.empty((x.shape[0], oh, ow, w.shape[3]), dtype=np.float32)
    mod.conv2d_forward_ptr(_conv_dims(x, w), s, d, pads, _ptr(x), _ptr(w), _ptr(bias), act, _ptr(y), _stream())
    return y


def conv2d_grad(x, w, dy, *, strides=1, padding="valid", dilation=1, need_dx=True):
    """Gradients ``(dx, dw, db)`` of ``sum(conv2d(x, w, b, ...) * dy)`` for the same arguments.

    dy: (N, OH, OW, O), the gradient of the (pre-activation) output. need_dx=False skips the
    input gradient (dx is None), e.g. for a model's first layer.
    """
    kind, mod, (x, w, dy) = _arrays(("x", "w", "dy"), (x, w, dy))
    s, d, pads = _conv_setup(x, w, strides, padding, dilation)
    if kind == "cpu":
        return mod.conv2d_backward(x, w, dy, s, d, pads, bool(need_dx), True, True)
    import cupy
    oh, ow, _ = conv_output_shape(x.shape[1:3], w.shape[:2], strides=s, padding=padding, dilation=d)
    _backend.check_shape(dy, "dy", (x.shape[0], oh, ow, w.shape[3]))
    dx, dw, db = cupy.empty(x.shape, np.float32), cupy.empty(w.shape, np.float32), cupy.empty(w.shape[3], np.float32)
    mod.conv2d_backward_ptr(_conv_dims(x, w), s, d, pads, _ptr(x), _ptr(w), _ptr(dy), _ptr(dx), _ptr(dw), _ptr(db),
                            _stream())
    return (dx if need_dx else None), dw, db


def _pool_setup(x, pool_size, strides, padding):
    k = _pair(pool_size, "pool_size")
    s = k if strides is None else _pair(strides, "strides")
    p = _padding(padding)
    oh, pt, pb = _pads_1d(x.shape[1], k[0], s[0], 1, p, "pool_size")
    ow, pl, pr = _pads_1d(x.shape[2], k[1], s[1], 1, p, "pool_size")
    return k, s, (pt, pb, pl, pr)


def _pool(kind, x, pool_size, strides, padding):
    dev, mod, (x,) = _arrays(("x",), (x,))
    k, s, pads = _pool_setup(x, pool_size, strides, padding)
    if dev == "cpu":
        return mod.pool2d_forward(x, kind, k, s, pads)
    import cupy
    n, h, w, c = x.shape
    oh = (h + pads[0] + pads[1] - k[0]) // s[0] + 1
    ow = (w + pads[2] + pads[3] - k[1]) // s[1] + 1
    y = cupy.empty((n, oh, ow, c), np.float32)
    mod.pool2d_forward_ptr((n, h, w, c, k[0], k[1], 0), 0 if kind == "max" else 1, s, pads, _ptr(x), _ptr(y),
                           _stream())
    return y


def _pool_grad(kind, x, dy, pool_size, strides, padding):
    dev, mod, (x, dy) = _arrays(("x", "dy"), (x, dy))
    k, s, pads = _pool_setup(x, pool_size, strides, padding)
    if dev == "cpu":
        return mod.pool2d_backward(x, dy, kind, k, s, pads)
    import cupy
    n, h, w, c = x.shape
    oh = (h + pads[0] + pads[1] - k[0]) // s[0] + 1
    ow = (w + pads[2] + pads[3] - k[1]) // s[1] + 1
    _backend.check_shape(dy, "dy", (n, oh, ow, c))
    dx = cupy.empty(x.shape, np.float32)
    mod.pool2d_backward_ptr((n, h, w, c, k[0], k[1], 0), 0 if kind == "max" else 1, s, pads, _ptr(x), _ptr(dy),
                            _ptr(dx), _stream())
    return dx


def max_pool2d(x, pool_size, strides=None, padding="valid"):
    """Max over pool_size windows of x (N, H, W, C); strides default to pool_size; padded positions
    never win ("same")."""
    return _pool("max", x, pool_size, strides, padding)


def avg_pool2d(x, pool_size, strides=None, padding="valid"):
    """Mean over pool_size windows of x (N, H, W, C); with "same" each window divides by its number
    of real (unpadded) elements, as Keras does."""
    return _pool("avg", x, pool_size, strides, padding)


def max_pool2d_grad(x, dy, pool_size, strides=None, padding="valid"):
    """dx for max_pool2d: each dy goes to the (first) maximal element of its window."""
    return _pool_grad("max", x, dy, pool_size, strides, padding)


def avg_pool2d_grad(x, dy, pool_size, strides=None, padding="valid"):
    """dx for avg_pool2d: each dy is spread evenly over the real elements of its window."""
    return _pool_grad("avg", x, dy, pool_size, strides, padding)
