"""StringLookup, IntegerLookup and TextVectorization. Keras 3 runs these layers only with
TensorFlow installed; where it is, each case is compared with Keras itself. Everywhere, each case
checks the outputs Keras 3 documents for it (its docstring examples) and a plain-Python reference
of its rules (index layout, adapt's count-then-token ordering, tf-idf weights)."""

import math

import numpy as np
import pytest

import forgeml
from forgeml import keras
from keras_peer import real_keras

L = keras.layers
VOCAB = ["a", "b", "c", "d"]
DATA = [["a", "c", "d", "d"], ["d", "z", "b", "z"]]


def _peer():
    pytest.importorskip("tensorflow")  # Keras 3's lookup layers are built on tf.lookup
    return real_keras()


# ---------------------------------------------------------------- Keras 3's documented outputs
def test_string_lookup_documented_examples():
    np.testing.assert_array_equal(
        L.StringLookup(vocabulary=VOCAB)([["a", "c", "d"], ["d", "z", "b"]]), [[1, 3, 4], [4, 0, 2]]
    )
    layer = L.StringLookup()
    layer.adapt([["a", "c", "d"], ["d", "z", "b"]])
    assert layer.get_vocabulary() == ["[UNK]", "d", "z", "c", "b", "a"]
    np.testing.assert_array_equal(layer([["a", "c", "d"], ["d", "z", "b"]]), [[5, 3, 1], [1, 2, 4]])
    np.testing.assert_array_equal(
        L.StringLookup(vocabulary=VOCAB, output_mode="one_hot")(["a", "b", "c", "d", "z"]), np.eye(5)[[1, 2, 3, 4, 0]]
    )
    np.testing.assert_array_equal(
        L.StringLookup(vocabulary=VOCAB, output_mode="multi_hot")(DATA), [[0, 1, 0, 1, 1], [1, 0, 1, 0, 1]]
    )
    np.testing.assert_array_equal(
        L.StringLookup(vocabulary=VOCAB, output_mode="count")(DATA), [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]]
    )
    tfidf = L.StringLookup(output_mode="tf_idf")
    tfidf.set_vocabulary(VOCAB, idf_weights=[0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(tfidf(DATA), [[0, 0.25, 0, 0.6, 0.8], [1.0, 0, 0.75, 0, 0.4]], rtol=1e-6)
    tfidf.set_vocabulary(["[UNK]", *VOCAB], idf_weights=[0.9, 0.25, 0.75, 0.6, 0.4])
    np.testing.assert_allclose(tfidf(DATA), [[0, 0.25, 0, 0.6, 0.8], [1.8, 0, 0.75, 0, 0.4]], rtol=1e-6)
    inv = L.StringLookup(vocabulary=VOCAB, invert=True)([[1, 3, 4], [4, 0, 2]])
    assert inv.tolist() == [["a", "c", "d"], ["d", "[UNK]", "b"]]


def test_integer_lookup_documented_examples():
    vocab = [12, 36, 1138, 42]
    data = np.array([[12, 1138, 42], [42, 1000, 36]])
    np.testing.assert_array_equal(L.IntegerLookup(vocabulary=vocab)(data), [[1, 3, 4], [4, 0, 2]])
    layer = L.IntegerLookup()
    layer.adapt(data)
    assert layer.get_vocabulary() == [-1, 42, 1138, 1000, 36, 12]
    np.testing.assert_array_equal(layer(data), [[5, 2, 1], [1, 3, 4]])
    two = L.IntegerLookup(vocabulary=vocab, num_oov_indices=2)
    np.testing.assert_array_equal(two(np.array([[12, 1138, 42], [37, 1000, 36]])), [[2, 4, 5], [1, 0, 3]])
    np.testing.assert_array_equal(
        L.IntegerLookup(vocabulary=[10, 20, 30], num_oov_indices=4)(np.array([100, 300, 700, 1100, 1700, 2000])),
        [0] * 6,
    )
    d2 = np.array([[12, 1138, 42, 42], [42, 7, 36, 7]])
    np.testing.assert_array_equal(
        L.IntegerLookup(vocabulary=vocab, output_mode="count")(d2), [[0, 1, 0, 1, 2], [2, 0, 1, 0, 1]]
    )
    masked = L.IntegerLookup(vocabulary=vocab, mask_token=0)
    assert masked.get_vocabulary() == [0, -1, *vocab]
    np.testing.assert_array_equal(masked(np.array([[12, 0, 7]])), [[2, 0, 1]])


def test_text_vectorization_documented_examples():
    layer = L.TextVectorization(max_tokens=5000, output_mode="int", output_sequence_length=4)
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    np.testing.assert_array_equal(layer([["foo qux bar"], ["qux baz"]]), [[4, 1, 3, 0], [1, 2, 0, 0]])
    fixed = L.TextVectorization(output_sequence_length=4, vocabulary=["earth", "wind", "and", "fire"])
    assert fixed.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]


# ---------------------------------------------------------------- the rules, against plain Python
def _reference_vocab(docs, max_tokens=None, start=1):
    counts = {}
    for d in docs:
        for t in d:
            counts[t] = counts.get(t, 0) + 1
    order = sorted(counts, key=lambda t: (counts[t], t), reverse=True)  # count, then token, descending
    return order if max_tokens is None else order[: max_tokens - start]


def test_adapt_order_max_tokens_and_tf_idf_match_the_reference(rng):
    words = [f"w{i}" for i in range(23)]
    docs = [list(rng.choice(words, size=rng.integers(1, 9))) for _ in range(41)]
    layer = L.TextVectorization(max_tokens=15, output_mode="tf_idf")
    layer.adapt([" ".join(d) for d in docs])
    tokens = _reference_vocab(docs, 15)
    assert layer.get_vocabulary() == ["[UNK]", *tokens]
    df = {t: sum(t in d for d in docs) for t in tokens}
    idf = np.array([math.log(1 + len(docs) / (1 + df[t])) for t in tokens])
    idf = np.concatenate([[idf.mean()], idf])
    query = ["w1 w1 w2 zzz", "w3 w22 w22 w22"]
    want = np.zeros((2, 15))
    for i, q in enumerate(query):
        for t in q.split():
            want[i, tokens.index(t) + 1 if t in tokens else 0] += 1
    np.testing.assert_allclose(layer(query), want * idf, rtol=1e-5)


def test_text_vectorization_standardize_split_ngrams_and_padding():
    layer = L.TextVectorization(ngrams=2, vocabulary=["the", "cat", "the cat", "sat"])
    out = layer(["The CAT, sat!", "Ünïcode the"])  # only ASCII is lowercased (TensorFlow's lower)
    v = layer.get_vocabulary()
    assert out.shape == (2, 5)
    assert [v[i] for i in out[0]] == ["the", "cat", "sat", "the cat", "[UNK]"]
    assert [v[i] for i in out[1]] == ["[UNK]", "the", "[UNK]", "", ""]
    ragged = L.TextVectorization(vocabulary=["a"], ragged=True)(["a a b", "a"])
    assert [r.tolist() for r in ragged] == [[2, 2, 1], [2]]
    chars = L.TextVectorization(split="character", standardize=None, vocabulary=["a", "b"])(["abca"])
    np.testing.assert_array_equal(chars, [[2, 3, 1, 2]])
    custom = L.TextVectorization(standardize=lambda a: np.char.upper(a), vocabulary=["A"], split=None)
    np.testing.assert_array_equal(custom(np.array([["a"], ["b"]])), [[2], [1]])
    with pytest.raises(ValueError, match="input rank must be 1"):
        L.TextVectorization(vocabulary=["a"])(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="output_sequence_length"):
        L.TextVectorization(output_mode="count", output_sequence_length=3)


def test_errors_say_what_keras_says():
    with pytest.raises(ValueError, match="repeated term"):
        L.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="Cannot adapt layer"):
        L.StringLookup(vocabulary=["a"]).adapt(["a"])
    with pytest.raises(RuntimeError, match="must set the layer's vocabulary"):
        L.StringLookup(output_mode="multi_hot")(["a"])
    with pytest.raises(ValueError, match="num_oov_indices=0"):
        L.StringLookup(vocabulary=["a"], num_oov_indices=0)(["a", "q"])
    with pytest.raises(ValueError, match="larger than the maximum vocab size"):
        L.StringLookup(vocabulary=["a", "b", "c"], max_tokens=3)
    with pytest.raises(ValueError, match="output_mode"):
        L.StringLookup(output_mode="nope")
    with pytest.raises(ValueError, match="invert"):
        L.StringLookup(invert=True, output_mode="count")


