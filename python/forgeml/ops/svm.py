"""SVM kernels: one-vs-one SMO training, kernel matrices, linear SVM solvers (CPU).

These are the building blocks of ``forgeml.svm``; most users want the estimators there.
"""
from __future__ import annotations

import numpy as np

from .._backend import as_array, backend_of, check_shape, cpu_only
from .._backend import cuda_stream as _stream_ptr
from ._validate import check_csr, check_finite

__all__ = ["svm_fit_ovo", "svm_solve", "svm_kernel", "svm_linear_fit", "svm_linear_cs_fit", "svm_linear_svr_fit", "svm_fit_binary_cuda", "svm_solve_cuda", "SVM_KERNELS"]

SVM_KERNELS = ("linear", "poly", "rbf", "sigmoid", "precomputed")
_LINEAR_SOLVERS = {"dual_hinge": 0, "dual_squared_hinge": 1, "primal_squared_hinge": 2, "l1_primal_squared_hinge": 3}


def _cpu_only(*arrays, names):
    return cpu_only(*arrays, names=names, what="forgeml's SVM solvers")


def _check_kernel(kernel, gamma, degree, coef0=0.0):
    if kernel not in SVM_KERNELS:
        raise ValueError(f"kernel: expected one of {SVM_KERNELS}, got {kernel!r}")
    if not np.isfinite(gamma) or gamma < 0:
        raise ValueError(f"gamma: expected a finite number >= 0, got {gamma!r}")
    if not np.isfinite(coef0):
        raise ValueError(f"coef0: expected a finite number, got {coef0!r}")
    if int(degree) != degree or degree < 0:
        raise ValueError(f"degree: expected a non-negative integer, got {degree!r}")


def _gamma_inside(X, kernel, gamma):
    """(X * sqrt(gamma), 1.0) for the kernels that see x only through gamma * x.y or gamma |x - y|^2,
    else (X, gamma). The float32 dot products and squared norms then work on values near 1 whatever
    the data's scale: features of size 1e20 (squares past float32's range) or 1e-20 (squares below
    its normal range) otherwise give inf/NaN or denormal kernel values."""
    root = float(np.sqrt(np.float64(gamma)))
    if kernel not in ("rbf", "poly", "sigmoid") or root == 0 or 2.0 ** -20 <= root <= 2.0 ** 20:
        return X, gamma  # data on a scale float32 squares well: the kernel as it is (same bits as before)
    return (X * root).astype(X.dtype), 1.0


def svm_kernel(X1, X2, kernel="rbf", *, gamma=1.0, coef0=0.0, degree=3):
    """K(X1, X2) as a float32 (m, n) matrix for X1 (m, d), X2 (n, d) (CuPy in, CuPy out).

    linear: x.y; poly: (gamma x.y + coef0)^degree; rbf: exp(-gamma |x - y|^2);
    sigmoid: tanh(gamma x.y + coef0). The dot products are one SGEMM; the kernel function is its
    epilogue."""
    kind, mod = backend_of(X1, X2, names=["X1", "X2"])
    _check_kernel(kernel, gamma, degree, coef0)
    if kernel == "precomputed":
        raise ValueError("kernel: 'precomputed' has no kernel function to evaluate")
    X1 = as_array(X1, "X1", ndim=2)
    X2 = as_array(X2, "X2", ndim=2)
    check_shape(X2, "X2", (None, X1.shape[1]))
    check_finite(X1, "X1")
    check_finite(X2, "X2")
    (X1, _), (X2, gamma) = _gamma_inside(X1, kernel, gamma), _gamma_inside(X2, kernel, gamma)
    if kind == "cuda":
        return _svm_kernel_cuda(mod, X1, X2, kernel, gamma, coef0, degree)
    return mod.svm_kernel(X1, X2, kernel, float(gamma), float(coef0), int(degree))


def svm_fit_ovo(X, members, C, kernel="rbf", *, gamma=1.0, coef0=0.0, degree=3, tol=1e-3, shrinking=True,
                cache_size=200.0, max_iter=-1):
    """Train one binary C-SVC per pair of classes (a < b) with SMO.

    X (n, d) float32 or a SciPy sparse matrix (its kernel rows then cost the number of nonzeros,
    not n * d; for kernel='precomputed', the dense (n, n) Gram matrix); members[c] the sorted
    sample indices of class c; C (n,) the per-sample bound. Returns, per pair in order
    (0,1), (0,2), ..., a tuple (coef, rho, iterations, converged) where coef holds y_i alpha_i for
    the samples members[a] then members[b] (positive for class a) and the pair's decision function
    is K(x, X_pair) @ coef - rho."""
    _check_kernel(kernel, gamma, degree, coef0)
    mod, dense, csr, n, d, gamma = _kernel_X(X, kernel, gamma, (C,), ["C"])
    C = as_array(C, "C", dtype=np.float64, ndim=1)
    check_shape(C, "C", (n,))
    if not np.all(C > 0):  # NaN fails this; +inf is allowed: scikit-learn's C=inf is an unbounded box
        raise ValueError("C: every per-sample bound must be positive (not NaN)")
    members = [as_array(m, f"members[{i}]", dtype=np.int64, ndim=1) for i, m in enumerate(members)]
    if len(members) < 2:
        raise ValueError(f"members: expected at least two classes, got {len(members)}")
    if tol <= 0:
        raise ValueError(f"tol: expected a positive number, got {tol!r}")
    if cache_size <= 0:
        raise ValueError(f"cache_size: expected a positive size in MB, got {cache_size!r}")
    return mod.svm_fit_ovo(dense, csr, int(n), int(d), members, C, kernel, float(gamma), float(coef0), int(degree),
                           float(tol), bool(shrinking), float(cache_size), int(max_iter))


