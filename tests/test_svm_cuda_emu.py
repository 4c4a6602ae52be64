"""The CUDA kernel SVC (csrc/cuda/svm.cu) under the SIMT emulator: each kernel against float64
NumPy (kernel blocks and rows for every kernel, the one-block local SMO against the KKT
conditions and a reference solve, the gradient update), then the whole working-set solver and the
CuPy estimator path (with NumPy and the emulated solver standing in for CuPy and the GPU) against
forgeml's CPU SVC and scikit-learn's. Sizes are odd and span several SGEMM tiles and working sets."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, make_classification
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC as SkSVC

from forgeml.ops import svm as ops
from forgeml.svm import SVC
from forgeml.svm import _svc_cuda

_emu = pytest.importorskip("forgeml._emu", reason="forgeml was built without FORGEML_TESTING=ON")

KERNELS = {"linear": 0, "poly": 1, "rbf": 2, "sigmoid": 3, "precomputed": 4}


@pytest.fixture(params=["forward", "shuffled", "reversed"])
def order(request):
    _emu.set_thread_order(request.param, seed=7)
    yield request.param
    _emu.set_thread_order("forward")


def _kernel64(A, B, kernel, gamma, coef0, degree):
    """float64 reference kernel and the float32 error scale of its dot products."""
    A, B = A.astype(np.float64), B.astype(np.float64)
    dot = A @ B.T
    scale = np.abs(A) @ np.abs(B).T  # |a|.|b|: bounds the float32 dot product's error
    if kernel == "linear":
        return dot, scale
    if kernel == "poly":
        base = gamma * dot + coef0
        return base ** degree, degree * gamma * np.abs(base) ** max(degree - 1, 0) * scale + np.abs(base) ** degree
    if kernel == "rbf":
        na, nb = (A * A).sum(1), (B * B).sum(1)
        ref = np.exp(-gamma * np.maximum(0, na[:, None] + nb[None, :] - 2 * dot))
        return ref, gamma * ref * (na[:, None] + nb[None, :]) + ref
    return np.tanh(gamma * dot + coef0), gamma * scale + 1.0


def _check_kernel(out, ref, scale):
    assert out.shape == ref.shape and out.dtype == np.float32
    tol = 2e-5 * scale + 1e-6
    bad = np.abs(out - ref) > tol
    assert not bad.any(), f"{bad.sum()} of {bad.size} off, worst {np.max(np.abs(out - ref) - tol)}"
    assert np.linalg.norm(out - ref) <= 1e-5 * np.linalg.norm(ref) + 1e-6


PARAMS = [("linear", 1.0, 0.0, 3), ("poly", 0.3, 0.7, 3), ("rbf", 0.11, 0.0, 3), ("sigmoid", 0.05, -0.3, 3),
          ("poly", 0.2, 1.0, 0), ("poly", 0.25, 0.0, 2)]


@pytest.mark.parametrize("kernel,gamma,coef0,degree", PARAMS)
def test_kernel_block(order, kernel, gamma, coef0, degree):
    rng = np.random.default_rng(KERNELS[kernel] + degree)
    A = rng.standard_normal((67, 13)).astype(np.float32)  # m spans two 64-tiles with the rows
    B = rng.standard_normal((133, 13)).astype(np.float32)
    out = _emu.svm_kernel_block(A, B, KERNELS[kernel], gamma, coef0, degree)
    _check_kernel(out, *_kernel64(A, B, kernel, gamma, coef0, degree))


def test_kernel_block_agrees_with_cpu_kernel():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((45, 9)).astype(np.float32)
    B = rng.standard_normal((71, 9)).astype(np.float32)
    for kernel, gamma, coef0, degree in PARAMS:
        cpu = ops.svm_kernel(A, B, kernel, gamma=gamma, coef0=coef0, degree=degree)
        gpu = _emu.svm_kernel_block(A, B, KERNELS[kernel], gamma, coef0, degree)
        np.testing.assert_allclose(gpu, cpu, rtol=2e-5, atol=2e-5 * max(1.0, np.abs(cpu).max()))


def test_kernel_block_empty_and_d0():
    A = np.ones((0, 5), np.float32)
    assert _emu.svm_kernel_block(A, np.ones((7, 5), np.float32), 2, 0.5, 0.0, 3).shape == (0, 7)
    out = _emu.svm_kernel_block(np.ones((3, 0), np.float32), np.ones((4, 0), np.float32), 1, 0.5, 2.0, 2)
    np.testing.assert_array_equal(out, np.full((3, 4), 4.0, np.float32))  # (0.5 * 0 + 2)^2
    with pytest.raises(ValueError, match="precomputed"):
        _emu.svm_kernel_block(np.ones((3, 2), np.float32), np.ones((4, 2), np.float32), 4, 1.0, 0.0, 3)
    with pytest.raises(ValueError, match="type"):
        _emu.svm_kernel_block(np.ones((3, 2), np.float32), np.ones((4, 2), np.float32), 7, 1.0, 0.0, 3)


@pytest.mark.parametrize("kernel,gamma,coef0,degree", PARAMS[:4] + [("precomputed", 0, 0, 0)])
def test_kernel_rows(order, kernel, gamma, coef0, degree):
    """The working set's rows K[ws, :] (gathered rows, SGEMM, epilogue with gathered norms)."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((141, 11)).astype(np.float32)
    rows = rng.choice(141, size=37, replace=False).astype(np.int32)  # unsorted, odd count
    if kernel == "precomputed":
        G = _kernel64(X, X, "rbf", 0.1, 0, 3)[0].astype(np.float32)
        np.testing.assert_array_equal(_emu.svm_kernel_rows(G, rows, 4, 0.0, 0.0, 3), G[rows])
        return
    out = _emu.svm_kernel_rows(X, rows, KERNELS[kernel], gamma, coef0, degree)
    ref, scale = _kernel64(X[rows], X, kernel, gamma, coef0, degree)
    _check_kernel(out, ref, scale)


