"""Batches from Python generators, keras.utils.PyDataset, forgeml.data.Dataset and iterators.

``StreamAdapter`` turns any of them into epochs of (x, y, sample_weight) batches:
- a PyDataset gives len(ds) batches per epoch (index order shuffled when fit's shuffle=True, as
  Keras does) and gets on_epoch_begin / on_epoch_end calls;
- a Dataset is read afresh every epoch; with steps_per_epoch one iterator carries on across
  epochs (so ``.repeat()`` datasets work) and starts a new pass when a finite one runs out;
- a generator or iterator is one stream: steps_per_epoch batches per epoch, or until it ends.
Elements are x, (x,), (x, y) or (x, y, sample_weight).
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np

__all__ = ["PyDataset", "is_stream", "StreamAdapter", "iterate_inputs", "unpack"]


class PyDataset:
    """Keras's base for batch-indexed datasets: override ``__len__`` (batches per epoch) and
    ``__getitem__(index)`` (one batch); ``on_epoch_end`` is called after each epoch. workers /
    use_multiprocessing / max_queue_size are accepted; batches are read in the calling thread."""

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers, self._use_multiprocessing, self._max_queue_size = workers, use_multiprocessing, max_queue_size

    @property
    def workers(self):
        return self._workers

    @property
    def use_multiprocessing(self):
        return self._use_multiprocessing

    @property
    def max_queue_size(self):
        return self._max_queue_size

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index) returning a batch")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ (the number of batches)")

    @property
    def num_batches(self):
        return len(self)

    def on_epoch_begin(self):
        pass

    def on_epoch_end(self):
        pass


def _dataset_type():
    from ..data import Dataset

    return Dataset


def is_stream(x) -> bool:
    """True for inputs that yield batches rather than being one array."""
    if x is None or hasattr(x, "shape") or isinstance(x, (list, tuple, dict, np.ndarray)):
        return False
    return (
        isinstance(x, (PyDataset, _dataset_type()))
        or inspect.isgenerator(x)
        or (hasattr(x, "__next__") and hasattr(x, "__iter__"))
    )


def unpack(element):
    """(x, y, sample_weight) from a stream element."""
    if isinstance(element, tuple):
        if len(element) == 1:
            return element[0], None, None
        if len(element) == 2:
            return element[0], element[1], None
        if len(element) == 3:
            return element
        raise ValueError(
            f"Data is expected to be in format `x`, `(x,)`, `(x, y)`, or `(x, y, sample_weight)`, "
            f"found a tuple of {len(element)} elements"
        )
    return element, None, None


class StreamAdapter:
    def __init__(self, data, steps_per_epoch=None, shuffle=False):
        self.data, self.shuffle = data, bool(shuffle)
        self.steps = None if steps_per_epoch is None else int(steps_per_epoch)
        self._iter = None
        self.exhausted = False
        if not isinstance(data, (PyDataset, _dataset_type())):
            self._iter = iter(data)

    def num_steps(self):
        if self.steps is not None:
            return self.steps
        if isinstance(self.data, PyDataset):
            return len(self.data)
        if isinstance(self.data, _dataset_type()):
            card = self.data.cardinality()
            return card if card >= 0 else None
        return None

    def epoch(self):
        """The batches of one epoch, as (x, y, sw)."""
        data = self.data
        if isinstance(data, PyDataset):
            data.on_epoch_begin()
            n = len(data)
            order = np.arange(n)
            if self.shuffle:
                from .utils import global_rng

                order = global_rng().permutation(n)
            for i in order[: self.steps]:
                yield unpack(data[int(i)])
            data.on_epoch_end()
            return
        if isinstance(data, _dataset_type()) and self.steps is None:
            for element in data:
                yield unpack(element)
            return
        yield from self._stream_epoch()

    def _stream_epoch(self):
        taken = 0
        restarted = False
        while self.steps is None or taken < self.steps:
            if self._iter is None:
                self._iter = iter(self.data)
            try:
                element = next(self._iter)
            except StopIteration:
                if isinstance(self.data, _dataset_type()) and not restarted and taken > 0:
                    self._iter, restarted = None, True  # a finite Dataset: start its next pass
                    continue
                if self.steps is not None or taken == 0:
                    self.exhausted = True
                    warnings.warn(
                        "Your input ran out of data; interrupting training. Make sure that your dataset "
                        "or generator can generate at least `steps_per_epoch * epochs` batches.",
                        stacklevel=3,
                    )
                return
            taken += 1
            yield unpack(element)


def iterate_inputs(data, batch_size=None, steps=None):
    """x batches of an array (batch_size rows at a time), a Dataset, a generator or a PyDataset."""
    if is_stream(data):
        for i, (x, _, _) in enumerate(StreamAdapter(data, steps).epoch()):
            if steps is not None and i >= steps:
                break
            yield x
        return
    arr = np.asarray(data) if not hasattr(data, "shape") else data
    bs = batch_size or len(arr) or 1
    for a in range(0, len(arr), bs):
        yield arr[a : a + bs]
