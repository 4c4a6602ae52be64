"""Side-by-side, interleaved predict timings of the bench's digits CNN (python/forgeml/bench/quantize.py):
float32 vs int8 (conv + max pool fused) vs int8 with the fusion switched off, batch 256, one
process, median of the repeats, as ratios.

    PYTHONPATH=python python bench/quantize_cnn_interleaved.py [--repeats 15] [--calls 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--calls", type=int, default=200)
    args = ap.parse_args()
    from forgeml import keras
    from forgeml.bench.quantize import cases

    name, fp32, int8, xte, yte, batch = [c for c in cases(keras) if "CNN" in c[0]][0]
    unfused = keras.models.clone_model(fp32)
    unfused(xte[:1])
    unfused.set_weights(fp32.get_weights())
    unfused.quantize("int8")
    unfused.__dict__["_int8_fusion"] = ()
    models = {"fp32": fp32, "int8": int8, "int8 unfused": unfused}
    np.testing.assert_array_equal(int8.predict_on_batch(batch), unfused.predict_on_batch(batch))
    times = {k: [] for k in models}
    for _ in range(args.repeats):
        for k, m in models.items():
            m.predict_on_batch(batch)
            t = time.perf_counter()
            for _ in range(args.calls):
                m.predict_on_batch(batch)
            times[k].append((time.perf_counter() - t) / args.calls * 1e6)
    med = {k: float(np.median(v)) for k, v in times.items()}
    for k, m in models.items():
        acc = float((m.predict(xte, verbose=0).argmax(1) == yte).mean())
        print(f"{name} {k:>13}: median {med[k]:7.1f} us/predict (min {min(times[k]):7.1f}), accuracy {acc:.4f}")
    print(
        f"ratio fp32 / int8 = {med['fp32'] / med['int8']:.2f}x, fp32 / int8 unfused = "
        f"{med['fp32'] / med['int8 unfused']:.2f}x"
    )


if __name__ == "__main__":
    main()
