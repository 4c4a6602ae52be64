"""The array module behind a model (NumPy on the CPU, CuPy on the GPU) and the one door to the kernels.

Layers never import ``_cpu``/``_cuda``: matrix products go through ``forgeml.ops.matmul``, which
dispatches NumPy arrays to the CPU kernels and CuPy arrays to the CUDA kernels. Elementwise work
uses ``xp`` (``numpy`` or ``cupy``), chosen once when a model is built.
"""
from __future__ import annotations

import numpy as np

from ..ops import device as _device

__all__ = ["xp_for_device", "xp_of", "device_of_input", "to_numpy", "to_xp", "matmul", "floatx",
           "scatter_add", "epsilon"]

_FLOATX = "float32"
_EPSILON = 1e-7


def floatx() -> str:
    return _FLOATX


def epsilon() -> float:
    return _EPSILON


def _cupy():
    import cupy  # only reached when a CuPy array or the cuda device is in play
    return cupy


def xp_for_device(device: str):
    """numpy for 'cpu'; cupy for 'cuda' (a RuntimeError says why when no GPU is usable)."""
    if device == "cuda":
        _device.cuda_module()
        return _cupy()
    return np


def xp_of(x):
    return _cupy() if _device.is_cupy(x) else np


def device_of_input(x) -> str:
    """The device a model should live on, given its first input and the current device scope."""
    if _device.is_cupy(x):
        _device.cuda_module()
        return "cuda"
    return _device.current_device()


def to_numpy(x):
    if _device.is_cupy(x):
        return x.get()
    return np.asarray(x)


def to_xp(x, xp, dtype=None):
    if xp is np:
        return np.ascontiguousarray(to_numpy(x), dtype=dtype)
    return xp.ascontiguousarray(xp.asarray(x), dtype=dtype)


def scatter_add(xp, target, idx, values):
    """target[idx] += values, summing repeated indices."""
    if xp is np:
        if (  # rows of a float32 matrix (an Embedding's gradient): forgeml's kernel, ~8x np.add.at
            type(target) is np.ndarray
            and target.dtype == np.float32
            and target.ndim == 2
            and target.flags.c_contiguous
            and type(idx) is np.ndarray
            and idx.ndim == 1
            and idx.dtype.kind in "iu"
            and getattr(values, "shape", None) == (idx.size, target.shape[1])
        ):
            from ..ops import rows

            rows.scatter_add_rows(target, idx, values)
            return
        np.add.at(target, idx, values)
    else:
        import cupyx
        cupyx.scatter_add(target, idx, values)


_matmul = None


def matmul(a, b, *, trans_a=False, trans_b=False, bias=None, activation=None, out=None, precision=None):
    """forgeml.ops.matmul, looked up once (keeps ``import forgeml.keras`` free of the kernels).
    precision: None (float32) or "bf16" (a mixed_bfloat16 layer)."""
    global _matmul
    if _matmul is None:
        from .. import ops
        _matmul = ops.matmul
    if precision is not None:
        return _matmul(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, activation=activation, out=out,
                       precision=precision)
    return _matmul(a, b, trans_a=trans_a, trans_b=trans_b, bias=bias, activation=activation, out=out)


def clear_session(free_memory=True):
    """Forget the layer-name counters (the next Dense is "dense" again), as Keras does."""
    from .layers.base import _NAME_COUNTERS
    _NAME_COUNTERS.clear()


__all__ += ["clear_session"]
