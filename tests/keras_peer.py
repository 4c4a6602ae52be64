"""Keras 3 on JAX as a test-time peer (never a dependency): skip when it is not installed."""

import os
import sys

import pytest


def real_keras():
    pytest.importorskip("jax")
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "jax")
    real = pytest.importorskip("keras")
    if real.backend.backend() != "jax":
        pytest.skip("keras is not on the JAX backend here")
    return real