# ---------------------------------------------------------------- the local solver

def _subproblem(rng, n=151, q=48, start="zero"):
    """A binary problem, its rbf Gram matrix (float32), a working set and a feasible start."""
    X = rng.standard_normal((n, 5)).astype(np.float32)
    y = np.where(X[:, 0] + 0.7 * rng.standard_normal(n) > 0, 1.0, -1.0)
    K = _kernel64(X, X, "rbf", 0.2, 0, 3)[0].astype(np.float32)
    C = rng.uniform(0.5, 2.0, n)  # per-sample bounds, as class and sample weights give
    alpha = np.zeros(n)
    if start == "random":  # some at each bound, some free
        alpha = np.where(rng.random(n) < 0.3, C, rng.uniform(0, 1, n) * C * (rng.random(n) < 0.5))
    Q = y[:, None] * y[None, :] * K.astype(np.float64)
    G = Q @ alpha - 1.0
    ws = rng.choice(n, size=q, replace=False).astype(np.int32)
    return X, y, K, C, alpha, G, Q, ws


def _sub_violation(ws, y, alpha, G, C):
    """m(a) - M(a) of the sub-problem on ws (alphas outside fixed)."""
    a, yy, g, c = alpha[ws], y[ws], G[ws], C[ws]
    up = np.where(yy > 0, a < c, a > 0)
    low = np.where(yy > 0, a > 0, a < c)
    return np.max(-yy[up] * g[up]) + np.max(yy[low] * g[low])


def _local_until(ws, K, y, C, alpha, G, tol, threads, rounds=60):
    """Local solves on a fixed working set, each followed by the emulated gradient update, until
    the sub-problem is optimal to tol (each solve stops at 0.1 of its first violation)."""
    kww = np.ascontiguousarray(K[np.ix_(ws, ws)])
    krows = np.ascontiguousarray(K[ws])
    steps = 0
    for _ in range(rounds):
        alpha, delta, out = _emu.svm_local_solve(ws, kww, y.astype(np.float32), C, alpha, G, tol, 100000, threads)
        steps += int(out[-2])
        G = _emu.svm_gradient_update(krows, delta, y.astype(np.float32), G)
        if out[-1] < tol:
            return alpha, G, steps
    raise AssertionError("local solves did not converge")


