"""forgeml's own CPU thread pool (csrc/cpu/thread_pool.cpp): every tid runs once, exceptions reach
the caller, nested calls run inline, results do not depend on the thread count, fork children
get a working pool of their own, idle workers sleep, and threadpoolctl sees and limits the pool.

Scenarios that could hang run in a fresh interpreter with a timeout."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import forgeml
from forgeml import _cpu, ops


@pytest.fixture
def threads():
    before = forgeml.get_num_threads()
    yield forgeml.set_num_threads
    forgeml.set_num_threads(before)


def run_script(code, timeout=240, **env):
    r = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, **env),
    )
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-4000:]}"
    return r.stdout


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
def test_every_tid_runs_exactly_once(n):
    runs, nested, _ = _cpu._pool_run(n)
    assert runs == [1] * n and nested == [0] * n


def test_pool_uses_several_os_threads():
    # Each tid sleeps 200 us, so with 4 tids at least one worker joins the caller.
    seen = max(_cpu._pool_run(4)[2] for _ in range(20))
    assert seen >= 2 and _cpu.pool_workers() >= 1


@pytest.mark.parametrize("n", [2, 5])
def test_nested_calls_run_inline_and_complete(n):
    runs, nested, _ = _cpu._pool_run(n, nested=True)
    assert runs == [1] * n and nested == [3] * n


@pytest.mark.parametrize("throw_at", [0, 1, 4])
def test_exception_in_any_tid_reaches_the_caller(throw_at):
    with pytest.raises(ValueError, match=f"tid {throw_at} failed"):
        _cpu._pool_run(5, throw_at=throw_at)
    assert _cpu._pool_run(5)[0] == [1] * 5  # the pool is usable afterwards


def _odd(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("m, n, k", [(257, 129, 785), (1031, 67, 300), (33, 1500, 91), (513, 515, 517)])
def test_gemm_bits_do_not_depend_on_thread_count(threads, m, n, k):
    a, b = _odd((m, k), 1), _odd((k, n), 2)
    threads(1)
    ref = ops.matmul(a, b)
    np.testing.assert_allclose(ref, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-4, atol=1e-3)
    for t in (2, 3, 5):
        threads(t)
        np.testing.assert_array_equal(ops.matmul(a, b), ref)


def test_conv_and_lstm_agree_across_thread_counts(threads):
    x, w = _odd((3, 19, 21, 5), 3), _odd((3, 3, 5, 7), 4)
    seq = _odd((33, 11, 6), 5)  # 96 units: the time loop splits them over the threads
    lstm_w, lstm_u, lstm_b = _odd((6, 4 * 96), 6), _odd((96, 4 * 96), 7) * 0.1, _odd((4 * 96,), 8)
    threads(1)
    conv1 = ops.conv2d(x, w, padding="same")
    lstm1 = ops.lstm(seq, lstm_w, lstm_u, lstm_b)
    for t in (2, 4):
        threads(t)
        np.testing.assert_allclose(ops.conv2d(x, w, padding="same"), conv1, rtol=1e-5, atol=1e-5)
        got = ops.lstm(seq, lstm_w, lstm_u, lstm_b)
        for g, r in zip(got if isinstance(got, tuple) else (got,), lstm1 if isinstance(lstm1, tuple) else (lstm1,)):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)


def test_forest_predictions_do_not_depend_on_thread_count(threads):
    from forgeml.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((1500, 7))
    y = (X[:, 0] + X[:, 3] ** 2 > 0.5).astype(int)
    threads(1)
    p1 = RandomForestClassifier(n_estimators=6, random_state=0).fit(X, y).predict_proba(X)
    threads(3)
    p3 = RandomForestClassifier(n_estimators=6, random_state=0).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(p1, p3)


def test_workers_started_inside_a_denormal_flushing_kernel_do_not_flush():
    """The pool's first workers start inside the fused Dense step, which flushes denormals on its
    threads (FTZ | DAZ): they must not keep that mode (a new thread copies its creator's), or a
    later product's tiny values come out as zeros from those workers' rows only."""
    out = run_script(
        """
        import numpy as np, forgeml
        from forgeml import ops
        forgeml.set_num_threads(4)
        rng = np.random.default_rng(0)
        layout = ops.DenseLayout.build([8, 5, 3], ["relu", "relu"], [0, 45], [40, 60], 63)
        params = rng.standard_normal(63).astype(np.float32)
        x = rng.standard_normal((1024, 8)).astype(np.float32)
        ops.dense_train_steps(layout, x, rng.integers(0, 3, 1024), params, np.zeros_like(params),
                              optimizer="sgd", hyper={}, slots={}, lrs=0.01, t0=0, batch_size=1024)
        a = np.full((2000, 256), 1e-20, np.float32)
        b = np.full((256, 256), 1e-21, np.float32)  # sums of 2.6e-39: subnormal, on every thread
        c = ops.matmul(a, b)
        print(int((c == 0).sum()), c.size)
    """
    )
    zeros, size = map(int, out.split())
    assert zeros == 0, f"{zeros} of {size} subnormal results flushed to zero"


def test_set_num_threads_and_omp_num_threads():
    out = run_script(
        """
        import forgeml
        print(forgeml.get_num_threads())
        forgeml.set_num_threads(5)
        print(forgeml.get_num_threads())
    """,
        OMP_NUM_THREADS="3",
    )
    assert out.split() == ["3", "5"]


def test_concurrent_python_threads_share_the_pool(threads):
    threads(2)
    a, b = _odd((301, 257), 9), _odd((257, 263), 10)
    ref = ops.matmul(a, b)
    errors = []

    def work():
        try:
            for _ in range(15):
                if not np.array_equal(ops.matmul(a, b), ref):
                    errors.append("matmul")
                runs, nested, _ = _cpu._pool_run(3, nested=True)
                if runs != [1] * 3 or nested != [3] * 3:
                    errors.append((runs, nested))
        except Exception as exc:  # reported below, with the others
            errors.append(repr(exc))

    ts = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in ts]
    [t.join(timeout=120) for t in ts]
    assert not any(t.is_alive() for t in ts) and errors == []


def _pool_thread_states():
    states = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().strip() != "forgeml-pool":
                    continue
            with open(f"/proc/self/task/{tid}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except FileNotFoundError:
            continue
    return states


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_idle_workers_sleep_instead_of_spinning(threads):
    threads(2)
    a = _odd((400, 400), 11)
    ops.matmul(a, a)
    states = []
    for _ in range(50):  # a worker the OS has not yet scheduled may still be runnable: look again
        time.sleep(0.05)
        states = _pool_thread_states()
        if states and all(s == "S" for s in states):
            break
    assert states and all(s == "S" for s in states), states


ONE_CPU = """
    import os, time, numpy as np, forgeml
    from forgeml import _cpu, ops
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # workers start here: they inherit it
    rng = np.random.default_rng(1)
    a = rng.standard_normal((301, 517)).astype(np.float32)
    b = rng.standard_normal((517, 203)).astype(np.float32)
    forgeml.set_num_threads(1)
    ref = ops.matmul(a, b)
    ref16 = ops.matmul(a, b, precision="bf16")
    forgeml.set_num_threads(2)
    same = True
    for i in range(200):
        if i % 20 == 0:
            time.sleep(0.01)  # idle: the workers sleep, the next call wakes them
        same = same and np.array_equal(ops.matmul(a, b), ref)
        same = same and np.array_equal(ops.matmul(a, b, precision="bf16"), ref16)
    print("workers", _cpu.pool_workers(), "same", same)
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_two_threads_on_one_cpu():
    """Worker and caller share the CPU (workers yield to the caller instead of spinning there):
    every call completes with the one-thread bits."""
    out = run_script(ONE_CPU, timeout=120)
    assert "same True" in out and "workers 0" not in out, out


AFTER_SLEEPS = """
    import os, time, numpy as np, forgeml
    from forgeml import _cpu, ops
    allowed = os.sched_getaffinity(0)
    rng = np.random.default_rng(2)
    a = rng.standard_normal((257, 785)).astype(np.float32)
    b = rng.standard_normal((785, 129)).astype(np.float32)
    forgeml.set_num_threads(1)
    ref, ref16 = ops.matmul(a, b), ops.matmul(a, b, precision="bf16")
    forgeml.set_num_threads(2)
    same = True
    for i in range(60):
        time.sleep(0.003)  # past the 50 us spin: the workers sleep, each call wakes them
        same = same and np.array_equal(ops.matmul(a, b), ref)
        same = same and np.array_equal(ops.matmul(a, b, precision="bf16"), ref16)
    time.sleep(0.01)
    masks = set()
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/comm") as f:
            if f.read().strip() == "forgeml-pool":
                masks.add(frozenset(os.sched_getaffinity(int(tid))))
    print("workers", _cpu.pool_workers(), "same", same, "masks", masks == {frozenset(allowed)})
"""


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or not os.path.isdir("/proc/self/task"),
    reason="needs sched_setaffinity and /proc",
)
def test_woken_workers_keep_their_affinity():
    """Each call after a sleep narrows the sleeping workers' affinity away from the caller's CPU
    before waking them, and each worker restores it when it runs: afterwards every worker has the
    process's CPUs again, and every call has the one-thread bits."""
    out = run_script(AFTER_SLEEPS, timeout=120)
    assert "same True" in out and "masks True" in out and "workers 0" not in out, out


