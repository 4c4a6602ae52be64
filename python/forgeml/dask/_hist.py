"""Data-parallel forest growth on dask.distributed: rows never leave their partitions.

1. A scan of every partition checks it (feature count, finite values), collects the classes and a
   uniform row sample (each partition sends its share of BIN_SAMPLE rows); the cut points are the
   local fit's quantiles of that merged sample (a sampling quantile sketch).
2. Each partition bins its rows with the global cut points and draws, per tree, bootstrap counts
   Poisson(1) (Poisson(max_samples / n) with max_samples) from a hash of (tree seed, global row
   index): no row moves, and the draw does not depend on how the rows are partitioned.
3. Trees grow breadth-first, all trees together. In each round the client sends every partition
   the splits decided last round (it routes its rows) and a batch of frontier nodes with their
   random feature subsets; the partition returns histograms of its rows for those (node, feature)
   pairs; the client sums them, and the split kernel (ops.tree_best_split) picks each node's split
   from the sums, so every partition applies the same split.

The result is an ordinary Forest. Histogram layout per (node, feature): bins 0..n_bins-2 hold the
value codes, the last one NaN; statistics S per bin as in ops.tree ({count, W, w_0..w_K-1} or
{count, W, sum wy, sum wy^2}), count being rows drawn at least once.
"""

from __future__ import annotations

import math

import distributed

import numpy as np

from .. import ops
from ..tree import _fit
from ..tree._tree import Forest
from ._predict import as_rows

HIST_BUDGET = 32 << 20  # bytes of histograms per partition per round
ON_ROUND = None  # called with the round number after each round (tests use it to stop a worker)
_POISSON_KMAX = 24


# ---------------------------------------------------------------- worker side


