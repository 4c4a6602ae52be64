"""CUDA kernel SVC: the kernel-block SGEMM against CuPy (cuBLAS + elementwise passes), and a whole
SVC fit on CuPy input against forgeml's CPU SVC (and cuML / ThunderSVM when importable).

Checked and timed by ``python -m forgeml gpucheck`` through ``gpu_check`` below; the CPU benchmark
(``run``) has nothing to time here (bench/svm.py times the CPU SVC against scikit-learn).
"""
from __future__ import annotations

import time

import numpy as np

BLOCKS = ((1024, 20000, 50), (4096, 50000, 128))  # (working-set rows, samples, features)
FIT = (10000, 50)  # make_classification rows x features (n_informative=20), as bench/svm.py


def run(bench):
    from .. import cuda
    if not cuda.is_available():
        print(f"# svm_cuda: no usable GPU ({cuda.status()}); skipped")
    else:
        print("# svm_cuda: the CUDA SVC is timed by `python -m forgeml gpucheck`")
    return None


def _rbf_cupy(cp, a, b, gamma):
    na, nb = (a * a).sum(1), (b * b).sum(1)
    return cp.exp(-gamma * cp.maximum(0, na[:, None] + nb[None, :] - 2 * (a @ b.T)))


def _timed(fn, repeats=3):
    """Median wall seconds of fn (a whole fit: host work included, so wall time, not events)."""
    import cupy
    out = None
    ts = []
    for _ in range(repeats):
        cupy.cuda.get_current_stream().synchronize()
        t0 = time.perf_counter()
        out = fn()
        cupy.cuda.get_current_stream().synchronize()
        ts.append(time.perf_counter() - t0)
    return out, float(np.median(ts))


def _fit_rows(check, cp):
    """SVC(rbf) fit on CuPy input vs the CPU SVC on the same rows: accuracy and support vectors
    must agree; 'max rel err' is the accuracy difference on held-out rows."""
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    from ..svm import SVC, NuSVC
    n, d = FIT
    X, y = make_classification(n_samples=n + 2000, n_features=d, n_informative=20, random_state=0)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    Xtr, ytr, Xte, yte = X[:n], y[:n], X[n:], y[n:]
    Xg, yg = cp.asarray(Xtr), cp.asarray(ytr)
    SVC().fit(Xg[:500], yg[:500])  # warm-up: CUDA context, CuPy kernels, memory pool
    gpu, t_gpu = _timed(lambda: SVC().fit(Xg, yg), repeats=3)
    cpu, t_cpu = _timed(lambda: SVC().fit(Xtr, ytr), repeats=1)
    acc_g = float(np.mean(cp.asnumpy(gpu.predict(cp.asarray(Xte))) == yte))
    acc_c = float(np.mean(cpu.predict(Xte) == yte))
    shared = np.intersect1d(gpu.support_, cpu.support_).size / max(cpu.support_.size, 1)
    ok = abs(acc_g - acc_c) <= 0.005 and shared >= 0.95
    check.rows.append(("svm", f"SVC rbf fit {n}x{d}", ok, abs(acc_g - acc_c), t_gpu, t_cpu,
                       f"forgeml CPU SVC (acc {acc_c:.4f} vs {acc_g:.4f}, SV shared {shared:.3f})", None))
    nu_gpu, t_nu_gpu = _timed(lambda: NuSVC(nu=0.3).fit(Xg, yg), repeats=1)
    nu_cpu, t_nu_cpu = _timed(lambda: NuSVC(nu=0.3).fit(Xtr, ytr), repeats=1)
    a_g = float(np.mean(cp.asnumpy(nu_gpu.predict(cp.asarray(Xte))) == yte))
    a_c = float(np.mean(nu_cpu.predict(Xte) == yte))
    check.rows.append(("svm", f"NuSVC rbf fit {n}x{d}", abs(a_g - a_c) <= 0.005, abs(a_g - a_c), t_nu_gpu, t_nu_cpu,
                       f"forgeml CPU NuSVC (acc {a_c:.4f} vs {a_g:.4f})", None))
    for name, make in _gpu_peers():
        try:
            peer, t_peer = _timed(lambda: make().fit(Xg, yg), repeats=1)
            acc_p = float(np.mean(cp.asnumpy(cp.asarray(peer.predict(cp.asarray(Xte)))) == yte))
        except Exception as exc:  # a peer that fails is reported, never fatal
            print(f"# svm_cuda: {name} failed: {exc}")
            continue
        check.rows.append(("svm", f"SVC rbf fit {n}x{d}", abs(acc_g - acc_p) <= 0.005, abs(acc_g - acc_p), t_gpu,
                           t_peer, f"{name} (acc {acc_p:.4f})", None))


