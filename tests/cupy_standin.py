"""A test-only stand-in for CuPy, backed by host memory (never installed, never shipped).

With ``installed()`` active, ``import cupy`` / ``import cupyx`` give this module's stand-ins and
``forgeml._backend`` sends "cuda" work to ``forgeml._emu.device``: the real ``_cuda`` API (device
pointers as integers, a stream handle) over the same .cu kernels compiled for the SIMT
emulator, where device memory is host memory. So the Python GPU paths — ops on CuPy arrays,
Keras on device "cuda", SVC on CuPy input — run unchanged without a GPU.

What it mirrors of CuPy (the part forgeml uses): an ``ndarray`` whose type lives in module
``cupy``; ``asarray`` / ``asnumpy`` / ``empty`` / ``zeros`` / any NumPy function by name;
elementwise math and reductions through NumPy's dispatch protocols; ``.data.ptr``;
``__cuda_array_interface__``; ``cuda.Stream`` / ``cuda.Device`` / ``cuda.get_current_stream``;
``cupyx.scatter_add``; ``cupyx.scipy.special.erf``. Like CuPy it refuses implicit conversion
to NumPy (``np.asarray(x)`` raises TypeError) and refuses NumPy arrays as operands of device
functions, so a silent host round trip fails loudly instead of passing.

``counts`` tallies host <-> device traffic: ``h2d`` (NumPy data entering the device), ``d2h``
(arrays fetched: ``get`` / ``asnumpy`` / ``tolist``) and ``scalars`` (``float(x)``, ``bool(x)``,
``x.item()``: one-element reads). Tests assert on them where the design promises residency.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import types

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin


@dataclasses.dataclass
class Counts:
    h2d: int = 0
    d2h: int = 0
    scalars: int = 0

    def reset(self):
        self.h2d = self.d2h = self.scalars = 0

    def snapshot(self):
        return dataclasses.replace(self)


counts = Counts()


def _is_host_array(a):
    return isinstance(a, np.ndarray) and a.ndim > 0


def _unwrap(obj, *, allow_host=False, what="argument"):
    """The host arrays inside obj (ndarray, list, tuple, dict, slice); NumPy arrays rejected unless
    allow_host (where CuPy copies them to the device itself: indices, setitem values)."""
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, (list, tuple)):
        out = [_unwrap(o, allow_host=allow_host, what=what) for o in obj]
        return out if isinstance(obj, list) else tuple(out)
    if isinstance(obj, dict):
        return {k: _unwrap(v, allow_host=allow_host, what=what) for k, v in obj.items()}
    if _is_host_array(obj):
        if not allow_host:
            raise TypeError(
                f"Unsupported type {type(obj)} ({what}): a NumPy array given to a CuPy function "
                "(move it with cupy.asarray first)"
            )
        counts.h2d += 1
    return obj


def _wrap(obj):
    if isinstance(obj, np.ndarray):
        return ndarray._from_host(obj)
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    if isinstance(obj, np.generic):  # CuPy reductions give 0-d arrays, not scalars
        return ndarray._from_host(np.asarray(obj))
    return obj


class _MemoryPointer:
    __slots__ = ("ptr",)

    def __init__(self, ptr):
        self.ptr = ptr


class ndarray(NDArrayOperatorsMixin):
    """A "device" array: a host NumPy array that only this module's functions look inside."""

    __slots__ = ("_a",)
    __array_priority__ = 100

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = np.empty(shape, dtype=dtype, order=order)

    @classmethod
    def _from_host(cls, a):
        obj = cls.__new__(cls)
        obj._a = a
        return obj

    # ---- what forgeml reads
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    strides = property(lambda self: self._a.strides)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: _wrap(self._a.T))
    data = property(lambda self: _MemoryPointer(self._a.ctypes.data))
    device = property(lambda self: Device(0))

    @property
    def __cuda_array_interface__(self):
        a = self._a
        return {
            "shape": a.shape,
            "typestr": a.dtype.str,
            "data": (a.ctypes.data, not a.flags.writeable),
            "strides": None if a.flags.c_contiguous else a.strides,
            "version": 3,
        }

    # ---- device -> host
    def get(self, stream=None, order="C", out=None):
        counts.d2h += 1
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order)

    def tolist(self):
        counts.d2h += 1
        return self._a.tolist()

    def item(self):
        counts.scalars += 1
        return self._a.item()

    def _scalar(self, kind):
        if self._a.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars, got shape {self._a.shape}")
        counts.scalars += 1
        return kind(self._a.reshape(()))

    def __float__(self):
        return self._scalar(float)

    def __int__(self):
        return self._scalar(int)

    def __index__(self):
        if self._a.dtype.kind not in "iu":
            raise TypeError("only integer arrays can be used as an index")
        return self._scalar(int)

    def __bool__(self):
        return self._scalar(bool)

    def __complex__(self):
        return self._scalar(complex)

    def __array__(self, *args, **kwargs):
        raise TypeError(
            "Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly."
        )

    # ---- NumPy's dispatch protocols: the work runs on the host arrays, results come back wrapped
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = _unwrap(inputs, what=f"{ufunc.__name__}")
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = _unwrap(out, what="out")
        kwargs = {k: _unwrap(v) if k != "out" else v for k, v in kwargs.items()}
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if isinstance(out, tuple) and len(out) == 1 else out
        return None if method == "at" else _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        return _call(func, args, kwargs)

    # ---- indexing, iteration
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key, allow_host=True, what="index")])

    def __setitem__(self, key, value):
        self._a[_unwrap(key, allow_host=True, what="index")] = _unwrap(value, allow_host=True, what="value")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(self._a[i]) for i in range(len(self._a)))

    def __repr__(self):
        return f"cupy_standin.ndarray({self._a!r})"

    # ---- methods: the ndarray ones, arguments and results translated
    def __getattr__(self, name):
        if name == "_a":
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        def method(*args, **kwargs):
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))

        method.__name__ = name
        return method

    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return _wrap(self._a.astype(dtype, order=order, copy=copy))

    def copy(self, order="C"):
        return _wrap(self._a.copy(order=order))

    def reshape(self, *shape, order="C"):
        return _wrap(self._a.reshape(*shape, order=order))

    def __reduce__(self):
        raise TypeError("the CuPy stand-in does not pickle device arrays")


