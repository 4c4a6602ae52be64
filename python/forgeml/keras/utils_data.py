"""keras.utils data helpers: pad_sequences, split_dataset, timeseries_dataset_from_array."""

from __future__ import annotations

import numpy as np

__all__ = ["pad_sequences", "split_dataset", "timeseries_dataset_from_array"]


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Lists of sequences -> (n, maxlen) array; 'pre'/'post' padding and truncation, as Keras."""
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable.")
    if padding not in ("pre", "post"):
        raise ValueError(f'Padding type "{padding}" not understood')
    if truncating not in ("pre", "post"):
        raise ValueError(f'Truncating type "{truncating}" not understood')
    seqs = [np.asarray(s) for s in sequences]
    lengths = []
    for i, s in enumerate(seqs):
        if s.ndim == 0:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: {sequences[i]!r}")
        lengths.append(len(s))
    maxlen = int(maxlen) if maxlen is not None else (max(lengths) if lengths else 0)
    trailing = next((s.shape[1:] for s in seqs if len(s)), ())
    out = np.full((len(seqs), maxlen, *trailing), value, dtype=dtype)
    for i, s in enumerate(seqs):
        if not len(s) or maxlen == 0:
            continue
        t = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        if t.shape[1:] != trailing:
            raise ValueError(
                f"Shape of sample {t.shape[1:]} of sequence at position {i} is different from expected shape {trailing}"
            )
        if padding == "post":
            out[i, : len(t)] = t
        else:
            out[i, -len(t) :] = t
    return out


def split_dataset(dataset, left_size=None, right_size=None, shuffle=False, seed=None):
    """Arrays (or a tuple of arrays) -> two forgeml.data Datasets of left_size / right_size
    samples (fractions in (0, 1) or counts)."""
    from ..data import Dataset

    arrays = dataset if isinstance(dataset, (tuple, list)) else (dataset,)
    arrays = tuple(np.asarray(a) for a in arrays)
    n = len(arrays[0])
    if left_size is None and right_size is None:
        raise TypeError("you must specify either `left_size` or `right_size`")

    def count(size):
        if size is None:
            return None
        if isinstance(size, float):
            if not 0 < size < 1:
                raise ValueError(f"float sizes must be in (0, 1), got {size}")
            return int(round(size * n))
        return int(size)

    left, right = count(left_size), count(right_size)
    left = n - right if left is None else left
    right = n - left if right is None else right
    if left + right > n or left < 0 or right < 0:
        raise ValueError(
            f"The sum of `left_size` and `right_size` ({left + right}) is larger than the number of samples ({n})"
        )
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    pick = (lambda idx: tuple(a[idx] for a in arrays)) if len(arrays) > 1 else (lambda idx: arrays[0][idx])
    return Dataset.from_tensor_slices(pick(order[:left])), Dataset.from_tensor_slices(pick(order[left : left + right]))


def timeseries_dataset_from_array(
    data,
    targets,
    sequence_length,
    sequence_stride=1,
    sampling_rate=1,
    batch_size=128,
    shuffle=False,
    seed=None,
    start_index=None,
    end_index=None,
):
    """Windows data[i : i + sequence_length * sampling_rate : sampling_rate] for start indices i
    stepping by sequence_stride; targets[i] is the window's target (Keras's convention)."""
    from ..data import Dataset

    data = np.asarray(data)
    start = 0 if start_index is None else int(start_index)
    end = len(data) if end_index is None else int(end_index)
    span = (sequence_length - 1) * sampling_rate
    starts = np.arange(start, end - span, sequence_stride)
    if shuffle:
        starts = np.random.default_rng(seed).permutation(starts)
    idx = starts[:, None] + np.arange(0, span + 1, sampling_rate)[None, :]
    windows = data[idx]
    ds = Dataset.from_tensor_slices(windows if targets is None else (windows, np.asarray(targets)[starts]))
    return ds.batch(batch_size) if batch_size is not None else ds
