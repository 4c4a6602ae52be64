"""forgeml.keras: a Keras-3-compatible API on forgeml's kernels.

``import forgeml as tf`` then ``tf.keras.Sequential([...])``, ``tf.keras.layers.Dense``, ``compile``,
``fit``, ``evaluate``, ``predict``, ``save`` / ``tf.keras.models.load_model`` behave as in Keras 3.
"""
from __future__ import annotations

from . import (activations, backend, callbacks, initializers, layers, losses, metrics, models, optimizers,
               saving, utils)
from .layers import Input, Layer
from .models import Model, Sequential

__all__ = ["Sequential", "Model", "Input", "Layer", "layers", "models", "losses", "metrics", "optimizers",
           "callbacks", "utils", "activations", "initializers", "saving", "backend"]
