"""Tree growth on the GPU: the CUDA kernels of csrc/cuda/tree.cu driven from the host.

The rows (weight > 0) live on the device in one int32 array that the partition kernel reorders
as the tree grows (each node owns a contiguous range, as in the CPU grower). The host keeps the
node queue and makes every decision the CPU grower makes (csrc/cpu/tree/grow.cpp), in the same
order with the same random draws, so the trees are the CPU's trees:

- nodes are created and searched in the CPU's depth-first order; the kernels run on both
  children of a split at once (one partition launch, one histogram launch, one split-scan
  launch for the pair). Level-wise batching would launch fewer kernels but cannot replay the
  CPU's draw order: the features a node draws depend on every draw of the subtrees to its left.
- the feature draws (Fisher-Yates over the non-constant features, in batches, until
  max_features non-constant ones were seen) are replayed on the host with the CPU's generator
  (xoshiro256**) on the per-feature results of the split scan; ties between features go to the
  earlier draw, ties within a feature to the first candidate, as on the CPU.
- only the per-feature scan results (proxy, bin, nan_left, left statistics, "varies") come back
  to the host, a few numbers per feature and node.

Sums: counts and integer weight sums (unit weights, bootstrap counts) are exact in any order, so
classification trees with integer weights are bit-identical to the CPU's. Non-integer sums
(regression targets, fractional weights) are added in another order (atomics, a tree-shaped
prefix scan; the CPU also derives histograms by subtraction), so node statistics agree to
rounding and a split can differ only where two candidates tie to the last bits.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import cuda_module
from .._backend import cuda_stream as _stream

_MASK = (1 << 64) - 1
_EPS = float(np.finfo(np.float64).eps)
_SCRATCH_BYTES = 4 << 20  # grow.cpp kScratchBytes: sets the CPU's draw batch size
_TREE_SEED = 0x5851F42D4C957F2D  # grow.cpp grow_forest: per-tree seed offset
_CRITERIA = {"gini": 0, "entropy": 1, "log_loss": 1, "squared_error": 2}


class Rng:
    """csrc/cpu/tree/rng.h: splitmix64 seeding xoshiro256**, Lemire's below(n)."""

    def __init__(self, seed: int):
        s = []
        seed &= _MASK
        for _ in range(4):
            seed = (seed + 0x9E3779B97F4A7C15) & _MASK
            z = seed
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
            s.append(z ^ (z >> 31))
        self.s = s

    def next(self) -> int:
        s = self.s
        r = (_rotl((s[1] * 5) & _MASK, 7) * 9) & _MASK
        t = (s[1] << 17) & _MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return r

    def below(self, n: int) -> int:
        return (self.next() * n) >> 64


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & _MASK


def _xlogx(x):
    return x * math.log(x) if x > 0 else 0.0


def _cost(s, criterion: int, K: int) -> float:
    """criterion.h cost(s), same operations in the same order."""
    if criterion == 0:
        W = s[1]
        if W <= 0:
            return 0.0
        sq = 0.0
        for k in range(K):
            sq += s[2 + k] * s[2 + k]
        return W - sq / W
    if criterion == 1:
        c = _xlogx(s[1])
        for k in range(K):
            c -= _xlogx(s[2 + k])
        return c / math.log(2.0)
    return s[3] - s[2] * s[2] / s[1] if s[1] > 0 else 0.0


def supported(
    criterion, n_classes, *, monotonic_cst=None, max_leaf_nodes=None, random_split=False, balanced_subsample=False
) -> str | None:
    """None when the GPU grower handles these settings, else why not (the caller grows on the host)."""
    if criterion not in _CRITERIA:
        return f"criterion={criterion!r}"
    if criterion in ("gini", "entropy", "log_loss") and n_classes > 16:
        return "more than 16 classes"
    if monotonic_cst is not None:
        return "monotonic_cst"
    if max_leaf_nodes:
        return "max_leaf_nodes (best-first growth)"
    if random_split:
        return "splitter='random'"
    if balanced_subsample:
        return "class_weight='balanced_subsample'"
    return None


