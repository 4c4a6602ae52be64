"""StringLookup and IntegerLookup: tokens -> vocabulary indices (or the reverse with invert=True),
with Keras 3's index layout, adapt ordering and output modes.

Index layout: in ``output_mode="int"`` with a mask token, index 0 is the mask, then
``num_oov_indices`` OOV indices, then the vocabulary; otherwise the OOV indices come first.
``adapt`` counts tokens over the data (each row of a 2-D batch, or each 1-D batch, is a document
for tf_idf), drops the mask and OOV tokens, orders by count and breaks ties by the token itself
(descending, as Keras's lexsort does), and keeps ``max_tokens`` minus the special indices.
``multi_hot`` / ``count`` / ``tf_idf`` reduce over the last axis; ``one_hot`` encodes each element;
a mask token is dropped from them. ``tf_idf`` is count * idf, idf = log(1 + docs / (1 + doc_count)),
the special indices weighted by the mean idf.

These layers run on NumPy on the host (strings have no device form): call them on raw data, in a
``forgeml.data`` pipeline (``ds.map``), or as a model's first layer. The vocabulary is saved in the
layer config.
"""

from __future__ import annotations

import os

import numpy as np

from .base import Layer

__all__ = ["StringLookup", "IntegerLookup", "IndexLookup"]

_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def _listify(v):
    if v is None or isinstance(v, str):
        return v
    a = np.asarray(v)
    return a.tolist()


