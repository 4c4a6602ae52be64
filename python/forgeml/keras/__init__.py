"""forgeml.keras: a Keras-3-compatible API on forgeml's kernels.

``import forgeml as tf`` and a tf.keras program runs unchanged::

    model = tf.keras.Sequential([
        tf.keras.layers.Dense(64, activation="relu", input_shape=(100,)),
        tf.keras.layers.Dense(32, activation="relu"),
        tf.keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=10)

What is here (Keras 3 names, defaults, weight layouts): ``Sequential`` and linear functional
chains (``Model(inputs, outputs)``); layers Dense, Activation, Embedding, Flatten, Reshape, Dropout,
BatchNormalization; activations relu, sigmoid, tanh, softmax, gelu (exact), linear; losses
(sparse_)categorical / binary cross-entropy (from_logits), mse, mae; metrics accuracy (resolved from
the loss), sparse/categorical/binary accuracy, mae, mse; optimizers SGD (momentum, nesterov),
Adam, AdamW, RMSprop with clipnorm / clipvalue / global_clipnorm and schedules; callbacks
EarlyStopping, ModelCheckpoint, LearningRateScheduler, LambdaCallback; ``.keras`` saving (a zip
of JSON config and NumPy weights, loaded without pickle).

How it runs: every matrix product goes through ``forgeml.ops.matmul`` (bias and activation fused
in its epilogue); each layer's backward sits beside its forward; the softmax/sigmoid output is
fused with its cross-entropy; trainable weights live in one flat float32 buffer updated by one
optimizer kernel. A plain stack of Dense layers trained with sparse cross-entropy runs a whole
epoch in one C++ call (``forgeml.ops.dense_train_steps``), same arithmetic as the layer path.
NumPy data trains on the CPU; CuPy data, or a model built inside ``with forgeml.device("cuda"):``,
keeps its weights on the GPU.
"""
from __future__ import annotations

from . import (activations, backend, callbacks, initializers, layers, losses, metrics, models, ops, optimizers,
               saving, utils)
from . import distillation, distribution, mixed_precision, pruning  # compression: quantization.py, export/
from . import constraints, random, regularizers  # noqa: E402  (issue 18)
from .autodiff import GradientTape
from .layers import Input, Layer, Variable
from .models import Model, Sequential
from .saving import register_keras_serializable

__all__ = ["Sequential", "Model", "Input", "Layer", "layers", "models", "losses", "metrics", "optimizers",
           "callbacks", "utils", "activations", "initializers", "saving", "backend", "ops", "GradientTape",
           "Variable", "register_keras_serializable", "mixed_precision", "pruning", "distillation",
           "distribution", "random", "regularizers", "constraints"]