@pytest.mark.parametrize("start,q,threads", [("zero", 48, 32), ("random", 48, 64), ("random", 100, 32),
                                             ("zero", 77, 96)])
def test_local_solver_kkt(order, start, q, threads):
    """From a feasible start (alphas outside the set fixed): the sub-problem's KKT conditions hold
    against a float64 gradient, the box holds, y_B . a_B is kept, nothing outside changes."""
    rng = np.random.default_rng(q + threads)
    X, y, K, C, alpha0, G0, Q, ws = _subproblem(rng, q=q, start=start)
    tol = 1e-4
    alpha, G, steps = _local_until(ws, K, y, C, alpha0, G0, tol, threads)
    assert steps > 0
    out = np.setdiff1d(np.arange(len(y)), ws)
    np.testing.assert_array_equal(alpha[out], alpha0[out])
    assert np.all(alpha >= 0) and np.all(alpha <= C)
    assert abs(y[ws] @ alpha[ws] - y[ws] @ alpha0[ws]) < 1e-9 * (1 + np.abs(alpha0).sum())
    G64 = Q @ alpha - 1.0
    np.testing.assert_allclose(G, G64, rtol=0, atol=1e-9 * (1 + np.abs(Q).sum(1).max() * C.max()))
    assert _sub_violation(ws, y, alpha, G64, C) < tol * 1.01


def test_local_solver_objective_matches_reference():
    """With every alpha outside the set at 0, the sub-problem is the SVM on the set's samples
    alone: its objective matches scikit-learn's (libsvm) solve of the same float32 Gram matrix."""
    rng = np.random.default_rng(11)
    X, y, K, C, alpha0, G0, Q, ws = _subproblem(rng, q=64)
    C[:] = 1.3  # libsvm takes one C (class weights aside)
    alpha, G, _ = _local_until(ws, K, y, C, alpha0, G0, 1e-6, 64)
    Qb = Q[np.ix_(ws, ws)]
    obj = 0.5 * alpha[ws] @ Qb @ alpha[ws] - alpha[ws].sum()
    sk = SkSVC(kernel="precomputed", C=1.3, tol=1e-8).fit(K[np.ix_(ws, ws)].astype(np.float64), y[ws])
    a_ref = np.zeros(len(ws))
    a_ref[sk.support_] = np.abs(sk.dual_coef_[0])
    obj_ref = 0.5 * a_ref @ Qb @ a_ref - a_ref.sum()
    assert obj == pytest.approx(obj_ref, rel=1e-6, abs=1e-6)
    np.testing.assert_allclose(alpha[ws], a_ref, atol=1e-3)


def test_local_solver_step_cap_and_outputs():
    rng = np.random.default_rng(2)
    X, y, K, C, alpha0, G0, Q, ws = _subproblem(rng, q=40)
    kww = np.ascontiguousarray(K[np.ix_(ws, ws)])
    alpha, delta, out = _emu.svm_local_solve(ws, kww, y.astype(np.float32), C, alpha0, G0, 1e-3, 3, 32)
    assert out[-2] == 3
    assert out[-1] == pytest.approx(_sub_violation(ws, y, alpha0, G0, C), rel=1e-12)  # the first violation
    np.testing.assert_array_equal(out[:-2], alpha[ws])
    np.testing.assert_allclose(delta, y[ws] * (alpha[ws] - alpha0[ws]), rtol=0, atol=1e-15)
    assert np.count_nonzero(delta) <= 6  # two alphas per step
    with pytest.raises(ValueError, match="threads"):
        _emu.svm_local_solve(ws, kww, y.astype(np.float32), C, alpha0, G0, 1e-3, 3, 48)


def test_gradient_update_exact(order):
    rng = np.random.default_rng(4)
    q, n = 37, 300  # n spans two blocks
    krows = rng.standard_normal((q, n)).astype(np.float32)
    delta = rng.standard_normal(q) * (rng.random(q) < 0.4)  # mostly zero, as after a local solve
    y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    G = rng.standard_normal(n)
    out = _emu.svm_gradient_update(krows, delta, y.astype(np.float32), G)
    ref = G + y * (krows.T.astype(np.float64) @ delta)
    scale = np.abs(G) + np.abs(krows.T.astype(np.float64)) @ np.abs(delta)
    assert np.all(np.abs(out - ref) <= 1e-14 * scale)


