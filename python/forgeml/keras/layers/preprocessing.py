"""Preprocessing layers: Normalization (adapt), Rescaling, CenterCrop, CategoryEncoding, and the
image augmentations RandomFlip / RandomRotation / RandomTranslation / RandomZoom.

Augmentations act only when training (identity at inference, as Keras). Rotation, translation and
zoom share one projective sampler with Keras's transform convention: output pixel (x, y) reads
input point (a0 x + a1 y + a2, b0 x + b1 y + b2), bilinear or nearest, with the fill modes
reflect / wrap / nearest / mirror / constant applied to each neighbour's index (as
jax.scipy.ndimage.map_coordinates does). The sampler is linear in the image, so its backward
scatters the same weights back.
"""

from __future__ import annotations

import numpy as np

from .. import backend, utils
from .base import Layer

__all__ = [
    "Normalization",
    "Rescaling",
    "CenterCrop",
    "CategoryEncoding",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "affine_sample",
]


class Normalization(Layer):
    """(x - mean) / max(sqrt(variance), eps) per feature of the last axis; ``adapt(data)`` learns
    mean and variance (population variance, as Keras). Weights: mean, variance, count."""

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis not in (-1, [-1], (-1,)):
            raise NotImplementedError(f"Normalization: only axis=-1 is supported, got axis={axis}")
        if (mean is None) != (variance is None):
            raise ValueError(
                f"When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean} and variance={variance}"
            )
        self.axis, self.invert = -1, bool(invert)
        self.input_mean = None if mean is None else np.asarray(mean, np.float32)
        self.input_variance = None if variance is None else np.asarray(variance, np.float32)
        self._adapted = None

    def build(self, input_shape):
        c = input_shape[-1]
        self.mean = self.add_weight((c,), "zeros", "mean", trainable=False)
        self.variance = self.add_weight((c,), "ones", "variance", trainable=False)
        self.count = self.add_weight((), "zeros", "count", trainable=False)
        if self.input_mean is not None:
            self.mean.assign(np.broadcast_to(self.input_mean, (c,)))
            self.variance.assign(np.broadcast_to(self.input_variance, (c,)))
        if self._adapted is not None:
            self._set_stats(*self._adapted)

    def adapt(self, data, batch_size=None, steps=None):
        """Mean and variance over every axis but the last, accumulated in float64 over batches."""
        from ..data_adapters import iterate_inputs

        total, total_sq, n = 0.0, 0.0, 0
        for batch in iterate_inputs(data, batch_size, steps):
            b = np.asarray(backend.to_numpy(batch), np.float64)
            b = b.reshape(-1, b.shape[-1]) if b.ndim > 1 else b.reshape(-1, 1)
            total = total + b.sum(axis=0)
            total_sq = total_sq + (b * b).sum(axis=0)
            n += b.shape[0]
        if n == 0:
            raise ValueError("Normalization.adapt: the data is empty")
        mean = total / n
        var = np.maximum(total_sq / n - mean * mean, 0.0)
        self._adapted = (mean, var, n)
        if not self.built:
            self._build_once((None, mean.shape[0]))
        self._set_stats(mean, var, n)

    def _set_stats(self, mean, var, n):
        self.mean.assign(mean.astype(np.float32))
        self.variance.assign(var.astype(np.float32))
        self.count.assign(np.float32(n))

    def forward(self, x, training=False):
        std = self.xp.maximum(self.xp.sqrt(self.variance.value), backend.epsilon())
        self._std = std
        if self.invert:
            return x * std + self.mean.value
        return (x - self.mean.value) / std

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return dy * self._std if self.invert else dy / self._std

    def get_config(self):
        cfg = {**super().get_config(), "axis": self.axis, "invert": self.invert, "mean": None, "variance": None}
        if self.input_mean is not None:
            cfg["mean"], cfg["variance"] = self.input_mean.tolist(), self.input_variance.tolist()
        return cfg


class Rescaling(Layer):
    """x * scale + offset."""

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset

    def forward(self, x, training=False):
        return x * np.float32(self.scale) + np.float32(self.offset)

    def backward(self, dy, need_dx=True):
        return dy * np.float32(self.scale) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class CenterCrop(Layer):
    """The central (height, width) window of (N, H, W, C) images."""

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)

    def build(self, input_shape):
        h, w = input_shape[1:3]
        if (h is not None and h < self.height) or (w is not None and w < self.width):
            raise NotImplementedError(
                f"CenterCrop {self.name!r}: images smaller than the crop ({h}x{w} < "
                f"{self.height}x{self.width}) need resizing, which forgeml.keras does not do"
            )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[3])

    def forward(self, x, training=False):
        self._shape = x.shape
        top, left = (x.shape[1] - self.height) // 2, (x.shape[2] - self.width) // 2
        self._corner = (top, left)
        return x[:, top : top + self.height, left : left + self.width]

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dx = self.xp.zeros(self._shape, dy.dtype)
        top, left = self._corner
        dx[:, top : top + self.height, left : left + self.width] = dy
        return dx

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


