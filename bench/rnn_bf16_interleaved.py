"""LSTM under mixed_bfloat16: the fused bf16 sequence op vs the layer's per-step loop path (what
mixed_bfloat16 ran before) vs the fused float32 op, interleaved in one process.

    PYTHONPATH=python python bench/rnn_bf16_interleaved.py [rounds]

Each round times every variant once (the order rotates per round), forward (inference call) and
forward + backward (training forward, backward of a full-sequence gradient). Prints the median
and minimum wall time of each, the ratios of medians against the fused bf16 path, and the load
average before and after.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

from forgeml import keras

CASES = [(32, 100, 128, 256), (64, 50, 64, 128)]


def layers(n, t, f, h):
    """Three LSTMs with the same weights: fused bf16, loop bf16, fused float32."""
    x = np.random.default_rng(0).standard_normal((n, t, f)).astype(np.float32)
    made = {}
    for name, policy in (("fused_bf16", "mixed_bfloat16"), ("loop_bf16", "mixed_bfloat16"), ("fused_f32", "float32")):
        layer = keras.layers.LSTM(h, return_sequences=True, dtype_policy=policy)
        layer(x[:2])
        if made:
            layer.set_weights(next(iter(made.values())).get_weights())
        if name == "loop_bf16":
            layer._fast_ok = lambda: False  # the path mixed_bfloat16 took before the fused bf16 op
        made[name] = layer
    return x, made


def main(rounds):
    print(f"load average before: {os.getloadavg()}")
    for n, t, f, h in CASES:
        x, made = layers(n, t, f, h)
        dy = np.random.default_rng(1).standard_normal((n, t, h)).astype(np.float32)
        ys = {name: layer.forward(x) for name, layer in made.items()}
        err = {name: float(np.abs(ys[name] - ys["fused_f32"]).max()) for name in made}
        times = {(name, mode): [] for name in made for mode in ("fwd", "fwd+bwd")}
        names = list(made)
        for r in range(rounds):
            order = names[r % 3 :] + names[: r % 3]
            for name in order:
                layer = made[name]
                t0 = time.perf_counter()
                layer.forward(x)
                t1 = time.perf_counter()
                layer.forward(x, True)
                layer.backward(dy.copy())
                t2 = time.perf_counter()
                times[(name, "fwd")].append(t1 - t0)
                times[(name, "fwd+bwd")].append(t2 - t1)
        print(f"\nLSTM N{n} T{t} F{f} H{h}, {rounds} rounds; max |y - y_f32|: {err}")
        for mode in ("fwd", "fwd+bwd"):
            med = {name: statistics.median(times[(name, mode)]) for name in names}
            low = {name: min(times[(name, mode)]) for name in names}
            line = ", ".join(f"{name} {1e3 * med[name]:.1f} ms (min {1e3 * low[name]:.1f})" for name in names)
            print(f"  {mode:8s} median: {line}")
            print(
                f"  {mode:8s} loop_bf16 / fused_bf16 = {med['loop_bf16'] / med['fused_bf16']:.2f}x, "
                f"fused_f32 / fused_bf16 = {med['fused_f32'] / med['fused_bf16']:.2f}x "
                f"(min: {low['loop_bf16'] / low['fused_bf16']:.2f}x, {low['fused_f32'] / low['fused_bf16']:.2f}x)"
            )
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