# ---------------------------------------------------------------- the whole solver

def _binary_data(n=241, d=9, seed=0):
    X, y = make_classification(n_samples=n, n_features=d, n_informative=min(5, d), n_redundant=0, flip_y=0.05,
                               random_state=seed)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    return X, np.where(y > 0, 1.0, -1.0)


def _emu_solve(X, y, C, kernel, gamma, coef0, degree, tol, ws, threads=0):
    return _emu.svm_solve(X, y, C, KERNELS[kernel], gamma, coef0, degree, tol, -1, ws, threads, 0)


@pytest.mark.parametrize("kernel,gamma,coef0,degree", [("rbf", 0.1, 0.0, 3), ("linear", 1.0, 0.0, 3),
                                                       ("poly", 0.1, 1.0, 3), ("sigmoid", 0.01, 0.0, 3),
                                                       ("precomputed", 0, 0, 0)])
def test_solve_matches_cpu_and_sklearn(kernel, gamma, coef0, degree):
    X, y = _binary_data()
    n = len(y)
    C = np.full(n, 0.8)
    tol = 1e-4
    Xin = _kernel64(X, X, "rbf", 0.1, 0, 3)[0].astype(np.float32) if kernel == "precomputed" else X
    alpha, rho, obj, iters, outer, ok, _r = _emu_solve(Xin, y, C, kernel, gamma, coef0, degree, tol, ws=64)
    assert ok and outer > 2  # n = 241 > 64: several working sets
    coef = y * alpha
    members = [np.flatnonzero(y > 0), np.flatnonzero(y < 0)]
    perm = np.concatenate(members)  # the CPU solver's pair order: class +1's samples first
    kx = Xin[np.ix_(perm, perm)] if kernel == "precomputed" else Xin[perm]
    cpu_coef_p, cpu_rho, _, _ = ops.svm_fit_ovo(kx, [np.arange(members[0].size), np.arange(members[0].size, n)],
                                                C[perm], kernel, gamma=gamma, coef0=coef0, degree=degree, tol=tol)[0]
    cpu_coef = np.empty(n)
    cpu_coef[perm] = cpu_coef_p
    sk = SkSVC(kernel=kernel, C=0.8, gamma=gamma if gamma else "scale", coef0=coef0, degree=degree, tol=tol)
    sk.fit(Xin.astype(np.float64), y)
    sk_coef = np.zeros(n)
    sk_coef[sk.support_] = sk.dual_coef_[0]
    for ref, ref_rho in [(cpu_coef, cpu_rho), (sk_coef, -sk.intercept_[0])]:
        sv, ref_sv = set(np.flatnonzero(coef)), set(np.flatnonzero(ref))
        assert len(sv & ref_sv) >= 0.95 * len(ref_sv)
        assert len(sv) <= 1.05 * len(ref_sv) + 1
        np.testing.assert_allclose(coef, ref, atol=0.05 * 0.8)
        assert rho == pytest.approx(ref_rho, abs=0.02)
    # decision values and predictions on the training rows
    Kt = (Xin if kernel == "precomputed" else _kernel64(X, X, kernel, gamma, coef0, degree)[0])
    dec, dec_ref = Kt @ coef - rho, Kt @ cpu_coef - cpu_rho
    assert np.abs(dec - dec_ref).max() < 0.02 * (1 + np.abs(dec_ref).max())
    agree = np.mean(np.sign(dec) == np.sign(dec_ref))
    assert agree >= 0.99
    assert np.mean(np.sign(dec) == y) == pytest.approx(sk.score(Xin.astype(np.float64), y), abs=0.01)