def poisson_counts(seed: int, rows: np.ndarray, lam: float) -> np.ndarray:
    """Poisson(lam) draws for global row indices `rows`, from a splitmix64 hash of (seed, row)."""
    z = np.full(len(rows), seed, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps mod 2^64
    z += rows.astype(np.uint64) + np.uint64(1)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    k = np.arange(_POISSON_KMAX)
    pmf = np.exp(-lam + k * math.log(lam) - np.array([math.lgamma(i + 1) for i in k]))
    return np.searchsorted(np.cumsum(pmf), u, side="right").astype(np.int32)


def _scan(X, y, sw, index, d, classify, sample_rate, seed):
    """Checks one partition; returns its size, classes (counts) and a uniform sample for binning."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != d:
        raise ValueError(
            f"X: partition {index} has shape {X.shape}, expected (rows, {d}) as declared by the "
            f"collection; every partition needs the same n_features"
        )
    y = np.asarray(y).reshape(-1)
    if len(y) != len(X):
        raise ValueError(f"y: partition {index} has {len(y)} rows but X's partition has {len(X)}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    if np.isinf(X).any():
        raise ValueError(f"X: partition {index} contains infinity or a value too large for float32")
    if not classify and not np.isfinite(y.astype(np.float64)).all():
        raise ValueError(f"y: partition {index} contains NaN or infinity")
    w = np.ones(len(X)) if sw is None else np.asarray(sw, dtype=np.float64).reshape(-1)
    if len(w) != len(X) or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError(f"sample_weight: partition {index} needs {len(X)} finite non-negative values")
    rng = np.random.default_rng([seed, index])
    take = np.flatnonzero((rng.random(len(X)) < sample_rate) & (w > 0))
    out = {"n": len(X), "sample": X[take], "sample_w": w[take], "w_sum": float(w.sum())}
    if classify:
        out["classes"], out["class_n"] = np.unique(y, return_counts=True)
    return out


def _init(X, y, sw, offset, edges, n_edges, classes, class_w, seeds, lam, bootstrap):
    """The partition's training state: codes, targets, weights, bootstrap counts, node of each row."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.asarray(y).reshape(-1)
    w = np.ones(len(X)) if sw is None else np.asarray(sw, dtype=np.float64).reshape(-1)
    st = {"codes": ops.tree_bin_codes(X, edges, n_edges), "round": 0}
    if classes is not None:
        y_enc = np.searchsorted(classes, y).astype(np.int32)
        if class_w is not None:
            w = w * class_w[y_enc]
        st["y"] = y_enc
    else:
        st["y"] = y.astype(np.float64)
    rows = np.arange(offset, offset + len(X))
    T = len(seeds)
    if bootstrap:
        cnt = np.stack([poisson_counts(int(s), rows, lam) for s in seeds], axis=1)
    else:
        cnt = np.ones((len(X), T), dtype=np.int32)
    st["count"] = cnt
    st["w"] = w
    st["node"] = np.zeros((len(X), T), dtype=np.int32)
    return st


def _route(st, splits):
    """Move the rows of split nodes to their children: splits[t] = (nodes, feat, bin, nan_left, left, right)."""
    codes, node = st["codes"], st["node"]
    for t, (nodes, feat, thr, nan_left, left, right) in splits.items():
        size = int(max(nodes.max(), 0)) + 1
        lut = np.full(size, -1, dtype=np.int64)
        lut[nodes] = np.arange(len(nodes))
        nid = node[:, t]
        slot = np.where(nid < size, lut[np.minimum(nid, size - 1)], -1)
        rows = np.flatnonzero(slot >= 0)
        s = slot[rows]
        c = codes[rows, feat[s]]
        go_left = np.where(c == ops.NAN_BIN, nan_left[s] != 0, c <= thr[s])
        node[rows, t] = np.where(go_left, left[s], right[s])


def _round(st, r, splits, requests, n_bins, n_classes):
    """One round on a partition: route last round's splits, then histogram the requested nodes.

    requests: {t: (nodes (R_t), feats (R_t, kf))}; returns (R, kf, n_bins, S) float64 with the
    requests' nodes in order of t then position."""
    if st["round"] != r:
        raise RuntimeError(
            f"forgeml.dask: a partition's training state is at round {st['round']}, expected {r}; "
            "it was lost and recomputed (a worker died mid-fit). Fit again."
        )
    _route(st, splits)
    st["round"] = r + 1
    codes, node, cnt, w, y = st["codes"], st["node"], st["count"], st["w"], st["y"]
    classify = n_classes > 0
    S = n_classes + 2 if classify else 4
    R = sum(len(v[0]) for v in requests.values())
    kf = next(iter(requests.values()))[1].shape[1] if requests else 0
    out = np.zeros((R, kf, n_bins, S))
    base = 0
    for t, (nodes, feats) in requests.items():
        size = int(nodes.max()) + 1
        lut = np.full(size, -1, dtype=np.int64)
        lut[nodes] = np.arange(len(nodes))
        nid = node[:, t]
        slot = np.where(nid < size, lut[np.minimum(nid, size - 1)], -1)
        rows = np.flatnonzero((slot >= 0) & (cnt[:, t] > 0))
        s = slot[rows]
        wt = w[rows] * cnt[rows, t]
        yr = y[rows]
        m = len(nodes) * n_bins
        for j in range(kf):
            c = codes[rows, feats[s, j]].astype(np.int64)
            c = np.where(c == ops.NAN_BIN, n_bins - 1, c)
            idx = s * n_bins + c
            h = np.empty((m, S))
            h[:, 0] = np.bincount(idx, minlength=m)
            h[:, 1] = np.bincount(idx, wt, minlength=m)
            if classify:
                h[:, 2:] = np.bincount(idx * n_classes + yr, wt, minlength=m * n_classes).reshape(m, n_classes)
            else:
                wy = wt * yr
                h[:, 2] = np.bincount(idx, wy, minlength=m)
                h[:, 3] = np.bincount(idx, wy * yr, minlength=m)
            out[base : base + len(nodes), j] = h.reshape(len(nodes), n_bins, S)
        base += len(nodes)
    return out


# ---------------------------------------------------------------- client side


def _impurity(total, criterion):
    W = total[1]
    if W <= 0:
        return 0.0
    if criterion == "squared_error":
        mean = total[2] / W
        return max(total[3] / W - mean * mean, 0.0)
    p = total[2:] / W
    if criterion == "gini":
        return float(1.0 - np.dot(p, p))
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def _value(total, criterion):
    W = total[1]
    if criterion == "squared_error":
        return np.array([total[2] / W if W > 0 else 0.0])
    return total[2:] / W if W > 0 else np.zeros(len(total) - 2)


class _TreeBuilder:
    """Node arrays of one tree, in breadth-first order, as ops.tree_grow_forest returns them."""

    def __init__(self, k):
        self.k = k
        self.cols = {
            name: []
            for name in (
                "feature",
                "thr_bin",
                "nan_left",
                "left",
                "right",
                "impurity",
                "weighted_n",
                "n_samples",
                "value",
            )
        }
        self.depth = 0

    def new_node(self):
        for name, col in self.cols.items():
            col.append(np.zeros(self.k) if name == "value" else (-1 if name in ("feature", "left", "right") else 0))
        return len(self.cols["feature"]) - 1

    def arrays(self):
        c = self.cols
        out = {
            name: np.asarray(c[name], dtype=dt)
            for name, dt in (
                ("feature", np.int32),
                ("thr_bin", np.int32),
                ("nan_left", np.uint8),
                ("left", np.int32),
                ("right", np.int32),
                ("impurity", np.float64),
                ("weighted_n", np.float64),
                ("n_samples", np.int64),
            )
        }
        out["value"] = np.asarray(c["value"], dtype=np.float64).reshape(-1, self.k)
        return out


def scatter_rows(client, a, parts: int):
    """A NumPy array as a dask array of `parts` row blocks scattered to the workers (not embedded
    in the task graph)."""
    import dask.array as da

    a = np.asarray(a)
    bounds = np.linspace(0, len(a), max(1, min(parts, len(a))) + 1).astype(int)
    blocks = [a[i:j] for i, j in zip(bounds[:-1], bounds[1:])]
    futs = client.scatter(blocks)
    return da.concatenate([da.from_delayed(f, shape=b.shape, dtype=b.dtype) for f, b in zip(futs, blocks)])


def _dask_arrays(X, y, sample_weight, client):
    import dask.array as da

    n_workers = max(1, len(client.scheduler_info()["workers"]))
    if not hasattr(X, "dask"):
        X = scatter_rows(client, X, n_workers)
    X = as_rows(X)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-D collection, got {X.ndim}-D")
    if any(math.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()

    def align(a, name):
        if a is None:
            return None
        if not hasattr(a, "dask"):
            a = da.from_array(np.asarray(a))
        a = as_rows(a, name)
        if a.ndim != 1 or a.shape[0] != X.shape[0]:
            raise ValueError(f"{name}: expected {X.shape[0]} values (one per row of X), got shape {a.shape}")
        return a.rechunk((X.chunks[0],))

    return X, align(y, "y"), align(sample_weight, "sample_weight")


def fit_data_parallel(est, X, y, sample_weight, classify, client):
    if est.oob_score:
        raise ValueError("oob_score: not available with mode='data' (use mode='tree')")
    if est.max_leaf_nodes is not None:
        raise ValueError("max_leaf_nodes: not available with mode='data' (growth is breadth-first by level)")
    if classify and est.class_weight == "balanced_subsample":
        raise ValueError("class_weight='balanced_subsample': not available with mode='data'")
    if not est.bootstrap and est.max_samples is not None:
        raise ValueError(
            "`max_sample` cannot be set if `bootstrap=False`. Either switch to "
            "`bootstrap=True` or set `max_sample=None`."
        )
    X, y, sw = _dask_arrays(X, y, sample_weight, client)
    n, d = X.shape
    if n == 0:
        raise ValueError("X: the training data is empty")
    seeds = _fit.seeds_for(est.random_state, est.n_estimators)
    xs = client.compute(list(X.to_delayed().ravel()))
    ys = client.compute(list(y.to_delayed().ravel()))
    ws = client.compute(list(sw.to_delayed().ravel())) if sw is not None else [None] * len(xs)
    offsets = np.concatenate([[0], np.cumsum(X.chunks[0])])
    bin_seed = int(seeds[0]) ^ 0x9E3779B9
    rate = min(1.0, _fit.BIN_SAMPLE / n)
    scans = client.gather(
        client.map(
            _scan,
            xs,
            ys,
            ws,
            range(len(xs)),
            [d] * len(xs),
            [classify] * len(xs),
            [rate] * len(xs),
            [bin_seed] * len(xs),
            pure=False,
        )
    )
    if sum(s["w_sum"] for s in scans) <= 0:
        raise ValueError("sample_weight: the total weight is zero; at least one sample needs a positive weight")
    sample = np.concatenate([s["sample"] for s in scans])
    sample_w = np.concatenate([s["sample_w"] for s in scans])
    edges, n_edges = ops.tree_bin_edges(
        sample, max_bins=est.max_bins, weight=sample_w, sample=len(sample) + 1, seed=bin_seed
    )
    classes = class_w = None
    if classify:
        classes = np.unique(np.concatenate([s["classes"] for s in scans]))
        counts = np.zeros(len(classes))
        for s in scans:
            counts[np.searchsorted(classes, s["classes"])] += s["class_n"]
        est.classes_, est.n_classes_, est.n_outputs_ = classes, len(classes), 1
        cw = est.class_weight
        if cw == "balanced":
            class_w = n / (len(classes) * counts)
        elif isinstance(cw, dict):
            class_w = np.array([float(cw.get(c, 1.0)) for c in classes])
    else:
        est.n_outputs_ = 1
    n_draws = est._n_draws(n, None)  # a float max_samples counts rows, not total weight, here
    lam = n_draws / n
    states = client.map(
        _init,
        xs,
        ys,
        ws,
        offsets[:-1].tolist(),
        [edges] * len(xs),
        [n_edges] * len(xs),
        [classes] * len(xs),
        [class_w] * len(xs),
        [seeds] * len(xs),
        [lam] * len(xs),
        [est.bootstrap] * len(xs),
        pure=False,
    )
    del xs, ys, ws  # the states hold what the partitions need
    est.n_features_in_ = d
    est.max_features_ = _fit.resolve_max_features(est.max_features, d)
    forest, comm = _grow(est, client, states, seeds, edges, n_edges, classify, n)
    client.cancel(states)
    est._seeds, est._n_draws_, est._forest = seeds, n_draws, forest
    est._comm = comm
    return est


def _gather_at_home(client, futs, home):
    """Gather round results; a round pinned to a worker that has gone would wait forever, so
    check the workers while waiting and raise when one of the homes died."""
    homes = {w for ws in home.values() for w in ws}
    while True:
        try:
            distributed.wait(futs, timeout=0.5)
            return client.gather(futs)
        except (TimeoutError, distributed.TimeoutError):
            alive = set(client.scheduler_info()["workers"])
            if not homes <= alive:
                client.cancel(futs)
                raise RuntimeError(
                    f"forgeml.dask: worker(s) {sorted(homes - alive)} died mid-fit; their partitions' "
                    "training state is gone. Fit again."
                ) from None


def _grow(est, client, states, seeds, edges, n_edges, classify, n):
    criterion = est.criterion
    K = est.n_classes_ if classify else 0
    k_val = K if classify else 1
    S = K + 2 if classify else 4
    d = edges.shape[0]
    kf = est.max_features_
    n_bins = int(n_edges.max()) + 2
    split, leaf = _fit.resolve_sizes(est, n)
    max_depth = est.max_depth if est.max_depth is not None else 2**30
    rngs = [np.random.default_rng(int(s)) for s in seeds]
    trees = [_TreeBuilder(k_val) for _ in seeds]
    queue = [(t, trees[t].new_node(), 0) for t in range(len(seeds))]
    batch = max(1, HIST_BUDGET // (kf * n_bins * S * 8))
    root_w = {}
    pending: dict = {}
    comm = {"rounds": 0, "bytes_per_level": {}, "hist_bytes": 0}
    r = 0
    # a state is updated in place, so its rounds run where it lives (a copy elsewhere would go
    # stale: the round counter then raises instead of growing from stale rows)
    # a state is updated in place, so its rounds run where it lives, strictly (a copy elsewhere
    # would go stale; the round counter is the second line of defence)
    distributed.wait(states)
    home = {k: sorted(v) for k, v in client.who_has(states).items()}
    if any(not v for v in home.values()):
        raise RuntimeError("forgeml.dask: a partition's training state was lost before growth started (a worker died)")

    def can_split(tree, node, total, depth, t):
        """Record the node's statistics; True when it may still be split."""
        c = tree.cols
        c["impurity"][node] = imp = _impurity(total, criterion)
        c["weighted_n"][node] = total[1]
        c["n_samples"][node] = int(total[0])
        c["value"][node] = _value(total, criterion)
        tree.depth = max(tree.depth, depth)
        min_w = est.min_weight_fraction_leaf * root_w[t]
        return not (
            depth >= max_depth or total[0] < split or total[0] < 2 * leaf or imp <= 1e-12 or total[1] < 2 * min_w
        )

    while queue:
        take, queue = queue[:batch], queue[batch:]
        requests: dict = {}
        for t, node, _depth in take:
            feats = rngs[t].choice(d, kf, replace=False)
            nodes, fl = requests.setdefault(t, ([], []))
            nodes.append(node)
            fl.append(feats)
        req = {
            t: (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64).reshape(-1, kf))
            for t, (a, b) in requests.items()
        }
        order = [(t, node) for t, (nodes, _) in req.items() for node in nodes.tolist()]
        feats_of = {(t, node): f for t, (nodes, fs) in req.items() for node, f in zip(nodes.tolist(), fs)}
        depth_of = {(t, node): depth for t, node, depth in take}
        futs = [
            client.submit(
                _round, st, r, pending, req, n_bins, K, pure=False, workers=home[st.key], allow_other_workers=False
            )
            for st in states
        ]
        hist = None
        for part in _gather_at_home(client, futs, home):
            hist = part if hist is None else hist + part
            comm["hist_bytes"] += part.nbytes
        per_node = hist[0].nbytes * len(states)  # every partition sends each node's histograms
        for depth in depth_of.values():
            comm["bytes_per_level"][depth] = comm["bytes_per_level"].get(depth, 0) + per_node
        comm["rounds"] += 1
        r += 1
        if ON_ROUND is not None:
            ON_ROUND(r)
        pending = {}
        for i, (t, node) in enumerate(order):
            depth = depth_of[(t, node)]
            tree = trees[t]
            total = hist[i, 0].sum(axis=0)
            if node == 0:
                root_w[t] = total[1]
                if not can_split(tree, node, total, depth, t):
                    continue
            min_w = est.min_weight_fraction_leaf * root_w[t]
            dense = np.zeros((kf, 256, S))
            dense[:, : n_bins - 1] = hist[i, :, : n_bins - 1]
            dense[:, ops.NAN_BIN] = hist[i, :, n_bins - 1]
            f, b, nl, _ = ops.tree_best_split(
                dense, total, criterion=criterion, min_samples_leaf=leaf, min_weight_leaf=min_w
            )
            if f < 0:
                continue
            left_tot = dense[f, : b + 1].sum(axis=0) + (dense[f, ops.NAN_BIN] if nl else 0)
            right_tot = total - left_tot
            if est.min_impurity_decrease > 0:
                W, imp = total[1], tree.cols["impurity"][node]
                gain = (
                    W
                    / root_w[t]
                    * (
                        imp
                        - left_tot[1] / W * _impurity(left_tot, criterion)
                        - right_tot[1] / W * _impurity(right_tot, criterion)
                    )
                )
                if gain < est.min_impurity_decrease:
                    continue
            feat = int(feats_of[(t, node)][f])
            lid, rid = tree.new_node(), tree.new_node()
            c = tree.cols
            c["feature"][node], c["thr_bin"][node], c["nan_left"][node] = feat, int(b), int(nl)
            c["left"][node], c["right"][node] = lid, rid
            pending.setdefault(t, []).append((node, feat, int(b), int(nl), lid, rid))
            for child, tot in ((lid, left_tot), (rid, right_tot)):
                if can_split(tree, child, tot, depth + 1, t):  # leaves are known from the parent's sums
                    queue.append((t, child, depth + 1))
        pending = {t: tuple(np.asarray(col, dtype=np.int64) for col in zip(*rows)) for t, rows in pending.items()}
    parts = [tree.arrays() for tree in trees]
    grown = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    grown["offsets"] = np.concatenate([[0], np.cumsum([len(p["feature"]) for p in parts])]).astype(np.int64)
    grown["depth"] = np.array([tree.depth for tree in trees], dtype=np.int64)
    return Forest(grown, edges, d), comm
