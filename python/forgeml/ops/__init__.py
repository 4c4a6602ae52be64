"""forgeml.ops: the kernels themselves, one module per family. NumPy in, NumPy out; CuPy in,
CuPy out. This package is the single door to the compiled backends."""
from __future__ import annotations

__all__: list[str] = []

from . import tree as _tree; from .tree import *  # noqa: E402,F401,F403
__all__ += _tree.__all__
