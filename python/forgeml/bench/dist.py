"""Scale-out benchmark (family ``dist``), ratios on this machine:

- Dask forests on a LocalCluster of 2 worker processes against the local fit of the same forest
  (``peer`` column = local; ratio = local time / dask time, so < 1 is the distribution overhead),
  tree-parallel and data-parallel, with the histogram bytes sent per tree level;
- MPI: the step time of a 784-256-128-10 MLP with 2 ranks against 1 (global batch 256), and the
  all-reduce share of the 2-rank step.
Skips what is not installed (dask.distributed; mpi4py + mpirun)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np


def _forest_cases(bench, n, trees, depth):
    try:
        import dask.array  # noqa: F401  (the forest cases need dask.array too)
        import distributed
    except ImportError:
        print("dist    (dask.distributed not installed: forest cases skipped)", file=bench.out)
        return
    from sklearn.datasets import make_classification
    from .. import dask as fd
    from ..ensemble import RandomForestClassifier

    d = 50
    X, y = make_classification(
        n + 20_000, d, n_informative=20, n_redundant=10, flip_y=0.02, class_sep=0.8, random_state=0
    )
    X = X.astype(np.float32)
    Xt, yt, Xv, yv = X[:n], y[:n], X[n:], y[n:]
    params = dict(n_estimators=trees, random_state=0, max_depth=depth)
    models = {}
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        from ..dask._hist import scatter_rows

        Xd, yd = scatter_rows(client, Xt, 2), scatter_rows(client, yt, 2)

        def local():
            models["local"] = RandomForestClassifier(**params).fit(Xt, yt)

        for mode in ("tree", "data"):

            def dist_fit(mode=mode):
                models[f"dask-{mode}"] = fd.RandomForestClassifier(**params, mode=mode).fit(Xd, yd)

            def metric(name, mode=mode):
                out = {"acc": round(float(models[name].score(Xv, yv)), 4)}
                if name == "dask-data":
                    comm = models[name]._comm
                    levels = comm["bytes_per_level"]
                    out["MB_per_level"] = {k: round(v / 2**20, 1) for k, v in sorted(levels.items())}
                    out["rounds"] = comm["rounds"]
                return out

            bench.compare(
                "dist",
                f"dask forest {mode} {n // 1000}k x {d}, {trees}t d{depth}",
                dist_fit,
                {"local": local},
                impl=f"dask-{mode}",
                metric=metric,
                repeats=1,
            )


def _mpi_case(bench, rows, global_batch):
    mpirun = shutil.which("mpirun")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpirun = None
    if mpirun is None:
        print("dist    (mpi4py or mpirun missing: MPI case skipped)", file=bench.out)
        return
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    home = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for ranks in (1, 2):
            out = os.path.join(tmp, f"{ranks}.json")
            cmd = [sys.executable, "-m", "forgeml.distributed._bench_train", out, str(rows), str(global_batch)]
            if ranks > 1:
                cmd = [mpirun, "-n", str(ranks), "--oversubscribe", *cmd]
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // ranks))
            subprocess.run(cmd, env=env, check=True, timeout=600, capture_output=True)
            with open(out) as f:
                res[ranks] = json.load(f)
    from .harness import Row

    one, two = res[1], res[2]
    row = Row(
        "dist",
        f"mpi MLP step, global batch {global_batch}",
        "mpi-2rank",
        "1 rank",
        two["step_s"],
        one["step_s"],
        one["step_s"] / two["step_s"],
        {
            "allreduce_share": round(two["allreduce_s"] / two["step_s"], 3),
            "allreduce_MB": round(two["allreduce_bytes"] / 2**20, 2),
        },
    )
    bench.rows.append(row)
    bench._print(row, None)


def run(bench) -> None:
    if bench.quick:
        _forest_cases(bench, 50_000, 10, 8)
        _mpi_case(bench, 8192, 256)
        return
    _forest_cases(bench, 1_000_000, 10, 8)
    _mpi_case(bench, 32768, 256)