def _kernel_X(X, kernel, gamma, arrays, names):
    """(module, dense or None, (indptr, indices, data) or None, n, d, gamma) for the SMO solvers.
    A sparse X keeps its sparsity (sorted column indices: K_ij and K_ji are then the same float64
    sum); extreme gammas move inside X (see _gamma_inside)."""
    if hasattr(X, "tocsr"):
        if kernel == "precomputed":
            raise TypeError("X: a precomputed kernel must be a dense Gram matrix, got a sparse matrix")
        X = X.tocsr()
        X, gamma = _gamma_inside(X if X.has_sorted_indices else X.sorted_indices(), kernel, gamma)
        return (*_linear_X(X, arrays, names), gamma)
    mod = _cpu_only(X, *arrays, names=["X", *names])
    dense = as_array(X, "X", ndim=2)
    check_finite(dense, "X")
    dense, gamma = _gamma_inside(dense, kernel, gamma)
    return (mod, dense, None, *dense.shape, gamma)


def svm_solve(X, y, p, C, alpha0, kernel="rbf", *, gamma=1.0, coef0=0.0, degree=3, tol=1e-3, shrinking=True,
              cache_size=200.0, max_iter=-1, nu=False):
    """One libsvm dual by SMO: min 0.5 a'Qa + p'a, 0 <= a <= C, y'a fixed by the start point alpha0,
    Q_ij = y_i y_j K(x_i, x_j).

    X (n, d) float32 or a SciPy sparse matrix (for kernel='precomputed', the (n, n) Gram matrix);
    y, p, C, alpha0 of length
    l = n, or l = 2n for the regression forms (variable t is sample t mod n); y is +1/-1; alpha0
    feasible. nu=True runs libsvm's nu solver (pairs within one label; no shrinking). Returns
    (alpha (l,), rho, r, objective, iterations, converged); the decision function is
    sum_t y_t alpha_t K(x_t, x) - rho (r: nu mode's scale, 0 otherwise)."""
    _check_kernel(kernel, gamma, degree)
    mod, dense, csr, n, d, gamma = _kernel_X(X, kernel, gamma, (), [])
    l = len(y)
    vecs = [as_array(v, name, dtype=np.float64, ndim=1) for v, name in ((y, "y"), (p, "p"), (C, "C"), (alpha0, "alpha0"))]
    for v, name in zip(vecs, ("y", "p", "C", "alpha0")):
        check_shape(v, name, (l,))
    if l not in (n, 2 * n):
        raise ValueError(f"y: expected {n} or {2 * n} entries for X of {n} rows, got {l}")
    if tol <= 0:
        raise ValueError(f"tol: expected a positive number, got {tol!r}")
    if cache_size <= 0:
        raise ValueError(f"cache_size: expected a positive size in MB, got {cache_size!r}")
    return mod.svm_solve(dense, csr, int(n), int(d), *vecs, kernel, float(gamma), float(coef0), int(degree), float(tol), bool(shrinking),
                         float(cache_size), int(max_iter), bool(nu))


def _linear_X(X, arrays, names):
    """(module, dense or None, (indptr, indices, data) or None, n, d) for the linear solvers."""
    if hasattr(X, "tocsr"):  # any SciPy sparse matrix
        X = X.tocsr()
        check_csr(X)
        check_finite(np.asarray(X.data), "X")
        mod = _cpu_only(*arrays, names=names)
        csr = (np.ascontiguousarray(X.indptr, dtype=np.int64), np.ascontiguousarray(X.indices, dtype=np.int32),
               np.ascontiguousarray(X.data, dtype=np.float32))
        return mod, None, csr, *X.shape
    mod = _cpu_only(X, *arrays, names=["X", *names])
    dense = as_array(X, "X", ndim=2)
    check_finite(dense, "X")
    return mod, dense, None, *dense.shape