class _Tree:
    """The arrays of one tree, in the CPU's node order."""

    def __init__(self, K):
        self.feature, self.left, self.right, self.thr_bin, self.nan_left = [], [], [], [], []
        self.n_samples, self.weighted_n, self.impurity, self.value = [], [], [], []
        self.depth = 0
        self.K = K


def grow_forest_gpu(
    codes,
    y,
    weight,
    seeds,
    *,
    criterion="gini",
    n_classes=1,
    max_depth=None,
    min_samples_split=2,
    min_samples_leaf=1,
    min_weight_fraction_leaf=0.0,
    min_impurity_decrease=0.0,
    max_features=None,
    bootstrap=False,
    n_draws=None,
):
    """tree_grow_forest on CuPy arrays: codes (n, d) uint8, y (n) class indices or targets, weight
    (n) float64, all on the device; seeds on the host. Returns tree_grow_forest's dict (NumPy)."""
    import cupy as cp

    from .tree import tree_bootstrap_counts

    why = supported(criterion, n_classes)
    if why is not None:
        raise ValueError(f"criterion: the GPU grower does not support {why}")
    crit = _CRITERIA[criterion]
    classify = crit != 2
    codes = cp.ascontiguousarray(codes, dtype=cp.uint8)
    if codes.ndim != 2:
        raise ValueError(f"codes: expected a 2-D array, got shape {tuple(codes.shape)}")
    n, d = codes.shape
    if n >= 2**31:
        raise ValueError(f"codes: at most 2^31 - 1 rows, got {n}")
    y_dev = cp.ascontiguousarray(y, dtype=cp.int32 if classify else cp.float64).reshape(-1)
    w_base = cp.ascontiguousarray(weight, dtype=cp.float64).reshape(-1)
    if y_dev.shape[0] != n or w_base.shape[0] != n:
        raise ValueError(f"y, weight: expected {n} values each")
    if not bool((w_base >= 0).all()):
        raise ValueError("weight: expected non-negative finite values")
    K = int(n_classes) if classify else 1
    if classify and len(y_dev) and not (0 <= int(y_dev.min()) and int(y_dev.max()) < K):
        raise ValueError(f"y: expected class indices in [0, {K})")
    params = dict(
        crit=crit,
        K=K,
        H=K if classify else 3,
        S=K + 2 if classify else 4,
        d=d,
        max_depth=int(min(max_depth, 2**30)) if max_depth is not None else 2**30,
        min_samples_split=int(min_samples_split),
        min_samples_leaf=int(min_samples_leaf),
        min_weight_fraction_leaf=float(min_weight_fraction_leaf),
        min_impurity_decrease=float(min_impurity_decrease),
        max_features=int(d if max_features is None else max_features),
    )
    if params["max_features"] < 1:
        raise ValueError(f"max_features: expected >= 1, got {max_features}")
    n_draws = int(n if n_draws is None else n_draws)
    trees = []
    for seed in np.asarray(seeds, dtype=np.uint64).reshape(-1):
        w = w_base
        if bootstrap:  # the CPU's draws (host), applied on the device
            w = w_base * cp.asarray(tree_bootstrap_counts(n, n_draws, int(seed)))
        trees.append(_grow_tree(cp, codes, y_dev, w, (int(seed) + _TREE_SEED) & _MASK, params, classify))
    return _concat(trees, K)


