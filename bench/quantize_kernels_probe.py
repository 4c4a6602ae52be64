"""The digits CNN's kernels one by one (bench/results/quantize_profile.md): int8 convolution, with
and without the fused 2 x 2 max pool, the float32 convolution and the max pooling, on the bench's
shapes (256 x 8 x 8 x 1 -> 16 filters), output arrays reused, median of 11 x 200 calls.

    OMP_NUM_THREADS=1 PYTHONPATH=python python bench/quantize_kernels_probe.py thread   # CPU time
    PYTHONPATH=python python bench/quantize_kernels_probe.py                           # wall time
"""

import sys
import time

import numpy as np

from forgeml import _backend, ops


def main():
    cpu = _backend.cpu
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8, 8, 1)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, 16)).astype(np.float32)
    q, s = ops.quantize_int8(w.reshape(9, 16), axis=0)
    p = ops.pack_int8(q)
    b = rng.standard_normal(16).astype(np.float32)
    y = np.empty((256, 8, 8, 16), np.float32)
    yp = np.empty((256, 4, 4, 16), np.float32)
    conv = ((3, 3), (1, 1), (1, 1), (1, 1))
    fns = {
        "conv2d_int8_packed": lambda: cpu.conv2d_int8_packed(x, p, s, y, *conv, b, 1),
        "conv2d_forward fp32": lambda: ops.conv2d(x, w, b, padding="same", activation="relu"),
        "pool2d_forward 2x2": lambda: cpu.pool2d_forward(y, "max", (2, 2), (2, 2), (0, 0, 0, 0)),
    }
    try:  # builds before the fused pooling have no pool argument
        cpu.conv2d_int8_packed(x, p, s, yp, *conv, b, 1, (8, 8, 2, 2, 2, 2, 0, 0))
        fns["conv2d_int8_packed + pool"] = lambda: cpu.conv2d_int8_packed(
            x, p, s, yp, *conv, b, 1, (8, 8, 2, 2, 2, 2, 0, 0)
        )
    except TypeError:
        pass
    clock = time.thread_time if sys.argv[1:] == ["thread"] else time.perf_counter
    res = {k: [] for k in fns}
    for _ in range(11):
        for k, f in fns.items():
            f()
            t = clock()
            for _ in range(200):
                f()
            res[k].append((clock() - t) / 200 * 1e6)
    for k, v in res.items():
        print(f"{k:28s} median {np.median(v):7.1f} us  min {np.min(v):7.1f} us")


if __name__ == "__main__":
    main()
