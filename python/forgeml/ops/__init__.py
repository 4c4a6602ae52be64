"""forgeml.ops: the kernels themselves, one module per family. NumPy in, NumPy out; CuPy in,
CuPy out. This package is the single door to the compiled backends."""
from __future__ import annotations

from . import conv as _conv
from .conv import *  # noqa: F401,F403
from .dense import DenseLayout, dense_forward, dense_train_steps, optimizer_update  # noqa: F401
from .gemm import matmul  # noqa: F401
from .rnn import RecurrentGrads, gru, gru_grad, lstm, lstm_grad, simple_rnn, simple_rnn_grad  # noqa: F401

__all__: list[str] = ["matmul", *_conv.__all__, "DenseLayout", "dense_train_steps", "dense_forward",
                      "optimizer_update"]
__all__ += ["simple_rnn", "lstm", "gru", "simple_rnn_grad", "lstm_grad", "gru_grad", "RecurrentGrads"]
