"""Where arrays live and which kernels run, for the Python faces (keras, svm, tree): the helpers
they need from the backend, so that forgeml.ops stays their one door to it."""

from __future__ import annotations

from .._backend import as_array, cuda_module, current_device, device, is_cupy
from .._backend import cpu as _cpu

__all__ = ["active_isa", "as_array", "cuda_module", "current_device", "device", "is_cupy"]


def active_isa() -> str:
    """The SIMD path the CPU kernels take now ('reference', 'portable', 'avx2' or 'avx512')."""
    return _cpu.active_isa()