def test_solve_thread_orders_agree(order):
    """The solve is deterministic: the same alphas bit for bit in every thread order."""
    X, y = _binary_data(n=151, d=7, seed=3)
    C = np.where(y > 0, 1.5, 0.7)
    got = _emu_solve(X, y, C, "rbf", 0.15, 0.0, 3, 1e-3, ws=32, threads=32)
    _emu.set_thread_order("forward")
    ref = _emu_solve(X, y, C, "rbf", 0.15, 0.0, 3, 1e-3, ws=32, threads=32)
    np.testing.assert_array_equal(got[0], ref[0])
    assert got[1:] == ref[1:]


@pytest.mark.parametrize("ws,threads,n", [(2, 32, 61), (4, 32, 61), (16, 32, 201), (256, 0, 201), (300, 64, 201)])
def test_solve_working_set_sizes(ws, threads, n):
    """From pairs (SMO itself) to a working set holding every sample: the same optimum."""
    X, y = _binary_data(n=n, d=6, seed=1)
    C = np.full(len(y), 2.0)
    alpha, rho, obj, iters, outer, ok, _r = _emu_solve(X, y, C, "rbf", 0.2, 0.0, 3, 1e-4, ws=ws, threads=threads)
    ref = _emu_solve(X, y, C, "rbf", 0.2, 0.0, 3, 1e-4, ws=64)
    assert ok and iters > 0
    assert obj == pytest.approx(ref[2], rel=1e-5)
    np.testing.assert_allclose(alpha, ref[0], atol=2e-2)
    assert rho == pytest.approx(ref[1], abs=5e-3)


def test_solve_max_iter_and_errors():
    X, y = _binary_data(n=121, d=5)
    C = np.ones(len(y))
    alpha, rho, obj, iters, outer, ok, _r = _emu.svm_solve(X, y, C, 2, 0.2, 0.0, 3, 1e-6, 25, 16, 32, 0)
    assert not ok and 25 <= iters < 25 + 16 * 1000
    with pytest.raises(ValueError, match="ws_size"):
        _emu.svm_solve(X, y, C, 2, 0.2, 0.0, 3, 1e-3, -1, 15, 32, 0)
    with pytest.raises(ValueError, match="labels"):
        _emu.svm_solve(X, y * 2, C, 2, 0.2, 0.0, 3, 1e-3, -1, 16, 32, 0)
    with pytest.raises(ValueError, match="bound"):
        _emu.svm_solve(X, y, -C, 2, 0.2, 0.0, 3, 1e-3, -1, 16, 32, 0)
    with pytest.raises(ValueError, match="precomputed"):
        _emu.svm_solve(X, y, C, 4, 0.2, 0.0, 3, 1e-3, -1, 16, 32, 0)


# ---------------------------------------------------------------- SVC.fit on CuPy input, details
# (the real route: SVC.fit -> _svc_cuda.fit -> ops.svm_fit_binary_cuda -> _cuda.svm_solve, or
# _emu.device.svm_solve with the CuPy stand-in: see conftest.cupy)

@pytest.mark.parametrize("kernel", ["rbf", "linear", "precomputed"])
def test_svc_gpu_path_matches_cpu_fit(kernel, cupy):
    """SVC.fit on CuPy input: the same model as the CPU fit, on three classes with class and
    sample weights."""
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(y), 150, replace=False)
    X = StandardScaler().fit_transform(X[idx])[:, :8].astype(np.float32)
    y = np.where(X[:, 1] > 0.8, 2, y[idx])  # three classes
    sw = rng.uniform(0.5, 2.0, len(y))
    sw[:3] = 0  # dropped, as libsvm does
    if kernel == "precomputed":
        X = _kernel64(X, X, "rbf", 0.1, 0, 3)[0].astype(np.float32)
    params = dict(kernel=kernel, C=1.7, class_weight={0: 1.0, 1: 0.6, 2: 1.3}, tol=1e-3)
    cpu = SVC(**params).fit(X, y, sample_weight=sw)
    gpu = SVC(**params).fit(cupy.asarray(X), y, sample_weight=sw)
    np.testing.assert_array_equal(gpu.classes_, cpu.classes_)
    shared = np.intersect1d(gpu.support_, cpu.support_)
    assert shared.size >= 0.95 * cpu.support_.size
    if kernel != "precomputed":
        np.testing.assert_array_equal(gpu.support_vectors_, X[gpu.support_].astype(np.float64))
    np.testing.assert_allclose(gpu.intercept_, cpu.intercept_, atol=0.05)
    np.testing.assert_allclose(gpu.decision_function(X), cpu.decision_function(X), atol=0.05)
    assert np.mean(gpu.predict(X) == cpu.predict(X)) >= 0.98
    for name in ("support_", "support_vectors_", "n_support_", "dual_coef_", "intercept_", "classes_"):
        assert type(getattr(gpu, name)) is np.ndarray  # fitted state stays NumPy