def svm_linear_fit(X, Y, C, solver="primal_squared_hinge", *, tol=1e-4, max_iter=1000, bias=-1.0, seed=0):
    """Linear SVM for P binary problems on the same rows, solved in parallel.

    X (n, d) dense or a SciPy CSR matrix; Y (P, n) labels +1/-1; C (P, n) per-sample costs;
    solver 'primal_squared_hinge' (Newton-CG), 'dual_squared_hinge' or 'dual_hinge' (coordinate
    descent), or 'l1_primal_squared_hinge' (L1 penalty, coordinate descent over features); bias > 0
    appends a constant feature of that value. Returns (W (P, d [+1]) float64, iterations (P,),
    converged (P,))."""
    if solver not in _LINEAR_SOLVERS:
        raise ValueError(f"solver: expected one of {tuple(_LINEAR_SOLVERS)}, got {solver!r}")
    mod, dense, csr, n, d = _linear_X(X, (Y, C), ["Y", "C"])
    Y = as_array(Y, "Y", dtype=np.float64, ndim=2)
    C = as_array(C, "C", dtype=np.float64, ndim=2)
    check_shape(Y, "Y", (None, n))
    check_shape(C, "C", Y.shape)
    if not np.all(np.abs(Y) == 1):
        raise ValueError("Y: labels must be +1 or -1")
    if not np.all((C > 0) & (C < np.inf)):
        raise ValueError("C: every per-sample cost must be positive and finite")
    return mod.svm_linear_fit(dense, csr, int(n), int(d), Y, C, _LINEAR_SOLVERS[solver], float(tol),
                              int(max_iter), float(bias), int(seed))


