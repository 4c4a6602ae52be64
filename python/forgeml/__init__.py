"""forgeml: hand-written C++/CUDA kernels under Keras- and scikit-learn-compatible APIs.

NumPy input runs the CPU kernels; CuPy input runs the CUDA kernels where a GPU is usable.
``import forgeml`` never fails for lack of a GPU.
"""
from __future__ import annotations

import importlib

from . import _backend, _threadpoolctl
from . import cuda
from ._backend import device
from ._config import show_config

__version__ = _backend.cpu.version
_threadpoolctl.register()

_SUBMODULES = ("ops", "keras", "tree", "ensemble", "svm", "bench", "data")

__all__ = ["__version__", "show_config", "set_num_threads", "get_num_threads", "release_cached_memory", "device",
           "cuda", "GradientTape", *_SUBMODULES]


_MAX_THREADS = 4096  # far beyond any one machine's cores; larger counts are typos or overflows


def set_num_threads(n: int) -> None:
    """Threads used by the CPU kernels (default: OMP_NUM_THREADS when set, else the CPUs this
    process may run on). ``threadpoolctl.threadpool_limits`` sets it too.

    Calls already running keep the count they started with. A process forked from one that
    loaded forgeml keeps the count and builds its own thread pool (see README "Reliability")."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int >= 1, got {n!r}")
    if n < 1:
        raise ValueError(f"n: expected a thread count >= 1, got {n}")
    if n > _MAX_THREADS:
        raise ValueError(f"n: expected a thread count <= {_MAX_THREADS}, got {n}")
    _backend.cpu.set_num_threads(n)


def get_num_threads() -> int:
    return _backend.cpu.get_num_threads()


def release_cached_memory() -> int:
    """Returns to the system the memory forgeml keeps for reuse after a forest is freed (the pages
    of large fitted arrays, up to 1 GiB, and grown trees' node arrays, up to 512 MiB used: reusing
    them spares the next fit its page faults). Returns the bytes released. Kept pages are already
    marked free for the kernel to take under memory pressure; call this to drop them at once."""
    return int(_backend.cpu.pooled_array_release()) + int(_backend.cpu.tree_out_pool_release())


def __getattr__(name):  # subpackages load on first use, keeping `import forgeml` light
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "GradientTape":  # tf.GradientTape after `import forgeml as tf`
        return importlib.import_module(f"{__name__}.keras.autodiff").GradientTape
    compat = importlib.import_module(f"{__name__}.tf_compat")  # tf.constant, tf.random.set_seed, ...
    if name in compat.__all__:
        return getattr(compat, name)
    raise AttributeError(f"module 'forgeml' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))