def _single_rows(check, cp):
    """SVR, NuSVR and OneClassSVM (rbf) fits on CuPy input vs the CPU fits: 'max rel err' is the
    largest gap in held-out predictions (SVR) / decision values (one-class), relative to their range."""
    from sklearn.datasets import make_regression
    from sklearn.preprocessing import StandardScaler

    from ..svm import SVR, NuSVR, OneClassSVM
    n, d = FIT
    X, t = make_regression(n_samples=n + 2000, n_features=d, n_informative=20, noise=10.0, random_state=0)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    t = (t - t.mean()) / t.std()
    Xtr, ttr, Xte = X[:n], t[:n], X[n:]
    Xg = cp.asarray(Xtr)
    SVR().fit(Xg[:500], ttr[:500])  # warm-up
    for name, make, args, out in (("SVR rbf", SVR, (ttr,), "predict"), ("NuSVR rbf", NuSVR, (ttr,), "predict"),
                                  ("OneClassSVM rbf", lambda: OneClassSVM(nu=0.1), (), "decision_function")):
        gpu, t_gpu = _timed(lambda: make().fit(Xg, *args), repeats=1)
        cpu, t_cpu = _timed(lambda: make().fit(Xtr, *args), repeats=1)
        a, b = cp.asnumpy(getattr(gpu, out)(cp.asarray(Xte))), getattr(cpu, out)(Xte)
        err = float(np.abs(a - b).max() / max(np.ptp(b), 1e-12))
        check.rows.append(("svm", f"{name} fit {n}x{d}", err <= 0.01, err, t_gpu, t_cpu,
                           f"forgeml CPU {name.split()[0]} (SV {gpu.support_.size} vs {cpu.support_.size})", None))


def _gpu_peers():
    peers = []
    try:
        from cuml.svm import SVC as CumlSVC
        peers.append(("cuml", lambda: CumlSVC(kernel="rbf", gamma="scale", C=1.0, tol=1e-3)))
    except ImportError:
        pass
    try:
        from thundersvm import SVC as ThunderSVC
        peers.append(("thundersvm", lambda: ThunderSVC(kernel="rbf", gamma=1.0 / FIT[1], C=1.0, tol=1e-3)))
    except ImportError:
        pass
    return peers


def gpu_check(check):
    cp = check.cp
    from ..ops import svm_kernel
    rng = cp.random.RandomState(0)
    for m, n, d in BLOCKS:
        a = rng.standard_normal((m, d), dtype=cp.float32)
        b = rng.standard_normal((n, d), dtype=cp.float32)
        g = 1.0 / d
        check.kernel("svm", f"rbf kernel block {m}x{n}x{d}", lambda: svm_kernel(a, b, "rbf", gamma=g),
                     lambda: _rbf_cupy(cp, a, b, g), peer="cupy (cuBLAS + 3 passes)", rtol=2e-4,
                     flops=2.0 * m * n * d)
        check.kernel("svm", f"poly kernel block {m}x{n}x{d}",
                     lambda: svm_kernel(a, b, "poly", gamma=g, coef0=1.0, degree=3),
                     lambda: (g * (a @ b.T) + 1.0) ** 3, peer="cupy (cuBLAS + 1 pass)", rtol=2e-4,
                     flops=2.0 * m * n * d)
    _fit_rows(check, cp)
    _single_rows(check, cp)