def test_config_round_trip_keeps_adapted_vocabulary_and_idf():
    layer = L.TextVectorization(max_tokens=8, output_mode="tf_idf", pad_to_max_tokens=True, ngrams=(1, 2))
    layer.adapt(["x y z", "y z", "z q r s"])
    back = L.TextVectorization.from_config(layer.get_config())
    assert back.get_vocabulary() == layer.get_vocabulary()
    q = ["z y x", "q q unseen"]
    np.testing.assert_array_equal(back(q), layer(q))
    assert back(q).shape == (2, 8)
    back.adapt(["new words here"])  # an adapted layer stays adaptable after a round trip
    sl = L.StringLookup(mask_token="<pad>", num_oov_indices=0, vocabulary=["p", "q"])
    back2 = L.StringLookup.from_config(sl.get_config())
    assert back2.get_vocabulary() == ["<pad>", "p", "q"]


# ---------------------------------------------------------------- in programs
TEXTS = np.array(
    [
        "good movie great fun",
        "bad film awful",
        "great fun film",
        "awful boring bad",
        "great great good",
        "boring bad plot",
        "fun good plot",
        "awful film bad",
    ]
    * 4
)
LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0] * 4)


def test_dataset_map_then_embedding_model_trains():
    vec = L.TextVectorization(max_tokens=30, output_sequence_length=6)
    vec.adapt(TEXTS)
    keras.utils.set_random_seed(1)
    ds = forgeml.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(8).map(lambda x, y: (vec(x), y))
    model = keras.Sequential(
        [
            keras.Input((6,)),
            L.Embedding(30, 8, mask_zero=True),
            L.GlobalAveragePooling1D(),
            L.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(ds, epochs=15, verbose=0)
    assert hist.history["accuracy"][-1] == 1.0


def test_string_input_model_with_vectorization_layer_trains_and_saves(tmp_path):
    vec = L.TextVectorization(max_tokens=30, output_sequence_length=6)
    vec.adapt(TEXTS)
    keras.utils.set_random_seed(2)
    inp = keras.Input(shape=(1,), dtype="string")
    h = L.Embedding(30, 8)(vec(inp))
    out = L.Dense(1, activation="sigmoid")(L.GlobalAveragePooling1D()(h))
    model = keras.Model(inp, out)
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy"])
    hist = model.fit(TEXTS[:, None], LABELS, epochs=15, batch_size=8, verbose=0)
    assert hist.history["accuracy"][-1] == 1.0
    model.save(tmp_path / "text.keras")
    back = keras.models.load_model(tmp_path / "text.keras")
    np.testing.assert_allclose(
        back.predict(TEXTS[:5, None], verbose=0), model.predict(TEXTS[:5, None], verbose=0), rtol=1e-6
    )


# ---------------------------------------------------------------- Keras 3 itself (with TensorFlow)
@pytest.mark.parametrize("mode", ["int", "multi_hot", "count", "tf_idf"])
def test_text_vectorization_matches_keras(mode, rng):
    real = _peer()
    words = [f"w{i}" for i in range(17)] + ["The", "cat!", "sat."]
    docs = [" ".join(rng.choice(words, size=rng.integers(1, 7))) for _ in range(29)]
    kw = {"max_tokens": 12, "output_mode": mode, "ngrams": 2}
    ours, theirs = L.TextVectorization(**kw), real.layers.TextVectorization(**kw)
    ours.adapt(docs)
    theirs.adapt(docs)
    assert ours.get_vocabulary() == theirs.get_vocabulary()
    np.testing.assert_allclose(ours(docs[:7]), np.asarray(theirs(docs[:7])), rtol=1e-5)


@pytest.mark.parametrize("cls", ["StringLookup", "IntegerLookup"])
def test_lookup_adapt_matches_keras(cls, rng):
    real = _peer()
    data = rng.integers(0, 9, size=(13, 5))
    data = data.astype(str) if cls == "StringLookup" else data
    for mode in ("int", "one_hot", "count"):
        ours, theirs = getattr(L, cls)(output_mode=mode), getattr(real.layers, cls)(output_mode=mode)
        ours.adapt(data)
        theirs.adapt(data)
        assert [str(v) for v in ours.get_vocabulary()] == [str(v) for v in theirs.get_vocabulary()]
        np.testing.assert_allclose(ours(data), np.asarray(theirs(data)))
