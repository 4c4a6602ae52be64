"""Array -> backend dispatch and the validation helpers every op uses.

NumPy arrays run on ``forgeml._cpu``; CuPy arrays on ``forgeml._cuda`` when it was built and a GPU
is usable, otherwise a RuntimeError says why. GPU detection happens once. This is the only module
that imports the extension modules (``_cpu``, ``_cuda``, and ``_emu`` under the test switch
``_use_emulator``); models never do. The helpers every op shares live here too: validation,
device pointers, the current CUDA stream, the CPU-only guard.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools

import numpy as np

from . import _cpu

__all__ = ["cpu", "cuda_module", "cuda_status", "cuda_runtime_version", "is_cupy", "backend_of", "cpu_only",
           "as_array", "check_ndim", "check_shape", "device_ptr", "cuda_stream", "device", "current_device",
           "empty_like_backend"]

cpu = _cpu
_emulate = False  # tests: "cuda" work goes to forgeml._emu.device (see _use_emulator)


def _use_emulator(on: bool) -> None:
    """Test switch: route "cuda" work to ``forgeml._emu.device``, the ``_cuda`` API over the CUDA
    kernels compiled for the SIMT emulator (device memory is host memory there, so it pairs with
    the host-backed CuPy stand-in in tests/cupy_standin.py). Never used outside the tests."""
    global _emulate
    _emulate = bool(on)
    _cuda_import.cache_clear()
    cuda_status.cache_clear()


def is_cupy(x) -> bool:
    """True for a CuPy ndarray, without importing CuPy."""
    return type(x).__module__.split(".", 1)[0] == "cupy"


@functools.lru_cache(maxsize=None)
def _cuda_import():
    if _emulate:
        from . import _emu  # built with FORGEML_TESTING only
        return _emu.device, None
    try:
        from . import _cuda
    except ImportError as exc:  # built without CUDA, or a broken build
        return None, f"forgeml was built without CUDA ({exc})"
    return _cuda, None


@functools.lru_cache(maxsize=None)
def cuda_status() -> tuple[bool, str]:
    """(usable, GPU name or the reason none is usable). Asked once."""
    mod, why = _cuda_import()
    if mod is None:
        return False, why
    try:
        usable, text = mod.device_status()
    except RuntimeError as exc:
        return False, str(exc)
    if not usable:
        return False, text
    try:
        import cupy  # noqa: F401
    except ImportError:
        return False, f"{text} found, but CuPy is not installed (pip install 'forgeml[cuda]')"
    return True, text


def cuda_module():
    """The ``_cuda`` module, or a RuntimeError that says why it cannot run and how to fix it."""
    usable, why = cuda_status()
    if not usable:
        raise RuntimeError(
            f"forgeml got a CuPy array but cannot run CUDA kernels: {why}. "
            "Move the data to the CPU with cupy.asnumpy(x) to use the CPU kernels.")
    return _cuda_import()[0]


def cuda_runtime_version():
    """The CUDA runtime version compiled into ``_cuda`` (e.g. 13000), or None without CUDA."""
    mod = _cuda_import()[0]
    return None if mod is None else mod.runtime_version()


def backend_of(*arrays, names=None):
    """('cpu', _cpu) or ('cuda', _cuda) for the arrays given (None entries are ignored).

    Mixing NumPy and CuPy arrays is an error naming the arguments."""
    kinds = [(is_cupy(a), i) for i, a in enumerate(arrays) if a is not None]
    gpu = {k for k, _ in kinds}
    if len(gpu) > 1:
        label = (lambda i: names[i]) if names else (lambda i: f"argument {i}")
        on_gpu = [label(i) for k, i in kinds if k]
        on_cpu = [label(i) for k, i in kinds if not k]
        raise TypeError(f"all arrays must be on the same device: {', '.join(on_gpu)} on the GPU (CuPy), "
                        f"{', '.join(on_cpu)} on the CPU (NumPy)")
    if gpu == {True}:
        return "cuda", cuda_module()
    return "cpu", cpu


def cpu_only(*arrays, names, what):
    """The CPU module for ops that have no CUDA kernel yet; CuPy input is a RuntimeError saying so."""
    kind, mod = backend_of(*arrays, names=names)
    if kind != "cpu":
        raise RuntimeError(f"{what} run on the CPU only for now: pass NumPy arrays "
                           "(cupy.asnumpy(x) moves CuPy data to the CPU)")
    return mod


def device_ptr(a) -> int:
    """The device address of a CuPy array as an integer for the ``_cuda`` functions (0 for None)."""
    return 0 if a is None else a.data.ptr


def cuda_stream() -> int:
    """CuPy's current stream as an integer handle: every CUDA kernel is launched on it."""
    import cupy
    return cupy.cuda.get_current_stream().ptr


def as_array(x, name: str, *, dtype=np.float32, ndim=None, xp=None):
    """x as a C-contiguous array of `dtype` on its own device (copied/converted once if needed).

    Raises TypeError/ValueError naming `name` for non-numeric input or the wrong rank."""
    if xp is None:
        if is_cupy(x):
            import cupy as xp
        else:
            xp = np
    if not hasattr(x, "dtype"):
        try:
            x = xp.asarray(x)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: expected an array, got {type(x).__name__} ({exc})") from None
    if x.dtype.kind not in "fiub":
        raise TypeError(f"{name}: expected a numeric array, got dtype {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name}: expected a {want} array, got {x.ndim}-D with shape {tuple(x.shape)}")
    return xp.ascontiguousarray(x, dtype=dtype)


def check_ndim(x, name: str, ndim: int):
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got {x.ndim}-D with shape {tuple(x.shape)}")


def check_shape(x, name: str, expected: tuple):
    """expected may hold None for 'any size' in a dimension."""
    shape = tuple(x.shape)
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape)):
        want = "(" + ", ".join("?" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {shape}")


def empty_like_backend(kind: str, shape, dtype=np.float32):
    if kind == "cuda":
        import cupy
        return cupy.empty(shape, dtype=dtype)
    return np.empty(shape, dtype=dtype)


# ---------------------------------------------------------------- default device for new arrays

_device = contextvars.ContextVar("forgeml_device", default="cpu")


def current_device() -> str:
    return _device.get()


@contextlib.contextmanager
def device(name: str):
    """``with forgeml.device("cuda"):`` makes models built inside keep their weights on the GPU."""
    if name not in ("cpu", "cuda", "gpu"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {name!r}")
    name = "cuda" if name == "gpu" else name
    if name == "cuda":
        cuda_module()  # fail here, with the reason, rather than at the first op
    token = _device.set(name)
    try:
        yield name
    finally:
        _device.reset(token)