def test_svc_gpu_path_errors(cupy):
    X, y = _binary_data(n=31, d=3)
    Xd = cupy.asarray(X)
    with pytest.raises(ValueError, match="greater than one"):
        SVC().fit(Xd, np.ones(31))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SVC().fit(cupy.asarray(bad), y)
    with pytest.raises(ValueError, match="square"):
        SVC(kernel="precomputed").fit(Xd, y)
    with pytest.raises(ValueError, match="y"):
        SVC().fit(Xd, y[:-1])


def test_cupy_input_without_gpu_raises():
    import forgeml
    if forgeml.cuda.is_available():
        pytest.skip("a GPU is usable here")
    with pytest.raises(RuntimeError, match="cupy.asnumpy"):
        _svc_cuda.fit(SVC(), np.ones((4, 2)), np.array([0, 1, 0, 1]))


# ---------------------------------------------------------------- SVC and the kernel block on CuPy arrays
# (a real GPU where one is usable; the CuPy stand-in and _emu.device everywhere: see conftest.cupy)

@pytest.mark.parametrize("kernel", ["rbf", "linear", "poly", "sigmoid", "precomputed"])
def test_svc_cupy_matches_numpy(kernel, cupy, copies):
    X, y = load_breast_cancer(return_X_y=True)
    if copies is not None:  # the emulator is slow: a slice of the data, three classes still
        X, y = X[::4], y[::4]
    X = StandardScaler().fit_transform(X)
    y = np.where(X[:, 0] > 1, 2, y)
    if kernel == "precomputed":
        X = _kernel64(X, X, "rbf", 0.05, 0, 3)[0]
    # ovo: the pair decision values themselves (ovr's vote counts jump by 1 where a pair's value is near 0)
    params = dict(kernel=kernel, gamma=0.05 if kernel != "rbf" else "scale", decision_function_shape="ovo")
    cpu = SVC(**params).fit(X, y)
    gpu = SVC(**params).fit(cupy.asarray(X), cupy.asarray(y))
    assert isinstance(gpu.dual_coef_, np.ndarray) and isinstance(gpu.support_vectors_, np.ndarray)
    Xd = cupy.asarray(X)
    if copies is not None:
        copies.reset()
    dec = gpu.decision_function(Xd)
    assert isinstance(dec, cupy.ndarray)
    if copies is not None:  # the model's coefficients go up; one block of decision values comes back
        assert copies.d2h == 1 and copies.h2d <= 4
    # the device's decision path against the CPU's, on the same fitted model
    np.testing.assert_allclose(cupy.asnumpy(dec), gpu.decision_function(X), rtol=1e-4, atol=1e-4)
    pred = gpu.predict(Xd)
    assert isinstance(pred, cupy.ndarray)
    if kernel == "sigmoid":  # not a PSD kernel: the two solvers may stop at different optima
        assert np.mean(cupy.asnumpy(pred) == cpu.predict(X)) >= 0.9
        return
    assert np.intersect1d(gpu.support_, cpu.support_).size >= 0.95 * cpu.support_.size
    np.testing.assert_allclose(cupy.asnumpy(dec), cpu.decision_function(X), atol=0.05)
    assert np.mean(cupy.asnumpy(pred) == cpu.predict(X)) >= 0.99


