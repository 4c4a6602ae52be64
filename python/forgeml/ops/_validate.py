"""Checks the ops run on inputs whose bad values would otherwise crash or mislead a kernel:
sparse structure (the C++ checks of forgeml/validate.h, the code the fuzz targets exercise) and
non-finite values where a solver would silently return garbage."""

from __future__ import annotations

import numpy as np

from .. import _backend

__all__ = ["check_csr", "check_finite"]


def check_csr(X, name: str = "X") -> None:
    """ValueError naming `name` unless the SciPy CSR matrix X has a consistent structure: indptr of
    n_rows + 1 non-decreasing entries from 0 to at most the stored entries, column indices in
    range. Kernels (and SciPy's own toarray) index memory with these arrays unchecked."""
    n_rows, n_cols = X.shape
    try:
        _backend.cpu.check_csr(
            np.asarray(X.indptr), np.asarray(X.indices), int(np.asarray(X.data).size), int(n_rows), int(n_cols)
        )
    except ValueError as exc:
        raise ValueError(str(exc).replace("X", name, 1) if name != "X" else str(exc)) from None


def check_finite(x, name: str) -> None:
    """ValueError naming `name` when x (a NumPy or CuPy array) holds NaN or infinity."""
    xp = np
    if _backend.is_cupy(x):
        import cupy as xp
    if x.size and not bool(xp.isfinite(x).all()):
        bad = "NaN" if bool(xp.isnan(x).any()) else "infinity"
        raise ValueError(
            f"{name}: contains {bad}; the SVM solvers need finite values (impute or drop those entries first)"
        )