class CategoryEncoding(Layer):
    """Integer ids -> one_hot / multi_hot / count vectors of length num_tokens."""

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if output_mode not in ("one_hot", "multi_hot", "count"):
            raise ValueError(f"Unknown arg for output_mode: {output_mode}")
        if num_tokens is None:
            raise ValueError(
                "num_tokens must be set to use this layer. If the number of tokens is not known "
                "beforehand, use the IntegerLookup layer instead."
            )
        self.num_tokens, self.output_mode = int(num_tokens), output_mode

    def _input_dtype(self, x):
        return np.int64

    def compute_output_shape(self, input_shape):
        if self.output_mode == "one_hot" and (len(input_shape) == 1 or input_shape[-1] != 1):
            return (*input_shape, self.num_tokens)
        lead = input_shape[:-1] if len(input_shape) > 1 else input_shape
        return (*lead, self.num_tokens)

    def forward(self, x, training=False):
        xp = self.xp
        ids = x.astype(np.int64)
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= self.num_tokens):
            raise ValueError(
                f"Input values must be in the range 0 <= values < num_tokens with num_tokens={self.num_tokens}"
            )
        if self.output_mode == "one_hot":
            if ids.ndim > 1 and ids.shape[-1] == 1:
                ids = ids[..., 0]
            return (ids[..., None] == xp.arange(self.num_tokens)).astype(np.float32)
        flat = ids.reshape(ids.shape[0] if ids.ndim > 1 else ids.shape[0], -1)
        out = xp.zeros((flat.shape[0], self.num_tokens), np.float32)
        rows = xp.repeat(xp.arange(flat.shape[0]), flat.shape[1])
        backend.scatter_add(xp, out, (rows, flat.reshape(-1)), xp.ones(flat.size, np.float32))
        return out if self.output_mode == "count" else (out > 0).astype(np.float32)

    def backward(self, dy, need_dx=True):
        return None  # integer ids get no gradient

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode, "sparse": False}


# ---------------------------------------------------------------- augmentation