ndarray.__module__ = "cupy"  # what forgeml._backend.is_cupy looks at


def _call(func, args, kwargs):
    return _wrap(func(*_unwrap(args, what=func.__name__), **_unwrap(kwargs, what=func.__name__)))


# ---------------------------------------------------------------- module-level functions


def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    if not np.isscalar(a):
        counts.h2d += 1
    return _wrap(np.array(a, dtype=dtype, order="C" if order is None else order))


def array(a, dtype=None, copy=True, order="K", ndmin=0):
    if isinstance(a, ndarray):
        return _wrap(np.array(a._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    counts.h2d += 1
    return _wrap(np.array(a, dtype=dtype, order=order, ndmin=ndmin))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        a = asarray(a)
    return _wrap(np.ascontiguousarray(a._a, dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args):
    return _module if any(isinstance(a, ndarray) for a in args) else np


def _numpy_function(name):
    func = getattr(np, name)

    def wrapper(*args, **kwargs):
        return _call(func, args, kwargs)

    wrapper.__name__ = name
    return wrapper


class _RandomState:
    """cupy.random.RandomState: host generator, result on the "device" (no copy counted: CuPy
    draws on the device)."""

    def __init__(self, seed=None):
        self._rs = np.random.RandomState(seed)

    def __getattr__(self, name):
        draw = getattr(self._rs, name)
        return lambda *a, **k: _wrap(np.asarray(draw(*a, **k)))


# ---------------------------------------------------------------- cupy.cuda


class Stream:
    """A stream handle; the emulator runs every launch synchronously, so it only names one."""

    null = None
    _next = 0x1000

    def __init__(self, null=False, non_blocking=False, ptr=None):
        if null:
            self.ptr = 0
        else:
            Stream._next += 0x10
            self.ptr = Stream._next
        self._prev = []

    def __enter__(self):
        self._prev.append(_cuda.current)
        _cuda.current = self
        return self

    def __exit__(self, *exc):
        _cuda.current = self._prev.pop()

    def use(self):
        _cuda.current = self
        return self

    def synchronize(self):
        pass


class Event:
    def __init__(self, *args, **kwargs):
        pass

    def record(self, stream=None):
        pass

    def synchronize(self):
        pass


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)
        if self.id != 0:
            raise RuntimeError(f"cudaErrorInvalidDevice: the stand-in has one device, asked for {self.id}")
        self.compute_capability = "90"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def use(self):
        pass

    def synchronize(self):
        pass


def _build_modules():
    cupy = types.ModuleType("cupy", __doc__)
    cupy.__file__ = __file__
    cupy.__version__ = "0.0-standin"
    cupy.ndarray = ndarray
    for name in ("asarray", "array", "ascontiguousarray", "asnumpy", "get_array_module"):
        setattr(cupy, name, globals()[name])
    for name in (
        "float16",
        "float32",
        "float64",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool_",
        "intp",
        "dtype",
        "newaxis",
        "inf",
        "nan",
        "pi",
        "e",
    ):
        setattr(cupy, name, getattr(np, name))

    def module_getattr(name):  # any other NumPy function, on device arrays only
        if not callable(getattr(np, name, None)) or isinstance(getattr(np, name), type):
            raise AttributeError(f"the CuPy stand-in has no attribute {name!r}")
        func = _numpy_function(name)
        setattr(cupy, name, func)
        return func

    cupy.__getattr__ = module_getattr

    cuda = types.ModuleType("cupy.cuda")
    cuda.Stream, cuda.Event, cuda.Device = Stream, Event, Device
    cuda.current = Stream(null=True)
    Stream.null = cuda.current
    cuda.get_current_stream = lambda device=None: cuda.current
    cuda.get_elapsed_time = lambda start, end: 0.0
    cuda.is_available = lambda: True
    runtime = types.ModuleType("cupy.cuda.runtime")
    runtime.getDeviceCount = lambda: 1
    runtime.deviceSynchronize = lambda: None
    runtime.runtimeGetVersion = lambda: 13000
    cuda.runtime = runtime
    cupy.cuda = cuda

    random = types.ModuleType("cupy.random")
    random.RandomState = _RandomState
    cupy.random = random

    cupyx = types.ModuleType("cupyx")

    def scatter_add(a, slices, value):
        np.add.at(a._a, _unwrap(slices, what="slices"), _unwrap(value, what="value"))

    cupyx.scatter_add = scatter_add
    scipy = types.ModuleType("cupyx.scipy")
    special = types.ModuleType("cupyx.scipy.special")

    def erf(x):
        from scipy.special import erf as host_erf

        return _call(host_erf, (x,), {})

    special.erf = erf
    scipy.special = special
    cupyx.scipy = scipy
    return {
        "cupy": cupy,
        "cupy.cuda": cuda,
        "cupy.cuda.runtime": runtime,
        "cupy.random": random,
        "cupyx": cupyx,
        "cupyx.scipy": scipy,
        "cupyx.scipy.special": special,
    }


_modules = _build_modules()
_module = _modules["cupy"]
_cuda = _modules["cupy.cuda"]


@contextlib.contextmanager
def installed():
    """``import cupy`` gives the stand-in and forgeml runs "cuda" work on the emulator, inside."""
    from forgeml import _backend

    saved = {name: sys.modules.get(name) for name in _modules}
    sys.modules.update(_modules)
    _backend._use_emulator(True)
    counts.reset()
    try:
        yield _module
    finally:
        _backend._use_emulator(False)
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