class IndexLookup(Layer):
    """What StringLookup and IntegerLookup share; ``_strings`` says which keys they take."""

    _strings = True
    _takes_strings = True

    def __init__(
        self,
        max_tokens,
        num_oov_indices,
        mask_token,
        oov_token,
        vocabulary_dtype,
        vocabulary=None,
        idf_weights=None,
        invert=False,
        output_mode="int",
        sparse=False,
        pad_to_max_tokens=False,
        has_input_vocabulary=None,
        vocabulary_size=None,
        **kwargs,
    ):
        kwargs.pop("dtype", None)
        super().__init__(**kwargs)
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(f"If set, `max_tokens` must be greater than 1. Received: max_tokens={max_tokens}")
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(f"If pad_to_max_tokens is True, must set `max_tokens`. Received: max_tokens={max_tokens}")
        if num_oov_indices < 0:
            raise ValueError(
                f"`num_oov_indices` must be greater than or equal to 0. Received: num_oov_indices={num_oov_indices}"
            )
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if output_mode not in _MODES:
            raise ValueError(
                f"Invalid value for argument `output_mode`. Expected one of {list(_MODES)}. "
                f"Received: output_mode={output_mode}"
            )
        if invert and output_mode != "int":
            raise ValueError(
                f"`output_mode` must be `'int'` when `invert` is true. Received: output_mode={output_mode}"
            )
        if sparse:
            raise NotImplementedError(
                f"{type(self).__name__}: sparse=True is not supported by forgeml.keras (outputs are dense arrays)"
            )
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(
                f"`idf_weights` should only be set if `output_mode` is `'tf_idf'`. Received: "
                f"idf_weights={idf_weights} and output_mode={output_mode}"
            )
        if self._strings and num_oov_indices > 1:
            raise NotImplementedError(
                f"{type(self).__name__}: num_oov_indices > 1 hashes strings with "
                "TensorFlow's FarmHash in Keras; forgeml supports 0 or 1"
            )
        self.max_tokens, self.num_oov_indices = max_tokens, int(num_oov_indices)
        self.mask_token, self.oov_token = mask_token, oov_token
        self.vocabulary_dtype, self.invert, self.output_mode = vocabulary_dtype, bool(invert), output_mode
        self.sparse, self.pad_to_max_tokens = False, bool(pad_to_max_tokens)
        self.input_vocabulary = vocabulary if not isinstance(vocabulary, str) else None
        self.input_idf_weights = idf_weights
        self._has_input_vocabulary = vocabulary is not None if has_input_vocabulary is None else has_input_vocabulary
        self._tokens, self._index, self._idf = [], {}, None
        self._frozen = None  # the vocabulary size once a vocabulary is set
        if output_mode == "tf_idf" and self._has_input_vocabulary and vocabulary is not None and idf_weights is None:
            raise ValueError(
                "When specifying the `vocabulary` argument, in TF-IDF output mode, the "
                "`idf_weights` argument must also be provided."
            )
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        self.built = True

    # ---------------------------------------------------------------- vocabulary
    def _oov_start(self):
        return 1 if self.mask_token is not None and self.output_mode == "int" else 0

    def _token_start(self):
        return self._oov_start() + self.num_oov_indices

    def vocabulary_size(self):
        return self._token_start() + len(self._tokens)

    def get_vocabulary(self, include_special_tokens=True):
        vocab = [self.oov_token] * self._token_start() + list(self._tokens)
        if self.mask_token is not None and self.output_mode == "int":
            vocab[0] = self.mask_token
        return vocab if include_special_tokens else vocab[self._token_start() :]

    def _key(self, v):
        return str(v) if self._strings else int(v)

    def set_vocabulary(self, vocabulary, idf_weights=None):
        if self.output_mode == "tf_idf" and idf_weights is None:
            raise ValueError("`idf_weights` must be set if output_mode is 'tf_idf'.")
        if self.output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(
                f"`idf_weights` should only be set if output_mode is `'tf_idf'`. Received: "
                f"output_mode={self.output_mode} and idf_weights={idf_weights}"
            )
        if isinstance(vocabulary, (str, os.PathLike)):
            if not os.path.exists(vocabulary):
                raise ValueError(f"Vocabulary file {vocabulary} does not exist.")
            with open(vocabulary, encoding="utf-8") as f:
                vocabulary = [line.rstrip("\n") for line in f]
        vocab = [self._key(v) for v in np.asarray(vocabulary).reshape(-1).tolist()]
        if not vocab:
            raise ValueError(f"Cannot set an empty vocabulary. Received: vocabulary={vocabulary}")
        start = self._token_start()
        special = [self.mask_token] * self._oov_start() + [self.oov_token] * self.num_oov_indices
        found = vocab[:start] == [self._key(s) for s in special] if all(s is not None for s in special) else False
        tokens = vocab[start:] if found else vocab
        seen, repeated = set(), []
        for t in tokens:
            if t in seen and t not in repeated:
                repeated.append(t)
            seen.add(t)
        if repeated:
            raise ValueError(
                f"The passed vocabulary has at least one repeated term. Please uniquify your dataset. "
                f"The repeated terms are: {repeated}"
            )
        if self.mask_token is not None and self._key(self.mask_token) in seen:
            raise ValueError(
                f"Found reserved mask token at unexpected location in `vocabulary`. Note that passed "
                f"`vocabulary` does not need to include the OOV and mask tokens. Either remove all mask "
                f"and OOV tokens, or include them only at the start of the vocabulary in precisely "
                f"this order: {special}. Received: mask_token={self.mask_token}"
            )
        if self.invert and self.oov_token is not None and self._key(self.oov_token) in seen:
            raise ValueError(
                f"Found reserved OOV token at unexpected location in `vocabulary`. Received: oov_token={self.oov_token}"
            )
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError(
                f"Attempted to set a vocabulary larger than the maximum vocab size. Received "
                f"vocabulary size is {start + len(tokens)}; `max_tokens` is {self.max_tokens}."
            )
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            w = np.asarray(idf_weights, np.float64)
            if w.ndim != 1:
                raise ValueError(
                    f"TF-IDF data must be a 1-index array. Received: type(idf_weights)={type(idf_weights)}"
                )
            if len(w) != len(vocab):
                raise ValueError(
                    f"`idf_weights` must be the same length as vocabulary. len(idf_weights) is "
                    f"{len(w)}; len(vocabulary) is {len(vocab)}"
                )
            front = 0 if found else start
            back = self.max_tokens - front - len(w) if self.pad_to_max_tokens else 0
            self._idf = np.pad(w, (front, back), constant_values=(np.mean(w) if front else 0, 0)).astype(np.float32)

    def _set_tokens(self, tokens):
        self._tokens = list(tokens)
        start = self._token_start()
        self._index = {t: start + i for i, t in enumerate(self._tokens)}
        self._frozen = self.vocabulary_size()

    # ---------------------------------------------------------------- adapt
    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary (and idf weights in tf_idf mode) from arrays, lists, a
        forgeml.data Dataset, a generator or a PyDataset."""
        if self._has_input_vocabulary:
            raise ValueError(
                f"Cannot adapt layer '{self.name}' after setting a static vocabulary via "
                "`vocabulary` argument or `set_vocabulary()` method."
            )
        counts, doc_counts, n_docs = {}, {}, 0
        for docs in self._adapt_batches(data, steps):
            for doc in docs:
                keys = [self._key(t) for t in doc]
                for t in keys:
                    counts[t] = counts.get(t, 0) + 1
                if self.output_mode == "tf_idf":
                    for t in set(keys):
                        doc_counts[t] = doc_counts.get(t, 0) + 1
                n_docs += 1
        for special in (self.mask_token, self.oov_token):
            if special is not None:
                counts.pop(self._key(special), None)
        if not counts:
            return
        keys = list(counts)
        order = np.lexsort((np.asarray(keys), np.asarray([counts[k] for k in keys])))[::-1]
        if self.max_tokens:
            order = order[: self.max_tokens - self._token_start()]
        tokens = [keys[i] for i in order]
        self._set_tokens(tokens)
        if self.output_mode == "tf_idf":
            df = np.asarray([doc_counts[t] for t in tokens], np.float64)
            idf = np.log(1 + n_docs / (1 + df)).astype(np.float32)
            w = np.concatenate([np.full(self._token_start(), idf.mean(), np.float32), idf])
            if self.pad_to_max_tokens:
                w = np.pad(w, (0, self.max_tokens - w.size))
            self._idf = w.astype(np.float32)

    def _adapt_batches(self, data, steps):
        """Lists of documents per batch: an array (or list) is one batch of rows; a stream yields
        batches, each 2-D batch a list of rows and each 1-D batch one document (Keras's rule)."""
        from ..data_adapters import is_stream

        if is_stream(data) or (
            hasattr(data, "__iter__")
            and not isinstance(data, (list, tuple, np.ndarray, str))
            and not hasattr(data, "shape")
        ):
            for i, batch in enumerate(data):
                if steps is not None and i >= steps:
                    break
                if isinstance(batch, tuple):
                    batch = batch[0]
                yield self._docs(batch, whole_is_one=True)
            return
        yield self._docs(data, whole_is_one=False)

    def _docs(self, batch, whole_is_one):
        if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], (list, tuple, np.ndarray)):
            return [np.asarray(row).reshape(-1).tolist() for row in batch]  # ragged rows
        a = np.asarray(batch)
        if a.ndim == 0:
            return [[a.item()]]
        if a.ndim == 1:
            return [a.tolist()] if whole_is_one else [[v] for v in a.tolist()]
        return [row.reshape(-1).tolist() for row in a.reshape(a.shape[0], -1)]

    # ---------------------------------------------------------------- call
    def __call__(self, inputs, *args, **kwargs):
        from .base import KerasTensor

        if isinstance(inputs, KerasTensor):
            return super().__call__(inputs, *args, **kwargs)
        return self.forward(inputs)

    def _input_dtype(self, x):
        return x.dtype

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self.output_mode == "int":
            return input_shape
        depth = self._depth(check=False)
        if self.output_mode == "one_hot":
            if len(input_shape) > 1 and input_shape[-1] == 1:
                return (*input_shape[:-1], depth)
            return (*input_shape, depth)
        return (*input_shape[:-1], depth)

    def _depth(self, check=True):
        if self.pad_to_max_tokens:
            return self.max_tokens
        if self._frozen is None and check:
            raise RuntimeError(
                f"When using `output_mode={self.output_mode}` and `pad_to_max_tokens=False`, you "
                "must set the layer's vocabulary before calling it. Either pass a `vocabulary` "
                "argument to the layer, or call `adapt` with some sample data."
            )
        return self._frozen

    def lookup_ids(self, values):
        """Indices for an array of tokens (the mask token -> 0 in int mode, -1 otherwise)."""
        flat = np.asarray(values).reshape(-1)
        if flat.size == 0:
            return np.zeros(np.shape(values), np.int64)
        uniq, inverse = np.unique(flat, return_inverse=True)
        ids = np.empty(len(uniq), np.int64)
        oov = []
        mask = None if self.mask_token is None else self._key(self.mask_token)
        for i, u in enumerate(uniq.tolist()):
            k = self._key(u)
            if mask is not None and k == mask:
                ids[i] = 0 if self.output_mode == "int" else -1
            elif k in self._index:
                ids[i] = self._index[k]
            elif self.num_oov_indices == 0:
                oov.append(k)
            elif self.num_oov_indices == 1:
                ids[i] = self._oov_start()
            else:  # integers: floormod, as Keras's default oov_method
                ids[i] = self._oov_start() + k % self.num_oov_indices
        if oov:
            raise ValueError(
                f"When `num_oov_indices=0` all inputs should be in vocabulary, found OOV values "
                f"{oov}, consider setting `num_oov_indices=1`."
            )
        return ids[inverse].reshape(np.shape(values))

    def forward(self, x, training=False):
        if self.invert:
            return self._invert(x)
        x = self._as_keys(x)
        scalar = x.ndim == 0
        ids = self.lookup_ids(x.reshape(1) if scalar else x)
        if self.output_mode == "int":
            return ids.reshape(()) if scalar else ids
        return self.encode(ids, self._depth())

    def encode(self, ids, depth):
        """ids (int64, -1 = dropped) -> one_hot / multi_hot / count / tf_idf float32 of width depth."""
        if self.output_mode == "one_hot":
            if ids.ndim > 1 and ids.shape[-1] == 1:
                ids = ids[..., 0]
            return (ids[..., None] == np.arange(depth)).astype(np.float32)
        rows = ids.reshape(-1, ids.shape[-1]) if ids.ndim > 1 else ids.reshape(1, -1)
        out = np.zeros((rows.shape[0], depth), np.float32)
        r, c = np.nonzero(rows >= 0)
        np.add.at(out, (r, rows[r, c]), 1.0)
        if self.output_mode == "multi_hot":
            out = (out > 0).astype(np.float32)
        elif self.output_mode == "tf_idf":
            out *= self._idf[:depth]
        return out.reshape(*ids.shape[:-1], depth) if ids.ndim > 1 else out[0]

    def encode_rows(self, rows, depth):
        """Ragged rows of ids (TextVectorization's split text) -> (len(rows), depth)."""
        out = np.zeros((len(rows), depth), np.float32)
        for i, r in enumerate(rows):
            r = r[r >= 0]
            np.add.at(out[i], r, 1.0)
        if self.output_mode in ("multi_hot", "one_hot"):
            out = (out > 0).astype(np.float32)
        elif self.output_mode == "tf_idf":
            out *= self._idf[:depth]
        return out

    def _as_keys(self, x):
        a = np.asarray(x)
        if self._strings:
            if a.dtype.kind == "S":
                a = np.char.decode(a, "utf-8")
            return a.astype(str) if a.dtype.kind not in "UO" else a
        if a.dtype.kind == "f" and a.size and not np.all(a == np.floor(a)):
            raise ValueError(f"{type(self).__name__} {self.name!r}: expected integer inputs, got non-integer values")
        return a.astype(np.int64)

    def _invert(self, x):
        ids = np.asarray(x).astype(np.int64)
        vocab = self.get_vocabulary()
        fill = self.oov_token
        table = np.asarray(vocab + [fill], dtype=object if self._strings else np.int64)
        idx = np.where((ids >= 0) & (ids < len(vocab)), ids, len(vocab))
        out = table[idx]
        return out.astype(str) if self._strings else out

    def backward(self, dy, need_dx=True):
        return None  # tokens get no gradient

    # ---------------------------------------------------------------- config
    def get_config(self):
        vocab = self.get_vocabulary() if self._tokens else _listify(self.input_vocabulary)
        # the idf of the saved vocabulary (special indices included, max_tokens padding left out)
        idf = (
            self._idf[: self.vocabulary_size()].tolist() if self._idf is not None else _listify(self.input_idf_weights)
        )
        return {
            **super().get_config(),
            "invert": self.invert,
            "max_tokens": self.max_tokens,
            "num_oov_indices": self.num_oov_indices,
            "oov_token": self.oov_token,
            "mask_token": self.mask_token,
            "output_mode": self.output_mode,
            "sparse": self.sparse,
            "pad_to_max_tokens": self.pad_to_max_tokens,
            "vocabulary_dtype": self.vocabulary_dtype,
            "idf_weights": idf,
            "vocabulary": vocab,
            "vocabulary_size": self.vocabulary_size(),
            "has_input_vocabulary": self._has_input_vocabulary,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("vocabulary_size", None)
        return cls(**config)


class StringLookup(IndexLookup):
    """Strings -> integer indices (Keras 3 defaults: one OOV index "[UNK]" at 0, no mask token)."""

    _strings = True

    def __init__(
        self,
        max_tokens=None,
        num_oov_indices=1,
        mask_token=None,
        oov_token="[UNK]",
        vocabulary=None,
        idf_weights=None,
        invert=False,
        output_mode="int",
        pad_to_max_tokens=False,
        sparse=False,
        encoding="utf-8",
        name=None,
        **kwargs,
    ):
        kwargs.pop("vocabulary_dtype", None)
        self.encoding = encoding
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            "string",
            vocabulary,
            idf_weights,
            invert,
            output_mode,
            sparse,
            pad_to_max_tokens,
            name=name,
            **kwargs,
        )

    def get_config(self):
        return {**super().get_config(), "encoding": self.encoding}