def _grow_tree(cp, codes, y, w, seed, P, classify):
    mod, stream = cuda_module(), _stream()
    d, H, S, K, crit = P["d"], P["H"], P["S"], P["K"], P["crit"]
    rows = cp.flatnonzero(w > 0).astype(cp.int32)
    tmp = cp.empty_like(rows)
    m = int(rows.shape[0])
    cls_ptr = y.data.ptr if classify else 0
    y_ptr = 0 if classify else y.data.ptr
    rng = Rng(seed)
    tree = _Tree(K)
    batch_cap = max(1, _SCRATCH_BYTES // (256 * (H * 8 + 4)))
    batch_cap = min(batch_cap, d, max(1, P["max_features"]))

    def histograms(ranges):
        """(hw (z, d, 256, H), cnt (z, d, 256)) of the nodes rows[ranges[i]]."""
        z = len(ranges)
        hw = cp.zeros((z, d, 256, H))
        cnt = cp.zeros((z, d, 256), dtype=cp.uint32)
        r = cp.asarray(np.asarray(ranges, dtype=np.int64).reshape(z, 2))
        mod.tree_histogram_nodes(
            codes.data.ptr,
            d,
            rows.data.ptr,
            r.data.ptr,
            z,
            max(b - a for a, b in ranges),
            cls_ptr,
            w.data.ptr,
            y_ptr,
            H,
            hw.data.ptr,
            cnt.data.ptr,
            stream,
        )
        return hw, cnt

    # the root's statistics from its histogram (feature 0 holds every row once)
    hw0, cnt0 = histograms([(0, m)])
    if m == 0:
        raise ValueError("weight: the total weight is zero")
    h0 = cp.asnumpy(hw0[0, 0]).sum(axis=0)
    n0 = float(cp.asnumpy(cnt0[0, 0]).astype(np.int64).sum())
    root = np.r_[n0, h0.sum(), h0] if classify else np.r_[n0, h0]
    w_root = root[1]
    lim_leaf, lim_w = float(P["min_samples_leaf"]), P["min_weight_fraction_leaf"] * w_root

    def new_node(s, depth):
        tree.feature.append(-1)
        tree.left.append(-1)
        tree.right.append(-1)
        tree.thr_bin.append(0)
        tree.nan_left.append(0)
        tree.n_samples.append(int(s[0]))
        tree.weighted_n.append(s[1])
        tree.impurity.append(_cost(s, crit, K) / s[1])
        tree.value.append([s[2 + k] / s[1] for k in range(K)] if classify else [s[2] / s[1]])
        tree.depth = max(tree.depth, depth)
        return len(tree.feature) - 1

    def searchable(s, depth, node):
        n_, W = s[0], s[1]
        pure_tol = _EPS if classify else _EPS * (1.0 + (s[2] / W) * (s[2] / W))
        return not (
            depth >= P["max_depth"]
            or n_ < P["min_samples_split"]
            or n_ < 2.0 * P["min_samples_leaf"]
            or W < 2.0 * lim_w
            or tree.impurity[node] <= pure_tol
        )

    def search(entries, hist=None):
        """The split of each entry (searchable ones, in creation order): kernels for all, then the
        CPU's draws and choice on the host, entry by entry."""
        if not entries:
            return
        z = len(entries)
        hw, cnt = hist if hist is not None else histograms([(e["begin"], e["end"]) for e in entries])
        total = cp.asarray(np.stack([e["total"] for e in entries]))
        proxy = cp.empty((z, d))
        bins = cp.empty((z, d), dtype=cp.int32)
        nan_left = cp.empty((z, d), dtype=cp.int32)
        left = cp.empty((z, d, S))
        varies = cp.empty((z, d), dtype=cp.int32)
        mod.tree_split_scan_nodes(
            hw.data.ptr,
            cnt.data.ptr,
            d,
            z,
            H,
            crit,
            total.data.ptr,
            lim_leaf,
            lim_w,
            proxy.data.ptr,
            bins.data.ptr,
            nan_left.data.ptr,
            left.data.ptr,
            varies.data.ptr,
            stream,
        )
        proxy, bins, nan_left, left, varies = (cp.asnumpy(a) for a in (proxy, bins, nan_left, left, varies))
        for i, e in enumerate(entries):
            choose(e, proxy[i], bins[i], nan_left[i], left[i], varies[i])

    def choose(e, proxy, bins, nan_left, left, varies):
        cand = [f for f in range(d) if not e["consts"][f]]
        seen = drawn = 0
        best, best_p = -1, -math.inf
        while seen < P["max_features"] and drawn < len(cand):
            need = min(P["max_features"] - seen, len(cand) - drawn, batch_cap)
            for i in range(drawn, drawn + need):  # Fisher-Yates, one draw at a time (grow.cpp find_split)
                j = i + rng.below(len(cand) - i)
                cand[i], cand[j] = cand[j], cand[i]
            n_const = 0
            for i in range(drawn, drawn + need):  # rank order: the first of equal proxies wins
                f = cand[i]
                if not varies[f]:
                    e["consts"][f] = True
                    n_const += 1
                elif proxy[f] > best_p:
                    best, best_p = f, proxy[f]
            seen += need - n_const
            drawn += need
        if best < 0:
            return
        total = e["total"]
        bl = left[best].astype(np.float64)
        br = total - bl
        improvement = (_cost(total, crit, K) - _cost(bl, crit, K) - _cost(br, crit, K)) / w_root
        if improvement + _EPS < P["min_impurity_decrease"]:
            return
        e.update(split=True, feature=best, bin=int(bins[best]), nan_left=int(nan_left[best]), left=bl, right=br)

    def entry(begin, end, depth, s, consts):
        node = new_node(s, depth)
        e = dict(
            node=node,
            begin=begin,
            end=end,
            depth=depth,
            total=np.asarray(s, dtype=np.float64),
            consts=consts,
            split=False,
        )
        return e, searchable(s, depth, node)

    root_e, ok = entry(0, m, 0, root, [False] * d)
    if ok:
        search([root_e], (hw0, cnt0))
    del hw0, cnt0
    stack = [root_e]
    while stack:
        e = stack.pop()
        if not e["split"]:
            continue
        # partition the node's rows on the device (the left count is the scan's left count)
        # two small uploads: the range (and a slot for the left count), the split
        a = cp.asarray(np.array([e["begin"], e["end"], 0], dtype=np.int64))
        sel = cp.asarray(np.array([e["feature"], e["bin"], e["nan_left"]], dtype=np.int32))
        mod.tree_partition(
            codes.data.ptr,
            d,
            rows.data.ptr,
            tmp.data.ptr,
            a.data.ptr,
            1,
            sel.data.ptr,
            sel.data.ptr + 4,
            sel.data.ptr + 8,
            a.data.ptr + 16,
            stream,
        )
        n_left = a[2]
        mid = e["begin"] + int(e["left"][0])
        node = e["node"]
        tree.feature[node], tree.thr_bin[node], tree.nan_left[node] = e["feature"], e["bin"], e["nan_left"]
        le, lok = entry(e["begin"], mid, e["depth"] + 1, e["left"], list(e["consts"]))
        re, rok = entry(mid, e["end"], e["depth"] + 1, e["right"], e["consts"])
        tree.left[node], tree.right[node] = le["node"], re["node"]
        search([x for x, ok in ((le, lok), (re, rok)) if ok])
        if int(n_left) != mid - e["begin"]:
            raise RuntimeError("tree: the GPU partition disagrees with the histogram")
        stack.append(re)
        stack.append(le)
    return tree


def _concat(trees, K):
    sizes = [len(t.feature) for t in trees]
    cat = lambda name, dt: np.concatenate([np.asarray(getattr(t, name), dtype=dt) for t in trees])  # noqa: E731
    return dict(
        offsets=np.r_[0, np.cumsum(sizes)].astype(np.int64),
        depth=np.asarray([t.depth for t in trees], dtype=np.int32),
        feature=cat("feature", np.int32),
        left=cat("left", np.int32),
        right=cat("right", np.int32),
        thr_bin=cat("thr_bin", np.int32),
        nan_left=cat("nan_left", np.uint8),
        impurity=cat("impurity", np.float64),
        weighted_n=cat("weighted_n", np.float64),
        n_samples=cat("n_samples", np.int64),
        value=np.concatenate([np.asarray(t.value, dtype=np.float64).reshape(-1, K) for t in trees]),
    )