def test_kernel_block_cupy(cupy, copies):
    rng = np.random.default_rng(0)
    m, n = (301, 517) if copies is None else (71, 133)  # two tiles each way, smaller on the emulator
    A = rng.standard_normal((m, 37)).astype(np.float32)
    B = rng.standard_normal((n, 37)).astype(np.float32)
    for kernel, gamma, coef0, degree in PARAMS:
        out = ops.svm_kernel(cupy.asarray(A), cupy.asarray(B), kernel, gamma=gamma, coef0=coef0, degree=degree)
        assert isinstance(out, cupy.ndarray)
        _check_kernel(cupy.asnumpy(out), *_kernel64(A, B, kernel, gamma, coef0, degree))


def test_tsan_clean():
    """The local SMO and the gradient update with one OS thread per CUDA thread: no race (a
    removed barrier after the two-variable step gives TSan reports at svm.cu's shared reads)."""
    from tsan_helper import assert_clean
    assert_clean("svm_local")


# ---------------------------------------------------------------- the general dual: p and alpha0
# (epsilon-SVR over the rows twice, the one-class SVM's start point) against the CPU SMO core

def _regression_problem(n=97, d=6, seed=4, eps=0.1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    t = np.sin(X[:, 0]) + 0.3 * X[:, 1] + 0.05 * rng.standard_normal(n)
    labels = np.r_[np.ones(n), -np.ones(n)]
    return X, labels, np.r_[eps - t, eps + t]


def test_solve_regression_dual_matches_cpu(order):
    X, labels, p = _regression_problem()
    n = X.shape[0]
    C = np.full(2 * n, 1.3)
    a0 = np.zeros(2 * n)
    X2 = np.concatenate([X, X])
    alpha, rho, obj, _it, outer, ok, _r = _emu.svm_solve(X2, labels, C, 2, 0.3, 0.0, 3, 1e-4, -1, 32, 0, 0, p=p, alpha0=a0)
    ref = ops.svm_solve(X, labels, p, C, a0, "rbf", gamma=0.3, tol=1e-4)
    assert ok and ref[5] and outer > 2
    assert obj == pytest.approx(ref[3], rel=1e-4)
    K = _kernel64(X, X, "rbf", 0.3, 0, 3)[0]
    pred = K @ (alpha[:n] - alpha[n:]) - rho
    pred_ref = K @ (ref[0][:n] - ref[0][n:]) - ref[1]
    np.testing.assert_allclose(pred, pred_ref, atol=5e-3)


def test_solve_one_class_start_point_matches_cpu():
    X, _ = _binary_data(n=143, d=5, seed=2)
    n, nu = X.shape[0], 0.2
    C = np.ones(n)
    a0 = np.zeros(n)
    a0[: int(nu * n)] = 1.0
    a0[int(nu * n)] = nu * n - int(nu * n)
    y, p = np.ones(n), np.zeros(n)
    alpha, rho, obj, _it, _outer, ok, _r = _emu.svm_solve(X, y, C, 2, 0.2, 0.0, 3, 1e-4, -1, 16, 0, 0, p=p, alpha0=a0)
    ref = ops.svm_solve(X, y, p, C, a0, "rbf", gamma=0.2, tol=1e-4)
    assert ok
    assert alpha.sum() == pytest.approx(nu * n)  # the equality constraint kept from the start point
    assert obj == pytest.approx(ref[3], rel=1e-4)
    assert rho == pytest.approx(ref[1], abs=5e-3)
    with pytest.raises(ValueError, match="alpha0"):
        _emu.svm_solve(X, y, C, 2, 0.2, 0.0, 3, 1e-4, -1, 16, 0, 0, p=p, alpha0=a0 + 1.5)


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_svr_and_one_class_gpu_paths_match_cpu_fit(kernel, cupy):
    from forgeml.svm import SVR, OneClassSVM

    X, _, _ = _regression_problem(n=120, d=5, seed=7)
    t = np.sin(X[:, 0]) + 0.3 * X[:, 1]
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(t))
    cpu = SVR(kernel=kernel, C=2.0, epsilon=0.05).fit(X, t, sample_weight=sw)
    gpu = SVR(kernel=kernel, C=2.0, epsilon=0.05).fit(cupy.asarray(X), t, sample_weight=sw)
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), atol=5e-3)
    np.testing.assert_allclose(cupy.asnumpy(gpu.predict(cupy.asarray(X))), cpu.predict(X), atol=5e-3)
    assert abs(gpu.support_.size - cpu.support_.size) <= 0.05 * cpu.support_.size + 1
    cpu1 = OneClassSVM(kernel=kernel, nu=0.15).fit(X)
    gpu1 = OneClassSVM(kernel=kernel, nu=0.15).fit(cupy.asarray(X))
    np.testing.assert_allclose(gpu1.decision_function(X), cpu1.decision_function(X), atol=5e-3)
    assert np.mean(cupy.asnumpy(gpu1.predict(cupy.asarray(X))) == cpu1.predict(X)) >= 0.98
    assert type(gpu.dual_coef_) is np.ndarray and type(gpu1.support_vectors_) is np.ndarray