def _pool_blocked_signal_masks():
    masks = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().strip() != "forgeml-pool":
                    continue
            with open(f"/proc/self/task/{tid}/status") as f:
                masks += [int(line.split()[1], 16) for line in f if line.startswith("SigBlk:")]
        except FileNotFoundError:
            continue
    return masks


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_workers_leave_ctrl_c_to_the_main_thread(threads, python_sigint):
    """A process-directed SIGINT must reach a thread that runs Python's handler, so the workers
    block it (and the other asynchronous signals); then a long kernel stops on Ctrl-C."""
    threads(2)
    a = _odd((400, 400), 11)
    ops.matmul(a, a)
    masks = []
    for _ in range(100):  # a worker names itself and sets its mask when it first runs: look again
        masks = _pool_blocked_signal_masks()
        if masks and all(m & (1 << (signal.SIGINT - 1)) for m in masks):
            break
        time.sleep(0.05)
    assert masks
    for sig in (signal.SIGINT, signal.SIGTERM):
        assert all(m & (1 << (sig - 1)) for m in masks), [hex(m) for m in masks]
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        _cpu._interruptible_wait(30.0)
    timer.join()


FORK = """
    import os, sys, numpy as np, forgeml
    from forgeml import _cpu, ops
    forgeml.set_num_threads(2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 300)).astype(np.float32)
    ref = ops.matmul(a, a)
    assert _cpu.pool_workers() >= 1
    pid = os.fork()
    if pid == 0:
        ok = _cpu.pool_workers() == 0 and forgeml.get_num_threads() == 2  # a fresh, empty pool
        forgeml.set_num_threads(3)
        ok = ok and forgeml.get_num_threads() == 3 and np.array_equal(ops.matmul(a, a), ref)
        ok = ok and _cpu.pool_workers() >= 1 and _cpu._pool_run(3)[0] == [1, 1, 1]
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
    print("parent", np.array_equal(ops.matmul(a, a), ref))
"""


def test_forked_child_builds_its_own_multithreaded_pool():
    out = run_script(FORK, timeout=120)
    assert "child 0" in out and "parent True" in out


def test_threadpoolctl_sees_and_limits_the_pool(threads):
    threadpoolctl = pytest.importorskip("threadpoolctl", minversion="3.5")
    threads(3)
    info = [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "forgeml"]
    assert len(info) == 1 and info[0]["num_threads"] == 3 and info[0]["version"] == forgeml.__version__
    with threadpoolctl.threadpool_limits(1):
        assert forgeml.get_num_threads() == 1
        a = _odd((200, 200), 12)
        np.testing.assert_allclose(ops.matmul(a, a), a.astype(np.float64) @ a, rtol=1e-4, atol=1e-3)
    assert forgeml.get_num_threads() == 3
    with threadpoolctl.threadpool_limits(2, user_api="openmp"):
        assert forgeml.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        assert forgeml.get_num_threads() == 3  # only BLAS libraries
    assert forgeml.get_num_threads() == 3
