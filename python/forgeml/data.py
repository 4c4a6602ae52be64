"""forgeml.data: a small ``tf.data``-style Dataset that ``Model.fit`` consumes.

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000).batch(32).prefetch(tf.data.AUTOTUNE)
    model.fit(ds, epochs=5)

A Dataset is a recipe: iterating it (once per epoch) runs the recipe again, so ``shuffle``
reshuffles every pass (reshuffle_each_iteration=True, as TensorFlow). Elements are NumPy arrays,
or tuples / dicts of them. Slices of arrays followed by ``batch`` are cut as whole array slices
(no per-element Python work); ``map`` runs the function per element (or per batch after
``batch``). ``shuffle`` draws a full permutation of the elements it is given whatever the
buffer_size (TensorFlow's smaller buffers only shuffle locally). ``prefetch`` and ``cache`` keep
the order and do nothing else: the data is already in memory.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Dataset", "AUTOTUNE", "experimental"]

AUTOTUNE = -1
INFINITE_CARDINALITY, UNKNOWN_CARDINALITY = -1, -2


def _tree_map(fn, element):
    if isinstance(element, tuple):
        return tuple(_tree_map(fn, e) for e in element)
    if isinstance(element, list):
        return [_tree_map(fn, e) for e in element]
    if isinstance(element, dict):
        return {k: _tree_map(fn, v) for k, v in element.items()}
    return fn(element)


def _leaves(element):
    if isinstance(element, (tuple, list)):
        return [leaf for e in element for leaf in _leaves(e)]
    if isinstance(element, dict):
        return [leaf for v in element.values() for leaf in _leaves(v)]
    return [element]


def _stack(elements):
    first = elements[0]
    if isinstance(first, (tuple, list)):
        return type(first)(_stack([e[i] for e in elements]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _stack([e[k] for e in elements]) for k in first}
    return np.stack([np.asarray(e) for e in elements])


def _as_array(a):
    arr = np.asarray(a)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)  # TensorFlow makes Python floats float32 tensors
    return arr


class Dataset:
    """Base: subclasses implement ``_iter()`` (one pass) and ``cardinality()``."""

    # ---------------------------------------------------------------- sources
    @staticmethod
    def from_tensor_slices(tensors, name=None):
        return _Slices(tensors)

    @staticmethod
    def from_tensors(tensors, name=None):
        return _Generated(lambda: iter([_tree_map(_as_array, tensors)]), 1)

    @staticmethod
    def from_generator(generator, output_types=None, output_shapes=None, args=None, output_signature=None, name=None):
        if not callable(generator):
            raise TypeError("`generator` must be a Python callable.")
        return _Generated(lambda: iter(generator(*(args or ()))), UNKNOWN_CARDINALITY)

    @staticmethod
    def range(*args, **kwargs):
        return _Slices(np.arange(*args, dtype=np.int64))

    @staticmethod
    def zip(*datasets, name=None):
        datasets = datasets[0] if len(datasets) == 1 and isinstance(datasets[0], tuple) else datasets
        cards = [d.cardinality() for d in datasets]
        known = [c for c in cards if c >= 0]
        return _Generated(lambda: zip(*(iter(d) for d in datasets)), min(known) if known else cards[0])

    # ---------------------------------------------------------------- transformations
    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        return _Mapped(self, map_func)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True, name=None):
        if int(buffer_size) <= 0:
            raise ValueError(f"buffer_size must be greater than zero, got {buffer_size}")
        return _Shuffled(self, seed, reshuffle_each_iteration)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None, name=None):
        if int(batch_size) <= 0:
            raise ValueError(f"batch_size must be greater than zero, got {batch_size}")
        return _Batched(self, int(batch_size), bool(drop_remainder))

    def unbatch(self, name=None):
        parent = self

        def gen():
            for element in parent:
                n = len(_leaves(element)[0])
                for i in range(n):
                    yield _tree_map(lambda a: a[i], element)

        return _Generated(gen, UNKNOWN_CARDINALITY)

    def repeat(self, count=None, name=None):
        return _Repeated(self, None if count is None or count < 0 else int(count))

    def take(self, count, name=None):
        return _Taken(self, int(count))

    def skip(self, count, name=None):
        parent, count = self, int(count)

        def gen():
            for i, element in enumerate(parent):
                if i >= count:
                    yield element

        card = self.cardinality()
        return _Generated(gen, max(card - count, 0) if card >= 0 else card)

    def filter(self, predicate, name=None):
        parent = self
        return _Generated(lambda: (e for e in parent if bool(_call(predicate, e))), UNKNOWN_CARDINALITY)

    def prefetch(self, buffer_size, name=None):
        return self

    def cache(self, filename="", name=None):
        return self

    def with_options(self, options, name=None):
        return self

    # ---------------------------------------------------------------- reading
    def __iter__(self):
        return self._iter()

    def as_numpy_iterator(self):
        return iter(self)

    def cardinality(self):
        return UNKNOWN_CARDINALITY

    def __len__(self):
        card = self.cardinality()
        if card < 0:
            raise TypeError(
                "The dataset length is unknown." if card == UNKNOWN_CARDINALITY else "The dataset is infinite."
            )
        return card

    @property
    def element_spec(self):
        first = next(iter(self))
        return _tree_map(lambda a: (tuple(np.shape(a)), np.asarray(a).dtype), first)


def _call(fn, element):
    return fn(*element) if isinstance(element, tuple) else fn(element)


def _structure(t):
    """Tuples and dicts are structures; a list is one tensor (as TensorFlow reads it)."""
    if isinstance(t, tuple):
        return tuple(_structure(e) for e in t)
    if isinstance(t, dict):
        return {k: _structure(v) for k, v in t.items()}
    return _as_array(t)


class _Slices(Dataset):
    def __init__(self, tensors):
        self.tensors = _structure(tensors)
        sizes = {len(a) if np.ndim(a) else -1 for a in _leaves(self.tensors)}
        if -1 in sizes:
            raise ValueError("from_tensor_slices: every component needs a leading dimension to slice")
        if len(sizes) != 1:
            raise ValueError(f"from_tensor_slices: all components need the same first dimension, got {sorted(sizes)}")
        self.n = sizes.pop()

    def cardinality(self):
        return self.n

    def _rows(self, idx):
        return _tree_map(lambda a: a[idx], self.tensors)

    def _iter(self, order=None):
        order = np.arange(self.n) if order is None else order
        return (self._rows(int(i)) for i in order)


class _Generated(Dataset):
    def __init__(self, make_iter, card):
        self._make, self._card = make_iter, card

    def cardinality(self):
        return self._card

    def _iter(self):
        return iter(self._make())


class _Mapped(Dataset):
    def __init__(self, parent, fn):
        self.parent, self.fn = parent, fn

    def cardinality(self):
        return self.parent.cardinality()

    def _iter(self):
        return (_call(self.fn, e) for e in self.parent)


class _Shuffled(Dataset):
    def __init__(self, parent, seed, reshuffle):
        self.parent, self.reshuffle = parent, reshuffle
        self._seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._fixed = None

    def cardinality(self):
        return self.parent.cardinality()

    def _permutation(self, n):
        if not self.reshuffle:
            if self._fixed is None or len(self._fixed) != n:
                self._fixed = self._gen().permutation(n)
            return self._fixed
        return self._gen().permutation(n)

    def _gen(self):
        if self._rng is not None:
            return self._rng
        from .keras import utils

        return utils.global_rng()

    def order(self):
        """For a shuffle right over slices: the permutation of this pass (batching cuts it)."""
        return self._permutation(self.parent.n)

    def _iter(self):
        if isinstance(self.parent, _Slices):
            return self.parent._iter(self.order())
        elements = list(self.parent)
        return iter([elements[i] for i in self._permutation(len(elements))])


class _Batched(Dataset):
    def __init__(self, parent, size, drop):
        self.parent, self.size, self.drop = parent, size, drop

    def cardinality(self):
        card = self.parent.cardinality()
        if card < 0:
            return card
        return card // self.size if self.drop else -(-card // self.size)

    def _iter(self):
        src = self.parent
        if isinstance(src, _Slices) or (isinstance(src, _Shuffled) and isinstance(src.parent, _Slices)):
            return self._slice_batches(src)
        return self._stack_batches(iter(src))

    def _slice_batches(self, src):
        slices = src if isinstance(src, _Slices) else src.parent
        order = None if isinstance(src, _Slices) else src.order()
        n = slices.n
        stop = n - n % self.size if self.drop else n
        for a in range(0, stop, self.size):
            idx = slice(a, min(a + self.size, n)) if order is None else order[a : a + self.size]
            yield slices._rows(idx)

    def _stack_batches(self, it):
        buf = []
        for element in it:
            buf.append(element)
            if len(buf) == self.size:
                yield _stack(buf)
                buf = []
        if buf and not self.drop:
            yield _stack(buf)


class _Repeated(Dataset):
    def __init__(self, parent, count):
        self.parent, self.count = parent, count

    def cardinality(self):
        card = self.parent.cardinality()
        if self.count is None:
            return INFINITE_CARDINALITY if card != 0 else 0
        return card * self.count if card >= 0 else card

    def _iter(self):
        k = 0
        while self.count is None or k < self.count:
            empty = True
            for element in self.parent:
                empty = False
                yield element
            if empty:
                return
            k += 1


class _Taken(Dataset):
    def __init__(self, parent, count):
        self.parent, self.count = parent, count

    def cardinality(self):
        card = self.parent.cardinality()
        if self.count < 0:
            return card
        return min(card, self.count) if card >= 0 else (self.count if card == INFINITE_CARDINALITY else card)

    def _iter(self):
        if self.count < 0:
            return iter(self.parent)
        return (e for _, e in zip(range(self.count), self.parent))


class experimental:  # noqa: N801  (tf.data.experimental.AUTOTUNE in older tutorials)
    AUTOTUNE = AUTOTUNE
    INFINITE_CARDINALITY = INFINITE_CARDINALITY
    UNKNOWN_CARDINALITY = UNKNOWN_CARDINALITY

    @staticmethod
    def cardinality(dataset):
        return dataset.cardinality()
