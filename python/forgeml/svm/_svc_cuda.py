"""SVC, SVR and OneClassSVM on CuPy input: the one-vs-one pairs (or the one dual) trained by the CUDA
solver (forgeml.ops.svm_solve_cuda), decision values from kernel blocks computed on the GPU.

The fitted attributes stay NumPy arrays (support_vectors_, dual_coef_, ...), exactly as a fit on
NumPy input lays them out, so the model pickles and predicts on either device. Without a usable
GPU, a CuPy input raises the backend's RuntimeError saying why."""
from __future__ import annotations

import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

from ..ops.device import as_array, cuda_module, is_cupy
from ..ops import svm as ops
from . import _kernels

_BLOCK_ROWS = 4096  # test rows per kernel block in decision values (bounds GPU memory)
_STREAMS = 4  # class pairs trained at once on the GPU


class _HostRows:
    """X on the GPU seen by SVC._store_model: its shape, and rows fetched to the host on indexing."""

    def __init__(self, X):
        self._X = X
        self.shape = tuple(X.shape)

    def __getitem__(self, rows):
        import cupy
        return cupy.asnumpy(self._X[cupy.asarray(rows)]).astype(np.float64)


def _host(a):
    if a is None:
        return None
    if is_cupy(a):
        import cupy
        return cupy.asnumpy(a)
    return np.asarray(a)


def _solve_pair_cuda(Xp, yp, Cp, est):
    return ops.svm_fit_binary_cuda(Xp, yp, Cp, est.kernel, gamma=est._gamma, coef0=est.coef0, degree=est.degree,
                                   tol=est.tol, max_iter=est.max_iter, cache_size=est.cache_size)


def _device_input(est, X, sample_weight):
    """(X on the device, the caller's rows, sample weights on the host) after the checks a NumPy
    fit makes."""
    cuda_module()  # the reason no GPU is usable, as a RuntimeError
    import cupy as xp
    src = X  # the caller's rows (and dtype) for support_vectors_ and gamma
    X = as_array(X, "X", ndim=2, xp=xp)
    if getattr(src, "ndim", 0) != 2:
        src = X
    n, d = X.shape
    if n == 0 or d == 0:
        raise ValueError(f"Found array with {n} sample(s) and {d} feature(s) while a minimum of 1 is required.")
    if not bool(xp.isfinite(X).all()):
        raise ValueError("Input X contains NaN or infinity.")
    if est.kernel == "precomputed" and n != d:
        raise ValueError(f"Precomputed matrix must be a square matrix. Input is a {n}x{d} matrix.")
    est.n_features_in_ = d
    sw = np.ones(n) if sample_weight is None else np.asarray(_host(sample_weight), dtype=np.float64)
    if sw.ndim == 0:
        sw = np.full(n, float(sw))
    if sw.shape != (n,):
        raise ValueError(f"sample_weight.shape == {sw.shape}, expected ({n},)!")
    return X, src, sw


