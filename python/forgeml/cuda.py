"""GPU status: ``forgeml.cuda.is_available()`` is False, quietly, wherever no GPU is usable."""
from __future__ import annotations

from ._backend import _cuda_import, cuda_status

__all__ = ["is_available", "status", "is_built", "archs"]


def is_available() -> bool:
    """True when forgeml was built with CUDA, a GPU is usable and CuPy is installed."""
    return cuda_status()[0]


def status() -> str:
    """The GPU's name, or the reason no GPU is usable."""
    return cuda_status()[1]


def is_built() -> bool:
    """True when the ``_cuda`` backend was compiled into this installation."""
    return _cuda_import()[0] is not None


def archs() -> list[str]:
    """The CUDA architectures compiled in (empty without CUDA)."""
    mod = _cuda_import()[0]
    return mod.archs.split(",") if mod is not None else []
