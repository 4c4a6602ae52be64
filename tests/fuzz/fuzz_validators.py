"""atheris target: the CSR and node-array validators, and the ops that rely on them.

Whatever check_csr / check_forest_nodes accept, the kernels must run on without crashing (the
sanitizer executable checks the same code under ASan); whatever they reject must raise
ValueError. Run by .ci/stage_sanitizers.sh; by hand:
    python tests/fuzz/fuzz_validators.py -max_total_time=30
"""

import sys

import atheris

import numpy as np
import scipy.sparse as sp

with atheris.instrument_imports(include=["forgeml"]):  # coverage of forgeml's Python, not NumPy's
    from forgeml import _cpu, ops


def _ints(fdp, n, lo, hi):
    return np.array([fdp.ConsumeIntInRange(lo, hi) for _ in range(n)], dtype=np.int64)


def fuzz_csr(fdp):
    rows, cols = fdp.ConsumeIntInRange(0, 6), fdp.ConsumeIntInRange(0, 6)
    n_ptr = rows + 1 if fdp.ConsumeIntInRange(0, 9) else fdp.ConsumeIntInRange(1, 9)
    indptr = np.sort(_ints(fdp, n_ptr, -2, 12)) if fdp.ConsumeBool() else _ints(fdp, n_ptr, -2, 12)
    nnz = fdp.ConsumeIntInRange(0, 12)
    indices = _ints(fdp, nnz, -1, cols + 1)
    try:
        _cpu.check_csr(indptr, indices, nnz, rows, cols)
    except ValueError:
        return
    X = sp.csr_matrix((np.ones(nnz), indices.astype(np.int32), indptr), shape=(rows, cols))
    if rows >= 2:  # LinearSVC's solver walks the structure
        y = np.where(np.arange(rows) % 2 == 0, 1.0, -1.0)
        ops.svm_linear_fit(X, y[None], np.ones((1, rows)), max_iter=5)


def fuzz_nodes(fdp):
    n_nodes, d = fdp.ConsumeIntInRange(1, 9), fdp.ConsumeIntInRange(1, 4)
    nodes = _ints(fdp, n_nodes * 4, -3, n_nodes + 1).astype(np.int32).reshape(n_nodes, 4)
    if fdp.ConsumeBool():
        nodes[:, 0] |= np.int32(1 << 30) * (nodes[:, 0] >= 0)
    roots = _ints(fdp, fdp.ConsumeIntInRange(1, 3), -1, n_nodes)
    X = np.array([fdp.ConsumeFloat() for _ in range(2 * d)], np.float32).reshape(2, d)
    values = np.ones((n_nodes, 1))
    try:
        out = ops.tree_forest_predict(X, nodes, values, roots)
    except ValueError:
        return
    assert np.all(out == 1.0)
    ops.tree_forest_apply(X, nodes, roots)


def TestOneInput(data: bytes):
    fdp = atheris.FuzzedDataProvider(data)
    (fuzz_csr if fdp.ConsumeBool() else fuzz_nodes)(fdp)


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
