"""Reverse-mode automatic differentiation for forgeml.keras (see tape.py)."""

from __future__ import annotations

from .tape import GradientTape, NoGradientError, Tensor

__all__ = ["GradientTape", "Tensor", "NoGradientError"]