class _Augment(Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _random(self):
        return self._rng or utils.global_rng()

    def forward(self, x, training=False):
        self._active = bool(training)
        return self._apply(x) if training else x

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return self._apply_backward(dy) if self._active else dy

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class RandomFlip(_Augment):
    """Each image flipped with probability 1/2: 'horizontal' (width), 'vertical' (height), or
    'horizontal_and_vertical' (both together, one draw per image, as Keras 3)."""

    def __init__(self, mode="horizontal_and_vertical", seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(f"RandomFlip layer {kwargs.get('name')} received an unknown mode argument {mode}")
        self.mode = mode

    def _axes(self):
        return {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}[self.mode]

    def _flip(self, a):
        out = a.copy()
        sel = self._flips
        if sel.any():
            out[sel] = self.xp.flip(a[sel], axis=self._axes())
        return out

    def _apply(self, x):
        flips = self._random().random(x.shape[0]) <= 0.5
        self._flips = flips if self.xp is np else self.xp.asarray(flips)
        return self._flip(x)

    def _apply_backward(self, dy):
        return self._flip(dy)  # a flip is its own inverse and transpose

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _fix_index(xp, i, n, mode):
    """Integer indices into [0, n) under a fill mode; for 'constant' also the in-range mask."""
    if mode == "constant":
        ok = (i >= 0) & (i < n)
        return xp.clip(i, 0, n - 1), ok
    if mode == "nearest":
        return xp.clip(i, 0, n - 1), None
    if mode == "wrap":
        return xp.mod(i, n), None
    if mode == "mirror":  # whole-sample symmetric: d c b | a b c d | c b a
        if n == 1:
            return xp.zeros_like(i), None
        p = 2 * (n - 1)
        j = xp.mod(i, p)
        return xp.where(j >= n, p - j, j), None
    p = 2 * n  # reflect, half-sample symmetric: c b a | a b c | c b a
    j = xp.mod(i, p)
    return xp.where(j >= n, p - 1 - j, j), None


def affine_sample(x, mats, interpolation="bilinear", fill_mode="reflect", fill_value=0.0, dy=None):
    """Resample (N, H, W, C) images by per-image transforms mats (N, 6); with dy, the transpose
    (the gradient wrt x of sum(affine_sample(x) * dy))."""
    xp = backend.xp_of(x)
    n, h, w, c = x.shape
    ys, xs = xp.meshgrid(xp.arange(h, dtype=np.float64), xp.arange(w, dtype=np.float64), indexing="ij")
    m = xp.asarray(mats, dtype=np.float64)
    sx = m[:, 0, None, None] * xs + m[:, 1, None, None] * ys + m[:, 2, None, None]
    sy = m[:, 3, None, None] * xs + m[:, 4, None, None] * ys + m[:, 5, None, None]
    if interpolation == "nearest":
        corners = [(xp.floor(sy + 0.5), xp.floor(sx + 0.5), xp.ones_like(sx))]
    elif interpolation == "bilinear":
        y0, x0 = xp.floor(sy), xp.floor(sx)
        fy, fx = sy - y0, sx - x0
        corners = [
            (y0, x0, (1 - fy) * (1 - fx)),
            (y0, x0 + 1, (1 - fy) * fx),
            (y0 + 1, x0, fy * (1 - fx)),
            (y0 + 1, x0 + 1, fy * fx),
        ]
    else:
        raise ValueError(f"interpolation: expected 'bilinear' or 'nearest', got {interpolation!r}")
    batch = xp.broadcast_to(xp.arange(n)[:, None, None], sx.shape)
    out = xp.zeros(x.shape, np.float64) if dy is None else None
    dx = xp.zeros(x.shape, np.float64) if dy is not None else None
    for cy, cx, wt in corners:
        iy, oky = _fix_index(xp, cy.astype(np.int64), h, fill_mode)
        ix, okx = _fix_index(xp, cx.astype(np.int64), w, fill_mode)
        if oky is not None:
            ok = oky & okx
            if dy is None and fill_value:
                out += (wt * ~ok)[..., None] * fill_value
            wt = wt * ok
        if dy is None:
            out += wt[..., None] * x[batch, iy, ix]
        else:
            backend.scatter_add(
                xp, dx, (batch.reshape(-1), iy.reshape(-1), ix.reshape(-1)), (wt[..., None] * dy).reshape(-1, c)
            )
    return (out if dy is None else dx).astype(x.dtype)


def _range(factor, name, symmetric=True):
    if isinstance(factor, (int, float)):
        lo, hi = (-abs(factor), abs(factor)) if symmetric else (0.0, float(factor))
    else:
        lo, hi = (float(v) for v in factor)
    if lo > hi:
        raise ValueError(f"`{name}` lower bound must not exceed the upper bound. Received: {factor}")
    return lo, hi


class _AffineAugment(_Augment):
    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(seed, **kwargs)
        if fill_mode not in ("reflect", "wrap", "constant", "nearest", "mirror"):
            raise NotImplementedError(
                f"Unknown `fill_mode` {fill_mode}. Expected of one "
                "{'reflect', 'wrap', 'constant', 'nearest', 'mirror'}."
            )
        if interpolation not in ("bilinear", "nearest"):
            raise NotImplementedError(
                f"Unknown `interpolation` {interpolation}. Expected of one {{'nearest', 'bilinear'}}."
            )
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, float(fill_value)

    def _apply(self, x):
        self._mats = self._matrices(x.shape[0], x.shape[1], x.shape[2])
        return affine_sample(x, self._mats, self.interpolation, self.fill_mode, self.fill_value)

    def _apply_backward(self, dy):
        return affine_sample(dy, self._mats, self.interpolation, self.fill_mode, 0.0, dy=dy)

    def get_config(self):
        return {
            **super().get_config(),
            "fill_mode": self.fill_mode,
            "interpolation": self.interpolation,
            "fill_value": self.fill_value,
        }


class RandomRotation(_AffineAugment):
    """Rotation by factor * 360 degrees, drawn per image, about the image centre."""

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0, **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.factor = factor
        self._lo, self._hi = _range(factor, "factor")

    def _matrices(self, n, h, w):
        angle = np.deg2rad(self._random().uniform(self._lo * 360.0, self._hi * 360.0, n))
        cos, sin = np.cos(angle), np.sin(angle)
        cx, cy = 0.5 * (w - 1), 0.5 * (h - 1)
        return np.stack([cos, -sin, cx - cx * cos + cy * sin, sin, cos, cy - cx * sin - cy * cos], axis=1)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomTranslation(_AffineAugment):
    """Shift by height_factor * H and width_factor * W pixels, drawn per image."""

    def __init__(
        self,
        height_factor,
        width_factor,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._h, self._w = _range(height_factor, "height_factor"), _range(width_factor, "width_factor")

    def _matrices(self, n, h, w):
        rng = self._random()
        ty = rng.uniform(*self._h, n) * h
        tx = rng.uniform(*self._w, n) * w
        one, zero = np.ones(n), np.zeros(n)
        return np.stack([one, zero, -tx, zero, one, -ty], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}


class RandomZoom(_AffineAugment):
    """Zoom by 1 + factor drawn per image (positive factors zoom out, as Keras)."""

    def __init__(
        self,
        height_factor,
        width_factor=None,
        fill_mode="reflect",
        interpolation="bilinear",
        seed=None,
        fill_value=0.0,
        **kwargs,
    ):
        super().__init__(fill_mode, interpolation, seed, fill_value, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._h = _range(height_factor, "height_factor")
        self._w = None if width_factor is None else _range(width_factor, "width_factor")

    def _matrices(self, n, h, w):
        rng = self._random()
        zy = 1.0 + rng.uniform(*self._h, n)
        zx = zy if self._w is None else 1.0 + rng.uniform(*self._w, n)
        zero = np.zeros(n)
        return np.stack([zx, zero, (w - 1) / 2.0 * (1 - zx), zero, zy, (h - 1) / 2.0 * (1 - zy)], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor, "width_factor": self.width_factor}
