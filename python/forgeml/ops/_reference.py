"""NumPy reference implementations behind forgeml.ops: the paths a NumPy array takes where a
kernel has no CPU build, and the oracles the tests compare kernels with. Plain NumPy, no kernels."""

from __future__ import annotations

import numpy as np


def node_histogram(codes, rows, weight, y_class, y, H):
    """tree_node_histogram on NumPy arrays (validated by the caller): (hw (d, 256, H) float64,
    cnt (d, 256) uint32)."""
    d = codes.shape[1]
    hw = np.zeros((d, 256, H))
    cnt = np.zeros((d, 256), dtype=np.uint32)
    wr = weight[rows]
    for f in range(d):
        b = codes[rows, f].astype(np.intp)
        cnt[f] = np.bincount(b, minlength=256)
        if y_class is not None:
            np.add.at(hw[f], (b, y_class[rows]), wr)
        else:
            yr = y[rows]
            hw[f, :, 0] = np.bincount(b, wr, minlength=256)
            hw[f, :, 1] = np.bincount(b, wr * yr, minlength=256)
            hw[f, :, 2] = np.bincount(b, wr * yr * yr, minlength=256)
    return hw, cnt
