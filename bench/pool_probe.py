"""Thread-pool probe: wake-up cost after idle gaps, back-to-back small kernels, a GEMM right after
an OpenBLAS call, and CPU burnt while idle; forgeml and NumPy interleaved in one process.

    PYTHONPATH=python python bench/pool_probe.py             # one build: prints JSON
    python bench/pool_probe.py --against /work/main/python   # this tree vs another build,
                                                             # alternating processes A B A B ...
Numbers are medians in milliseconds per call (ratios: NumPy time / forgeml time)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def probe(samples: int) -> dict:
    import numpy as np

    import forgeml
    from forgeml import ops

    forgeml.set_num_threads(2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256), dtype=np.float32)
    out, out_np = np.empty_like(a), np.empty_like(a)
    res = {}
    for gap in (0.01, 0.06, 0.1):
        f, n = [], []
        for _ in range(samples):  # interleaved: forgeml, numpy, forgeml, ...
            time.sleep(gap)
            t0 = time.perf_counter()
            ops.matmul(a, a, out=out)
            f.append(time.perf_counter() - t0)
            time.sleep(gap)
            t0 = time.perf_counter()
            np.matmul(a, a, out=out_np)
            n.append(time.perf_counter() - t0)
        res[f"256^3 after {int(gap * 1000)} ms idle"] = (statistics.median(f) * 1e3, statistics.median(n) * 1e3)

    # back to back: a small dense layer (forward + both backward products) and a small LSTM
    x = rng.standard_normal((256, 784), dtype=np.float32)
    w = rng.standard_normal((784, 128), dtype=np.float32)
    dy = rng.standard_normal((256, 128), dtype=np.float32)

    def dense_step():
        ops.matmul(x, w)
        ops.matmul(x, dy, trans_a=True)
        ops.matmul(dy, w, trans_b=True)

    def dense_np():
        x @ w
        x.T @ dy
        dy @ w.T

    seq = rng.standard_normal((32, 20, 32), dtype=np.float32)
    k, u, b = (rng.standard_normal(s, dtype=np.float32) * 0.1 for s in ((32, 256), (64, 256), (256,)))
    for name, fn, peer in (
        ("dense 256x784x128 fwd+bwd, back to back", dense_step, dense_np),
        ("lstm N32 T20 H64 forward, back to back", lambda: ops.lstm(seq, k, u, b), None),
    ):
        f, n = [], []
        for _ in range(samples):
            t0 = time.perf_counter()
            for _ in range(20):
                fn()
            f.append((time.perf_counter() - t0) / 20)
            if peer:
                t0 = time.perf_counter()
                for _ in range(20):
                    peer()
                n.append((time.perf_counter() - t0) / 20)
        res[name] = (statistics.median(f) * 1e3, statistics.median(n) * 1e3 if n else None)

    big = rng.standard_normal((1024, 1024), dtype=np.float32)
    bo, so = np.empty_like(big), np.empty_like(big)
    f, n = [], []
    for _ in range(samples):
        time.sleep(0.05)
        np.matmul(big, big, out=so)
        t0 = time.perf_counter()
        ops.matmul(big, big, out=bo)
        f.append(time.perf_counter() - t0)
        time.sleep(0.05)
        np.matmul(big, big, out=so)
        t0 = time.perf_counter()
        np.matmul(big, big, out=bo)
        n.append(time.perf_counter() - t0)
    res["1024^3 right after a NumPy matmul"] = (statistics.median(f) * 1e3, statistics.median(n) * 1e3)

    ops.matmul(a, a, out=out)
    c0 = time.process_time()
    time.sleep(1.0)
    res["CPU ms burnt in 1 s idle after a call"] = ((time.process_time() - c0) * 1e3, None)
    return res


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=15)
    p.add_argument("--against", help="PYTHONPATH of the baseline build (e.g. /work/main/python)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    if not args.against:
        print(json.dumps(probe(args.samples)))
        return
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")
    runs = {"this": [], "base": []}
    for _ in range(args.rounds):  # alternate the builds so load changes hit both
        for tag, path in (("this", here), ("base", args.against)):
            r = subprocess.run(
                [sys.executable, __file__, "--samples", str(args.samples)],
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": path},
                check=True,
            )
            runs[tag].append(json.loads(r.stdout.strip().splitlines()[-1]))
    print(f"{'case':44s} {'this ms':>9s} {'base ms':>9s} {'base/this':>9s}  {'numpy/this':>10s} {'numpy/base':>10s}")
    for case in runs["this"][0]:
        med = {t: statistics.median(r[case][0] for r in runs[t]) for t in runs}
        npy = {t: [r[case][1] for r in runs[t] if r[case][1]] for t in runs}
        rat = {
            t: (f"{statistics.median(npy[t]) / med[t]:10.2f}" if npy[t] and med[t] > 0 else f"{'-':>10s}") for t in runs
        }
        speed = f"{med['base'] / med['this']:9.2f}" if med["this"] > 0 else f"{'-':>9s}"
        print(f"{case:44s} {med['this']:9.3f} {med['base']:9.3f} {speed}  {rat['this']} {rat['base']}")


if __name__ == "__main__":
    main()
