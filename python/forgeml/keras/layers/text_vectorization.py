"""TextVectorization: raw strings -> standardized, split, n-grammed tokens -> a StringLookup
(mask token "" at index 0 and "[UNK]" at 1 in int mode), as Keras 3 does.

Standardization follows Keras's TensorFlow ops: ``lower`` lowercases ASCII letters only and
``strip_punctuation`` removes the ASCII punctuation of Keras's regular expression. A callable
``standardize`` gets a NumPy array of str; a callable ``split`` gets a 1-D array of str and returns
one token list per string. In int mode rows are padded with 0 to the longest row of the batch, or
cut / padded to ``output_sequence_length``; ``ragged=True`` returns a list of 1-D arrays.
"""

from __future__ import annotations

import re
import string

import numpy as np

from .base import Layer
from .lookup import StringLookup

__all__ = ["TextVectorization"]

_PUNCT = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_STANDARDIZE = (None, "lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = (None, "whitespace", "character")


class TextVectorization(Layer):
    _takes_strings = True

    def __init__(
        self,
        max_tokens=None,
        standardize="lower_and_strip_punctuation",
        split="whitespace",
        ngrams=None,
        output_mode="int",
        output_sequence_length=None,
        pad_to_max_tokens=False,
        vocabulary=None,
        idf_weights=None,
        sparse=False,
        ragged=False,
        encoding="utf-8",
        name=None,
        **kwargs,
    ):
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("vocabulary_size", None)
        kwargs.pop("dtype", None)
        super().__init__(name=name, **kwargs)
        if not (standardize in _STANDARDIZE or callable(standardize)):
            raise ValueError(
                f"Invalid value for argument `standardize`. Expected one of {list(_STANDARDIZE)} or a "
                f"callable. Received: standardize={standardize}"
            )
        if not (split in _SPLIT or callable(split)):
            raise ValueError(
                f"Invalid value for argument `split`. Expected one of {list(_SPLIT)} or a callable. "
                f"Received: split={split}"
            )
        if isinstance(ngrams, list):
            ngrams = tuple(ngrams)
        if not (
            ngrams is None
            or isinstance(ngrams, int)
            or isinstance(ngrams, tuple)
            and all(isinstance(i, int) for i in ngrams)
        ):
            raise ValueError(f"`ngrams` must be None, an integer, or a tuple of integers. Received: ngrams={ngrams}")
        if not (output_sequence_length is None or isinstance(output_sequence_length, int)):
            raise ValueError(
                f"`output_sequence_length` must be either None or an integer when `output_mode` is "
                f"'int'. Received: output_sequence_length={output_sequence_length}"
            )
        if output_mode != "int" and output_sequence_length is not None:
            raise ValueError(
                f"`output_sequence_length` must not be set if `output_mode` is not 'int'. Received "
                f"output_sequence_length={output_sequence_length}."
            )
        if ragged and output_mode != "int":
            raise ValueError(
                f"`ragged` must not be true if `output_mode` is `'int'`. Received: ragged={ragged} and "
                f"output_mode={output_mode}"
            )
        self._standardize, self._split = standardize, split
        self._ngrams_arg = ngrams
        self._ngrams = tuple(range(1, ngrams + 1)) if isinstance(ngrams, int) else ngrams
        self._output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        self._output_sequence_length, self._ragged, self._encoding = output_sequence_length, bool(ragged), encoding
        self._lookup_layer = StringLookup(
            max_tokens=max_tokens,
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            pad_to_max_tokens=pad_to_max_tokens,
            mask_token="",
            output_mode=self._output_mode,
            sparse=sparse,
            has_input_vocabulary=has_input_vocabulary,
            encoding=encoding,
        )
        self.built = True

    # ---------------------------------------------------------------- vocabulary
    def get_vocabulary(self, include_special_tokens=True):
        return self._lookup_layer.get_vocabulary(include_special_tokens)

    def vocabulary_size(self):
        return self._lookup_layer.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        self._lookup_layer.set_vocabulary(vocabulary, idf_weights)

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary from strings: an array or list (one document per string), a
        forgeml.data Dataset, a generator or a PyDataset of string batches."""
        from ..data_adapters import is_stream

        if is_stream(data):
            batches = (b[0] if isinstance(b, tuple) else b for b in data)
        else:
            batches = [data]
        docs = []
        for i, batch in enumerate(batches):
            if steps is not None and i >= steps:
                break
            docs += self._preprocess(batch)
        self._lookup_layer.adapt([np.asarray(d, dtype=object) for d in docs])

    # ---------------------------------------------------------------- text -> tokens
    def _strings(self, inputs):
        a = np.asarray(inputs)
        if a.dtype.kind == "S":
            a = np.char.decode(a, self._encoding)
        elif a.dtype.kind == "O":
            a = np.asarray(
                [v.decode(self._encoding) if isinstance(v, bytes) else str(v) for v in a.reshape(-1)], dtype=str
            ).reshape(a.shape)
        elif a.dtype.kind != "U":
            raise ValueError(f"TextVectorization {self.name!r}: expected strings, got dtype {a.dtype}")
        if a.ndim == 0:
            a = a.reshape(1)
        return a

    def _standardized(self, a):
        std = self._standardize
        if callable(std):
            return np.asarray(std(a), dtype=str)
        flat = a.reshape(-1).tolist()
        if std in ("lower", "lower_and_strip_punctuation"):
            flat = [s.translate(_ASCII_LOWER) for s in flat]
        if std in ("strip_punctuation", "lower_and_strip_punctuation"):
            flat = [_PUNCT.sub("", s) for s in flat]
        return np.asarray(flat, dtype=str).reshape(a.shape)

    def _preprocess(self, inputs):
        """Token lists, one per input string."""
        a = self._standardized(self._strings(inputs))
        if self._split is None:
            rows = [[s] for s in a.reshape(a.shape[0], -1)[:, 0].tolist()] if a.ndim > 1 else [[s] for s in a]
            if a.ndim > 1 and a.shape[-1] != 1:
                rows = [list(r) for r in a.reshape(a.shape[0], -1).tolist()]
        else:
            if a.ndim > 1:
                if a.shape[-1] != 1 or a.ndim > 2:
                    raise ValueError(
                        f"When using `TextVectorization` to tokenize strings, the input rank must be 1 "
                        f"or the last shape dimension must be 1. Received: inputs.shape={a.shape} with "
                        f"rank={a.ndim}"
                    )
                a = a[:, 0]
            if self._split == "whitespace":
                rows = [s.split() for s in a.tolist()]
            elif self._split == "character":
                rows = [list(s) for s in a.tolist()]
            else:
                rows = [list(r) for r in self._split(a)]
        if self._ngrams is not None:
            rows = [self._ngram_row(r) for r in rows]
        return rows

    def _ngram_row(self, tokens):
        out = []
        for n in self._ngrams:
            out += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return out

    # ---------------------------------------------------------------- call
    def __call__(self, inputs, *args, **kwargs):
        from .base import KerasTensor

        if isinstance(inputs, KerasTensor):
            return super().__call__(inputs, *args, **kwargs)
        return self.forward(inputs)

    def _input_dtype(self, x):
        return x.dtype

    def compute_output_shape(self, input_shape):
        if self._output_mode == "int":
            return (input_shape[0], self._output_sequence_length)
        return (input_shape[0], self._lookup_layer._depth(check=False))

    def forward(self, x, training=False):
        lookup = self._lookup_layer
        rows = self._preprocess(x)
        ids = [lookup.lookup_ids(np.asarray(r, dtype=object)) if r else np.zeros(0, np.int64) for r in rows]
        if self._output_mode != "int":
            return lookup.encode_rows(ids, lookup._depth())
        if self._ragged:
            return ids if self._output_sequence_length is None else [r[: self._output_sequence_length] for r in ids]
        width = self._output_sequence_length
        if width is None:
            width = max((len(r) for r in ids), default=0)
        out = np.zeros((len(ids), width), np.int64)
        for i, r in enumerate(ids):
            r = r[:width]
            out[i, : len(r)] = r
        return out

    def backward(self, dy, need_dx=True):
        return None

    # ---------------------------------------------------------------- config
    def get_config(self):
        lk = self._lookup_layer.get_config()
        return {
            **super().get_config(),
            "max_tokens": lk["max_tokens"],
            "standardize": self._standardize if not callable(self._standardize) else None,
            "split": self._split if not callable(self._split) else None,
            "ngrams": self._ngrams_arg,
            "output_mode": self._output_mode,
            "output_sequence_length": self._output_sequence_length,
            "pad_to_max_tokens": lk["pad_to_max_tokens"],
            "sparse": False,
            "ragged": self._ragged,
            "vocabulary": lk["vocabulary"],
            "idf_weights": lk["idf_weights"],
            "encoding": self._encoding,
            "vocabulary_size": lk["vocabulary_size"],
            "has_input_vocabulary": lk["has_input_vocabulary"],
        }
