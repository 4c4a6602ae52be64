"""keras.random: NumPy-backed random draws with Keras's signatures.

seed: None (forgeml.keras's global generator, reset by keras.utils.set_random_seed), an int (a
fresh generator: same int, same numbers), or a SeedGenerator (its own advancing stream).
"""

from __future__ import annotations

import numpy as np

from . import utils

__all__ = [
    "SeedGenerator",
    "normal",
    "uniform",
    "randint",
    "truncated_normal",
    "dropout",
    "shuffle",
    "categorical",
    "gamma",
    "binomial",
    "beta",
]


class SeedGenerator:
    def __init__(self, seed=None, name=None, **kwargs):
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def next(self, ordered=True):
        return int(self._rng.integers(0, 2**31 - 1))


def _rng(seed):
    if seed is None:
        return utils.global_rng()
    if isinstance(seed, SeedGenerator):
        return seed._rng
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise ValueError(f"seed: expected None, an int or a keras.random.SeedGenerator, got {seed!r}")


def _dt(dtype):
    return np.dtype(dtype or "float32")


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return _rng(seed).normal(mean, stddev, tuple(shape)).astype(_dt(dtype))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    return _rng(seed).uniform(minval, maxval, tuple(shape)).astype(_dt(dtype))


def randint(shape, minval, maxval, dtype="int32", seed=None):
    return _rng(seed).integers(minval, maxval, tuple(shape)).astype(np.dtype(dtype))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal draws, redrawn until within two standard deviations of the mean."""
    rng, shape = _rng(seed), tuple(shape)
    z = rng.normal(size=shape)
    bad = np.abs(z) > 2
    while bad.any():
        z[bad] = rng.normal(size=int(bad.sum()))
        bad = np.abs(z) > 2
    return (mean + stddev * z).astype(_dt(dtype))


def dropout(inputs, rate, noise_shape=None, seed=None):
    x = np.asarray(inputs)
    shape = x.shape if noise_shape is None else tuple(noise_shape)
    keep = _rng(seed).random(shape) >= rate
    return np.where(keep, x / (1 - rate), 0).astype(x.dtype)


def shuffle(x, axis=0, seed=None):
    x = np.asarray(x)
    return np.take(x, _rng(seed).permutation(x.shape[axis]), axis=axis)


def categorical(logits, num_samples, dtype="int32", seed=None):
    logits = np.asarray(logits, np.float64)
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    rng = _rng(seed)
    return np.stack([rng.choice(p.shape[-1], size=num_samples, p=row) for row in p]).astype(np.dtype(dtype))


def gamma(shape, alpha, dtype=None, seed=None):
    return _rng(seed).gamma(alpha, 1.0, tuple(shape)).astype(_dt(dtype))


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    return _rng(seed).binomial(counts, probabilities, tuple(shape)).astype(_dt(dtype))


def beta(shape, alpha, beta, dtype=None, seed=None):
    return _rng(seed).beta(alpha, beta, tuple(shape)).astype(_dt(dtype))
