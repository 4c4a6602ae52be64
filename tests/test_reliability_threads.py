"""Reliability: thread-count changes racing running kernels, and fork() (issue 14).

Crashes and hangs are caught by running each scenario in a fresh interpreter with a timeout,
so a regression fails the test instead of killing or stalling the test run."""

import os
import subprocess
import sys
import textwrap

import pytest

ROOT_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python")


def run_script(code, timeout=240, **env):
    e = dict(os.environ, **env)
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, env=e
    )
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-4000:]}"
    return r.stdout


def test_set_num_threads_while_conv_runs():
    out = run_script("""
        import threading, numpy as np, forgeml
        from forgeml import ops
        rng = np.random.default_rng(0)
        x = rng.standard_normal((3, 20, 21, 16)).astype(np.float32)
        w = rng.standard_normal((3, 3, 16, 24)).astype(np.float32)
        forgeml.set_num_threads(1)
        y0 = ops.conv2d(x, w, padding="same", activation="relu")
        g0 = ops.conv2d_grad(x, w, y0, padding="same")
        stop = threading.Event()
        def toggle():
            n = 0
            while not stop.is_set():
                forgeml.set_num_threads(1 + n % 16)
                n += 1
        errors = []
        def work(k):
            try:
                for _ in range(25):
                    y = ops.conv2d(x, w, padding="same", activation="relu")
                    g = ops.conv2d_grad(x, w, y0, padding="same")
                    if not np.allclose(y, y0, rtol=1e-5, atol=1e-4):
                        errors.append("y")
                    if not all(np.allclose(a, b, rtol=1e-4, atol=1e-3) for a, b in zip(g, g0)):
                        errors.append("grad")
            except Exception as exc:
                errors.append(repr(exc))
        t = threading.Thread(target=toggle)
        t.start()
        workers = [threading.Thread(target=work, args=(k,)) for k in range(3)]
        [w_.start() for w_ in workers]
        [w_.join() for w_ in workers]
        stop.set(); t.join()
        print("errors", len(errors), errors[:3])
    """)
    assert "errors 0" in out


FORK_CHILD = """
    import os, signal, sys, numpy as np, forgeml
    from forgeml import ops
    forgeml.set_num_threads(2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 300)).astype(np.float32)
    x = rng.standard_normal((2, 16, 16, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    ref_mm, ref_conv = ops.matmul(a, a), ops.conv2d(x, w)  # the parent's pool is now running

    def child_work():
        from forgeml.ensemble import RandomForestClassifier
        forgeml.set_num_threads(3)  # a child has a pool of its own (test_thread_pool.py)
        assert forgeml.get_num_threads() == 3
        assert np.allclose(ops.matmul(a, a), ref_mm, rtol=1e-4, atol=1e-3)
        assert np.allclose(ops.conv2d(x, w), ref_conv, rtol=1e-4, atol=1e-3)
        X = rng.standard_normal((300, 4))
        f = RandomForestClassifier(n_estimators=4, random_state=0).fit(X, X[:, 0] > 0)
        assert f.score(X, X[:, 0] > 0) > 0.9
"""


def test_ops_after_os_fork():
    run_script(
        FORK_CHILD
        + """
    pid = os.fork()
    if pid == 0:
        try:
            child_work()
            os._exit(0)
        except BaseException as exc:
            print("child failed:", repr(exc), flush=True)
            os._exit(3)
    import time
    for _ in range(1200):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        sys.exit("child hung")
    assert os.waitstatus_to_exitcode(status) == 0, status
    assert forgeml.get_num_threads() == 2  # the parent keeps its pool
    assert np.allclose(ops.matmul(a, a), ref_mm, rtol=1e-4, atol=1e-3)
    print("ok")
    """
    )


def test_multiprocessing_pool_with_fork():
    out = run_script(
        FORK_CHILD
        + """
    import multiprocessing as mp
    def task(i):
        child_work()
        return i
    with mp.get_context("fork").Pool(2) as pool:
        r = pool.map_async(task, range(4))
        print(sorted(r.get(timeout=200)))
    """
    )
    assert "[0, 1, 2, 3]" in out


@pytest.mark.parametrize("backend", ["loky", "multiprocessing"])
def test_cross_val_score_with_joblib_backends(backend):
    out = run_script(f"""
        import numpy as np, forgeml, joblib
        from forgeml import ops
        from sklearn.model_selection import cross_val_score
        from forgeml.ensemble import RandomForestClassifier
        from forgeml.svm import SVC
        forgeml.set_num_threads(2)
        rng = np.random.default_rng(0)
        X = rng.standard_normal((240, 5))
        y = (X[:, 0] - X[:, 2] > 0).astype(int)
        ops.matmul(X.astype(np.float32), X.T.astype(np.float32))  # start the pool before the workers fork
        with joblib.parallel_backend("{backend}", n_jobs=2):
            s1 = cross_val_score(RandomForestClassifier(n_estimators=10, random_state=0), X, y, cv=3, n_jobs=2)
            s2 = cross_val_score(SVC(), X, y, cv=3, n_jobs=2)
        print("scores", s1.min() > 0.8, s2.min() > 0.8)
    """)
    assert "scores True True" in out