class IntegerLookup(IndexLookup):
    """Integers -> indices (Keras 3 defaults: one OOV index for -1 at 0, no mask token)."""

    _strings = False

    def __init__(
        self,
        max_tokens=None,
        num_oov_indices=1,
        mask_token=None,
        oov_token=-1,
        vocabulary=None,
        vocabulary_dtype="int64",
        idf_weights=None,
        invert=False,
        output_mode="int",
        sparse=False,
        pad_to_max_tokens=False,
        oov_method="floormod",
        salt=None,
        name=None,
        **kwargs,
    ):
        if oov_method != "floormod" or salt is not None:
            raise NotImplementedError(
                "IntegerLookup: only oov_method='floormod' (Keras's default) is supported; "
                "'farmhash' is TensorFlow's hash"
            )
        if vocabulary_dtype not in ("int64", "int32"):
            raise ValueError(f"IntegerLookup: vocabulary_dtype must be an integer dtype, got {vocabulary_dtype!r}")
        if max_tokens is not None and max_tokens <= 1:
            raise ValueError(
                f"If `max_tokens` is set for `IntegerLookup`, it must be greater than 1. "
                f"Received: max_tokens={max_tokens}"
            )
        super().__init__(
            max_tokens,
            num_oov_indices,
            mask_token,
            oov_token,
            vocabulary_dtype,
            vocabulary,
            idf_weights,
            invert,
            output_mode,
            sparse,
            pad_to_max_tokens,
            name=name,
            **kwargs,
        )
