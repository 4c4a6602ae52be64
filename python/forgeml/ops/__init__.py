"""forgeml.ops: the kernels themselves, one module per family. NumPy in, NumPy out; CuPy in,
CuPy out. This package is the single door to the compiled backends."""
from __future__ import annotations

from . import conv, dense_step, gemm, gemm_lowp, rnn, rows, sparse, svm, tree
from .conv import *  # noqa: F401,F403
from .dense_step import *  # noqa: F401,F403
from .gemm import *  # noqa: F401,F403
from .gemm_lowp import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .rows import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .svm import *  # noqa: F401,F403
from .tree import *  # noqa: F401,F403

__all__ = [*gemm.__all__, *gemm_lowp.__all__, *conv.__all__, *rnn.__all__, *rows.__all__, *sparse.__all__, *dense_step.__all__, *tree.__all__, *svm.__all__]