def test_solve_nu_mode_matches_cpu(order):
    """libsvm's nu solver (pairs within one label, rho and r per label) against the CPU core."""
    X, y = _binary_data(n=131, d=6, seed=5)
    n, nu = len(y), 0.3
    C = np.ones(n)
    a0 = np.zeros(n)
    for label in (1.0, -1.0):  # nu n / 2 of start mass per label, the first samples at their bound
        idx = np.flatnonzero(y == label)
        left = nu * n / 2
        for i in idx:
            a0[i] = min(left, 1.0)
            left -= a0[i]
    p = np.zeros(n)
    alpha, rho, obj, _it, _outer, ok, r = _emu.svm_solve(X, y, C, 2, 0.2, 0.0, 3, 1e-4, -1, 16, 0, 0, p=p, alpha0=a0,
                                                         nu=True)
    ref = ops.svm_solve(X, y, p, C, a0, "rbf", gamma=0.2, tol=1e-4, nu=True)
    assert ok and ref[5]
    assert r > 0 and r == pytest.approx(ref[2], rel=1e-2)
    assert rho == pytest.approx(ref[1], abs=5e-3)
    assert obj == pytest.approx(ref[3], rel=1e-4)
    for label in (1.0, -1.0):  # each label's sum is kept
        assert alpha[y == label].sum() == pytest.approx(a0[y == label].sum())


def test_nu_estimators_gpu_paths_match_cpu_fit(cupy):
    from forgeml.svm import NuSVC, NuSVR

    X, y = _binary_data(n=150, d=5, seed=6)
    y3 = np.where(X[:, 2] > 0.9, 2, (y > 0).astype(int))  # three classes: three nu pairs
    cpu = NuSVC(nu=0.3).fit(X, y3)
    gpu = NuSVC(nu=0.3).fit(cupy.asarray(X), y3)
    np.testing.assert_allclose(gpu.decision_function(X), cpu.decision_function(X), atol=1e-2)
    assert np.mean(cupy.asnumpy(gpu.predict(cupy.asarray(X))) == cpu.predict(X)) >= 0.98
    t = X[:, 0] - 0.5 * X[:, 1]
    cpu_r = NuSVR(nu=0.4, C=2.0).fit(X, t)
    gpu_r = NuSVR(nu=0.4, C=2.0).fit(cupy.asarray(X), t)
    np.testing.assert_allclose(gpu_r.predict(X), cpu_r.predict(X), atol=1e-2)


def test_svc_pairs_on_concurrent_streams_equal_one_at_a_time(cupy, monkeypatch):
    """Six class pairs trained four at a time (each on its own stream and host thread) give the
    model that one pair at a time gives, bit for bit."""
    X, _ = _binary_data(n=160, d=5, seed=8)
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.7, 0.0, 0.7])  # four classes
    many = SVC(C=1.3).fit(cupy.asarray(X), y)
    monkeypatch.setattr(_svc_cuda, "_STREAMS", 1)
    one = SVC(C=1.3).fit(cupy.asarray(X), y)
    np.testing.assert_array_equal(many.dual_coef_, one.dual_coef_)
    np.testing.assert_array_equal(many.intercept_, one.intercept_)
    np.testing.assert_array_equal(many.support_, one.support_)
    assert np.mean(many.predict(X) == SVC(C=1.3).fit(X, y).predict(X)) >= 0.98