def _host_targets(y, n):
    y = _host(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y: expected shape ({n},), got {y.shape}")
    return y


def fit(est, X, y, sample_weight=None):
    """SVC.fit for X on the GPU (tests run this same path on the SIMT emulator with a CuPy
    stand-in: tests/cupy_standin.py)."""
    X, src, sw = _device_input(est, X, sample_weight)
    import cupy as xp
    y = _host_targets(y, X.shape[0])
    check_classification_targets(y)
    keep, members, Ck = est._classes_and_costs(y, sw)
    est._gamma = float(est._resolve_gamma(src.astype(np.float64)))
    if type(est)._solve_pairs is not _svc_solve_pairs():  # NuSVC: its pairs on the device rows
        g = xp.asarray(keep)
        pairs = est._solve_pairs(X[xp.ix_(g, g)] if est.kernel == "precomputed" else X[g], members, Ck)
    else:
        pairs = _solve_pairs_on_streams(est, X, keep, members, Ck)
    est._store_model(_HostRows(src), keep, members, pairs)
    est._warn_unconverged(pairs)
    est.probA_ = np.empty(0)
    est.probB_ = np.empty(0)
    if est.probability:  # Platt's cross-validation runs on the CPU solver
        Xh = _host(src).astype(np.float64)
        est._fit_platt(Xh[np.ix_(keep, keep)] if est.kernel == "precomputed" else Xh[keep], members, Ck)
    return est


def _solve_pairs_on_streams(est, X, keep, members, Ck):
    """The class pairs of a multi-class SVC, up to _STREAMS at once: each on its own CUDA stream,
    driven by its own host thread (the solver's host loop releases the GIL), so small pairs do not
    leave the GPU idle while the host picks working sets."""
    import cupy as xp

    def solve(ab):
        a, b = ab
        idx = np.concatenate([members[a], members[b]])
        g = xp.asarray(keep[idx])  # gathered on the pair's stream: ordered before its solve
        Xp = X[xp.ix_(g, g)] if est.kernel == "precomputed" else X[g]
        yp = np.r_[np.ones(members[a].size), -np.ones(members[b].size)]
        return _solve_pair_cuda(xp.ascontiguousarray(Xp, dtype=np.float32), yp, Ck[idx], est)

    def on_stream(ab):
        with xp.cuda.Stream(non_blocking=True) as stream:
            out = solve(ab)
            stream.synchronize()
        return out

    pairs = est._pairs(len(est.classes_))
    if len(pairs) == 1:
        return [solve(pairs[0])]
    with ThreadPoolExecutor(min(_STREAMS, len(pairs))) as pool:
        return list(pool.map(on_stream, pairs))


def _svc_solve_pairs():
    from ._svc import SVC
    return SVC._solve_pairs


def fit_single(est, X, y, sample_weight=None):
    """SVR / NuSVR / OneClassSVM fit for X on the GPU: their libsvm dual on the CUDA solver (the
    regression forms' 2n variables over the rows twice)."""
    X, src, sw = _device_input(est, X, sample_weight)
    import cupy as xp
    n = X.shape[0]
    yk = None if y is None else np.asarray(_host_targets(y, n), dtype=np.float64)
    keep = np.flatnonzero(sw > 0)
    if keep.size == 0:
        raise ValueError("Invalid input - all samples have zero or negative weights.")
    labels, p, C, alpha0, nu = est._dual(None if yk is None else yk[keep], sw[keep])
    est._gamma = float(_kernels.resolve_gamma(est, _host(src).astype(np.float64)))
    g = xp.asarray(keep)
    Xk = X[xp.ix_(g, g)] if est.kernel == "precomputed" else X[g]
    if labels.size == 2 * keep.size:  # one row per variable
        Xk = xp.block([[Xk, Xk], [Xk, Xk]]) if est.kernel == "precomputed" else xp.concatenate([Xk, Xk])
    alpha, rho, r, _obj, it, ok = ops.svm_solve_cuda(
        xp.ascontiguousarray(Xk, dtype=np.float32), labels, p, C, alpha0, est.kernel, gamma=est._gamma,
        coef0=est.coef0, degree=est.degree, tol=est.tol, max_iter=est.max_iter, cache_size=est.cache_size, nu=nu)
    est._sparse = False
    return est._store_solution(_HostRows(src), n, keep, alpha, rho, r, it, ok)


def single_decision(est, X):
    """The one decision function as NumPy for X on the GPU (kernel blocks on the device)."""
    dual = np.asarray(est.dual_coef_.toarray() if hasattr(est.dual_coef_, "toarray") else est.dual_coef_)
    return _kernel_times(est, X, dual.T, -est.intercept_)[:, 0]


def pair_decision(est, X):
    """libsvm's decision values (n, n_pairs) as NumPy for X on the GPU: K(X, SV) blocks by the
    CUDA kernel SGEMM, times the per-pair coefficients, on the device."""
    return _kernel_times(est, X, est._W, est._rho)


def _kernel_times(est, X, W, rho):
    """K(X, support vectors) @ W - rho as NumPy (n, W's columns), K in blocks on the device."""
    import cupy
    X = as_array(X, "X", ndim=2, xp=cupy)
    want = est.shape_fit_[0] if est.kernel == "precomputed" else est.n_features_in_
    if X.shape[1] != want:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is expecting {want} features as input.")
    if not bool(cupy.isfinite(X).all()):
        raise ValueError("Input X contains NaN or infinity.")
    W = cupy.asarray(W)
    rho = cupy.asarray(rho)
    if est.kernel == "precomputed":
        return cupy.asnumpy(X[:, cupy.asarray(est.support_)].astype(cupy.float64) @ W - rho)
    sv = cupy.asarray(est._sv32)
    out = np.empty((X.shape[0], W.shape[1]))
    for s in range(0, X.shape[0], _BLOCK_ROWS):
        K = ops.svm_kernel(X[s:s + _BLOCK_ROWS], sv, est.kernel, gamma=est._gamma, coef0=est.coef0,
                           degree=est.degree)
        out[s:s + _BLOCK_ROWS] = cupy.asnumpy(K.astype(cupy.float64) @ W - rho)
    return out


_nested = contextvars.ContextVar("forgeml_svc_cupy_out", default=False)


def cupy_out(method):
    """Wraps an SVC method of X so that CuPy in gives CuPy out (the work itself routes through
    pair_decision); NumPy input is passed through untouched. Calls made inside another wrapped
    method (predict -> decision_function) keep NumPy results, as that method's body expects."""
    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        if not is_cupy(X) or _nested.get():
            return method(self, X, *args, **kwargs)
        token = _nested.set(True)
        try:
            out = method(self, X, *args, **kwargs)
        finally:
            _nested.reset(token)
        import cupy
        return cupy.asarray(out)
    return wrapper
