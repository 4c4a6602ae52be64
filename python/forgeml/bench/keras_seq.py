"""Training-epoch time of a small Conv1D text classifier and a small transformer encoder block
(MultiHeadAttention) in forgeml.keras against the same models in a plain PyTorch loop (optional
peer).

Both sides train the same shapes with Adam(1e-3, epsilon 1e-7), softmax cross-entropy on logits,
the same batch size and a fresh shuffle per epoch; one timed call is one epoch of ``fit``. Each side
starts from its own initial weights (timing only; the data are synthetic). PyTorch runs with
forgeml's thread count. Quick mode runs small cases of a few hundred samples.
"""

from __future__ import annotations

import numpy as np


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _text_data(n, steps, vocab, rng):
    x = rng.integers(1, vocab, (n, steps)).astype(np.int32)
    y = (x < vocab // 20).any(axis=1).astype(np.int64)  # "does a rare token occur"
    return x, y


def _seq_data(n, steps, dim, rng):
    x = rng.standard_normal((n, steps, dim)).astype(np.float32)
    y = (x[:, : steps // 2, 0].sum(axis=1) > 0).astype(np.int64)
    return x, y


def _keras_conv1d(keras, steps, vocab, emb, filters):
    L = keras.layers
    return keras.Sequential(
        [
            keras.Input((steps,), dtype="int32"),
            L.Embedding(vocab, emb),
            L.Conv1D(filters, 5, activation="relu"),
            L.GlobalMaxPooling1D(),
            L.Dense(2),
        ]
    )


def _torch_conv1d(torch, vocab, emb, filters):
    nn = torch.nn

    class TextCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(vocab, emb)
            self.conv = nn.Conv1d(emb, filters, 5)
            self.out = nn.Linear(filters, 2)

        def forward(self, x):
            h = self.emb(x).transpose(1, 2)  # (N, C, T) for Conv1d
            h = torch.relu(self.conv(h)).amax(dim=2)
            return self.out(h)

    return TextCNN()


def _keras_transformer(keras, steps, dim, heads, ff):
    L = keras.layers
    inp = keras.Input((steps, dim))
    att = L.MultiHeadAttention(heads, dim // heads)(inp, inp)
    h = L.LayerNormalization()(L.Add()([inp, att]))
    f = L.Dense(dim)(L.Dense(ff, activation="relu")(h))
    h = L.LayerNormalization()(L.Add()([h, f]))
    out = L.Dense(2)(L.GlobalAveragePooling1D()(h))
    return keras.Model(inp, out)


def _torch_transformer(torch, dim, heads, ff):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.att = nn.MultiheadAttention(dim, heads, batch_first=True)
            self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-3), nn.LayerNorm(dim, eps=1e-3)
            self.ff = nn.Sequential(nn.Linear(dim, ff), nn.ReLU(), nn.Linear(ff, dim))
            self.out = nn.Linear(dim, 2)

        def forward(self, x):
            h = self.norm1(x + self.att(x, x, x, need_weights=False)[0])
            h = self.norm2(h + self.ff(h))
            return self.out(h.mean(dim=1))

    return Block()


def _case(bench, torch, keras, name, model, tmodel, x, y, batch):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    def forgeml_epoch():
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)

    peers = {}
    if tmodel is not None:
        opt = torch.optim.Adam(tmodel.parameters(), lr=1e-3, eps=1e-7)  # Keras's epsilon
        loss_fn = torch.nn.CrossEntropyLoss()
        tx = torch.from_numpy(x.astype(np.int64) if x.dtype.kind == "i" else x)
        ty = torch.from_numpy(y)
        gen = torch.Generator().manual_seed(0)

        def torch_epoch():  # tracks the mean loss as fit does
            perm = torch.randperm(len(tx), generator=gen)
            total = torch.zeros(())
            for s in range(0, len(tx), batch):
                idx = perm[s : s + batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(tmodel(tx[idx]), ty[idx])
                loss.backward()
                opt.step()
                total += loss.detach() * len(idx)
            return float(total)

        peers["torch"] = torch_epoch
    bench.compare("keras_seq", name, forgeml_epoch, peers)


def run(bench) -> None:
    from forgeml import keras
    from .._backend import cpu as _cpu

    torch = _torch()
    if torch is not None:
        torch.manual_seed(0)
        torch.set_num_threads(_cpu.get_num_threads())
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    sizes = [(512, 64, 32)] if bench.quick else [(512, 64, 32), (4096, 128, 64)]
    for n, steps, filters in sizes:
        vocab, emb = 2000, 32
        x, y = _text_data(n, steps, vocab, rng)
        tmodel = _torch_conv1d(torch, vocab, emb, filters) if torch is not None else None
        _case(
            bench,
            torch,
            keras,
            f"Emb-Conv1D({filters},5)-GMP T{steps} N{n} bs32",
            _keras_conv1d(keras, steps, vocab, emb, filters),
            tmodel,
            x,
            y,
            32,
        )
    sizes = [(256, 32, 32, 2)] if bench.quick else [(256, 32, 32, 2), (2048, 64, 64, 4)]
    for n, steps, dim, heads in sizes:
        x, y = _seq_data(n, steps, dim, rng)
        tmodel = _torch_transformer(torch, dim, heads, 2 * dim) if torch is not None else None
        _case(
            bench,
            torch,
            keras,
            f"MHA({heads}x{dim // heads}) encoder T{steps} D{dim} N{n} bs32",
            _keras_transformer(keras, steps, dim, heads, 2 * dim),
            tmodel,
            x,
            y,
            32,
        )
    _mixed_lstm(bench, keras)


def _mixed_lstm(bench, keras) -> None:
    """LSTM(64)-Dense(10) training epoch under mixed_bfloat16 against the same model in float32,
    same process, interleaved (peer: forgeml float32; ratio > 1: mixed_bfloat16 is faster)."""
    from ..keras import mixed_precision

    n, steps, feat = (512, 16, 32) if bench.quick else (2048, 32, 32)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, steps, feat)).astype(np.float32)
    y = rng.integers(0, 10, n)
    models = {}
    for policy in ("float32", "mixed_bfloat16"):
        mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((steps, feat)), keras.layers.LSTM(64), keras.layers.Dense(10)])
        m.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        models[policy] = m
    mixed_precision.set_global_policy("float32")

    def epoch(policy):
        return lambda: models[policy].fit(x, y, batch_size=64, epochs=1, verbose=0)

    bench.compare(
        "keras_seq",
        f"LSTM(64)-D10 T{steps} F{feat} N{n} bs64 mixed_bfloat16",
        epoch("mixed_bfloat16"),
        {"forgeml float32": epoch("float32")},
        impl="forgeml mixed_bfloat16",
    )
