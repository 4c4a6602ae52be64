"""forgeml.ops: the kernels themselves, one module per family. NumPy in, NumPy out; CuPy in,
CuPy out. This package is the single door to the compiled backends."""
from __future__ import annotations

__all__: list[str] = []
from .conv import *  # noqa: E402,F401,F403
from .conv import __all__ as _conv_all  # noqa: E402

__all__ += _conv_all
