"""forgeml.ops: the kernels themselves, one module per family. NumPy in, NumPy out; CuPy in,
CuPy out. This package is the single door to the compiled backends."""
from __future__ import annotations

__all__: list[str] = []
from .rnn import RecurrentGrads, gru, gru_grad, lstm, lstm_grad, simple_rnn, simple_rnn_grad  # noqa: E402,F401
