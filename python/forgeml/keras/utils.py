"""keras.utils: seeding and label helpers."""
from __future__ import annotations

import random

import numpy as np

__all__ = ["set_random_seed", "to_categorical", "normalize", "global_rng", "get_custom_objects"]

_rng = np.random.default_rng()


def global_rng() -> np.random.Generator:
    """The generator behind initializers, dropout masks and shuffling (reset by set_random_seed)."""
    return _rng


def set_random_seed(seed: int) -> None:
    """Seed Python's, NumPy's and forgeml.keras's generators: same seed, same training run."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed: expected an int, got {seed!r} of type {type(seed).__name__}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    _rng = np.random.default_rng(seed)


def to_categorical(x, num_classes=None):
    """One-hot encode integer labels: shape (..., ) -> (..., num_classes) float32 (Keras layout)."""
    x = np.asarray(x)
    if x.ndim > 1 and x.shape[-1] == 1:
        x = x.reshape(x.shape[:-1])
    if x.size and (x.dtype.kind == "f" and not np.all(np.mod(x, 1) == 0)):
        raise ValueError("to_categorical: expected integer class labels")
    x = x.astype(np.int64)
    if num_classes is None:
        num_classes = int(x.max()) + 1 if x.size else 0
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(f"to_categorical: labels must be in [0, {num_classes}), got range "
                         f"[{x.min()}, {x.max()}]")
    out = np.zeros(x.shape + (num_classes,), dtype=np.float32)
    np.put_along_axis(out, x[..., None], 1.0, axis=-1)
    return out


def normalize(x, axis=-1, order=2):
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, ord=order, axis=axis, keepdims=True)
    return x / np.where(norm == 0, 1, norm)


def get_custom_objects() -> dict:
    from .registry import CUSTOM_OBJECTS
    return CUSTOM_OBJECTS


from .data_adapters import PyDataset  # noqa: E402
from .utils_data import pad_sequences, split_dataset, timeseries_dataset_from_array  # noqa: E402

Sequence = PyDataset  # the Keras 2 name
__all__ += ["PyDataset", "Sequence", "pad_sequences", "split_dataset", "timeseries_dataset_from_array"]