def svm_linear_cs_fit(X, y, C, n_classes, *, tol=1e-4, max_iter=1000, bias=-1.0, seed=0):
    """Crammer-Singer multi-class linear SVM (one joint problem, the sequential dual method).

    X (n, d) dense or a SciPy CSR matrix; y (n,) integer labels in [0, n_classes); C (n,) per-sample
    costs; bias > 0 appends a constant feature of that value. Returns (W (n_classes, d [+1]) float64,
    iterations, converged)."""
    mod, dense, csr, n, d = _linear_X(X, (y, C), ["y", "C"])
    y = as_array(y, "y", dtype=np.int32, ndim=1)
    C = as_array(C, "C", dtype=np.float64, ndim=1)
    check_shape(y, "y", (n,))
    check_shape(C, "C", (n,))
    if int(n_classes) < 2:
        raise ValueError(f"n_classes: expected at least 2, got {n_classes!r}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"y: labels must lie in [0, {n_classes}), got [{y.min()}, {y.max()}]")
    if not np.all((C > 0) & (C < np.inf)):
        raise ValueError("C: every per-sample cost must be positive and finite")
    return mod.svm_linear_cs_fit(dense, csr, int(n), int(d), y, C, int(n_classes), float(tol), int(max_iter),
                                 float(bias), int(seed))


def svm_linear_svr_fit(X, y, C, *, epsilon=0.0, squared=False, tol=1e-4, max_iter=1000, bias=-1.0, seed=0):
    """L2-regularised linear SVR by dual coordinate descent (liblinear's formulation).

    X (n, d) dense or a SciPy CSR matrix; y (n,) targets; C (n,) per-sample costs; loss
    epsilon-insensitive (squared=False) or its square; bias > 0 appends a constant feature of that
    value. Returns (w (d [+1]) float64, iterations, converged)."""
    mod, dense, csr, n, d = _linear_X(X, (y, C), ["y", "C"])
    y = as_array(y, "y", dtype=np.float64, ndim=1)
    C = as_array(C, "C", dtype=np.float64, ndim=1)
    check_shape(y, "y", (n,))
    check_shape(C, "C", (n,))
    if not np.all(C > 0):
        raise ValueError("C: every per-sample cost must be positive")
    if not epsilon >= 0:
        raise ValueError(f"epsilon: expected a non-negative number, got {epsilon!r}")
    return mod.svm_linear_svr_fit(dense, csr, int(n), int(d), y, C, float(epsilon), bool(squared), float(tol),
                                  int(max_iter), float(bias), int(seed))


# ---------------------------------------------------------------- CUDA (CuPy arrays)

_KERNEL_CODES = {"linear": 0, "poly": 1, "rbf": 2, "sigmoid": 3, "precomputed": 4}
_WS_MAX = 1024


def _svm_kernel_cuda(mod, X1, X2, kernel, gamma, coef0, degree):
    import cupy
    m, n, d = X1.shape[0], X2.shape[0], X1.shape[1]
    out = cupy.empty((m, n), dtype=cupy.float32)
    norms = cupy.empty(m + n, dtype=cupy.float32)  # rbf's squared row norms
    mod.svm_kernel_block(X1.data.ptr, m, X2.data.ptr, n, d, _KERNEL_CODES[kernel], float(gamma), float(coef0),
                         int(degree), norms.data.ptr, norms.data.ptr + 4 * m, out.data.ptr, _stream_ptr())
    return out


def _ws_size(n, cache_size):
    """Working-set size: 1024 (ThunderSVM's largest), fewer when its kernel rows (q x n float32)
    would pass max(cache_size, 512) MB; even, at least 64 (or n)."""
    budget = max(float(cache_size), 512.0) * 2 ** 20
    q = int(min(_WS_MAX, budget // (4 * max(n, 1))))
    return max(64, q - q % 2)


def svm_fit_binary_cuda(X, y, C, kernel="rbf", *, gamma=1.0, coef0=0.0, degree=3, tol=1e-3, max_iter=-1,
                        cache_size=200.0, ws_size=None):
    """One binary C-SVC on the GPU: X (n, d) a CuPy array (for kernel='precomputed', the (n, n)
    Gram matrix); y (n,) labels +1/-1 and C (n,) per-sample bounds as NumPy arrays.

    Working-set decomposition (csrc/cuda/svm.cu): kernel rows of ws_size samples by SGEMM, a
    one-block SMO on them, a gradient update over all samples; the CPU solver's stopping rule.
    Returns (coef, rho, iterations, converged) as one pair of svm_fit_ovo: coef = y * alpha
    (NumPy), decision function K(x, X) @ coef - rho."""
    alpha, rho, _r, _obj, iters, ok = svm_solve_cuda(X, y, None, C, None, kernel, gamma=gamma, coef0=coef0,
                                                     degree=degree, tol=tol, max_iter=max_iter,
                                                     cache_size=cache_size, ws_size=ws_size)
    return np.asarray(y, dtype=np.float64) * alpha, rho, iters, ok


def svm_solve_cuda(X, y, p, C, alpha0, kernel="rbf", *, gamma=1.0, coef0=0.0, degree=3, tol=1e-3, max_iter=-1,
                   cache_size=200.0, ws_size=None, nu=False):
    """svm_solve's dual on the GPU: X (l, d) a CuPy array, one row per variable (the regression
    forms pass their rows twice; precomputed: the (l, l) Gram matrix); y, p, C, alpha0 NumPy (l,),
    p=None meaning -1 and alpha0=None meaning 0 (the C-SVC); nu=True runs libsvm's nu solver.
    Returns (alpha (l,), rho, r, objective, iterations, converged) as svm_solve."""
    kind, mod = backend_of(X, names=["X"])
    if kind != "cuda":
        raise TypeError("X: expected a CuPy array (use svm_fit_ovo / svm_solve for NumPy input)")
    _check_kernel(kernel, gamma, degree, coef0)
    X = as_array(X, "X", ndim=2)
    check_finite(X, "X")
    X, gamma = _gamma_inside(X, kernel, gamma)
    n, d = X.shape
    y = np.ascontiguousarray(y, dtype=np.float64)
    C = np.ascontiguousarray(C, dtype=np.float64)
    check_shape(y, "y", (n,))
    check_shape(C, "C", (n,))
    if p is not None:
        p = np.ascontiguousarray(p, dtype=np.float64)
        check_shape(p, "p", (n,))
        check_finite(p, "p")
    if alpha0 is not None:
        alpha0 = np.ascontiguousarray(alpha0, dtype=np.float64)
        check_shape(alpha0, "alpha0", (n,))
        if not np.all((alpha0 >= 0) & (alpha0 <= C)):
            raise ValueError("alpha0: the start must lie in [0, C]")
    if kernel == "precomputed":
        check_shape(X, "X", (n, n))
    if not np.all(np.abs(y) == 1):
        raise ValueError("y: labels must be +1 or -1")
    if not np.all((C > 0) & (C < np.inf)):
        raise ValueError("C: every per-sample bound must be positive and finite")
    if tol <= 0:
        raise ValueError(f"tol: expected a positive number, got {tol!r}")
    q = _ws_size(n, cache_size) if ws_size is None else int(ws_size)
    if q < 2 or q > _WS_MAX or q % 2:
        raise ValueError(f"ws_size: expected an even number in [2, {_WS_MAX}], got {ws_size!r}")
    import cupy
    code = _KERNEL_CODES[kernel]
    work = cupy.empty(mod.svm_workspace_bytes(code, n, d, min(q, n)), dtype=cupy.uint8)
    alpha, rho, obj, iters, _outer, ok, r = mod.svm_solve(X.data.ptr, n, d, y, C, code, float(gamma),
                                                          float(coef0), int(degree), float(tol), int(max_iter), q,
                                                          work.data.ptr, _stream_ptr(), p=p, alpha0=alpha0,
                                                          nu=bool(nu))
    return alpha, rho, r, obj, iters, ok
