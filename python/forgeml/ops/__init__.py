"""forgeml.ops: the kernels themselves, one module per family. NumPy in, NumPy out; CuPy in,
CuPy out. This package is the single door to the compiled backends."""
from __future__ import annotations

from . import conv, gemm, svm
from .conv import *  # noqa: F401,F403
from .gemm import *  # noqa: F401,F403
from .svm import *  # noqa: F401,F403

__all__ = [*gemm.__all__, *conv.__all__, *svm.__all__]
