"""Tree growth on the GPU: the CUDA kernels of csrc/cuda/tree.cu driven from C++
(csrc/bind/tree_gpu_grower.h, ``tree_grow_forest`` of the _cuda module).

The rows (weight > 0) live on the device in one int32 array that the partition kernel reorders
as the tree grows (each node owns a contiguous range, as in the CPU grower). The host keeps the
node queue and makes every decision the CPU grower makes (csrc/cpu/tree/grow.cpp), in the same
order with the same random draws (its own generator, rng.h, and costs, criterion.h), so the trees
are the CPU's trees:

- nodes are created and searched in the CPU's depth-first order; the kernels run on both
  children of a split at once. A parent of at most 2048 rows (nearly every pair of a deep tree)
  goes to a batcher shared by the workers (csrc/bind/tree_gpu_batcher.h): each worker blocks on
  its pair, and the pending pairs of all trees are served together, one upload of their
  arguments, one launch (split_pair_batch: per pair the partition, shared-memory histograms and
  split scans of both children), one download of the per-feature scan results (proxy, bin,
  nan_left, left statistics, "varies": a few numbers per feature and node) and one stream sync.
  batch=False: one split_pair launch, download and sync per pair. Larger parents (or more than 8
  classes) take one parameter upload, a memset, the partition (count and scatter over up to 64
  blocks, into the other of two row buffers), one histogram and one split-scan launch, the
  download and the sync. Buffers are allocated once per
  fit. A split whose children are both leaves needs no device work. Level-wise batching would
  launch fewer kernels but cannot replay the CPU's draw order: the features a node draws depend
  on every draw of the subtrees to its left.
- the feature draws (Fisher-Yates over the non-constant features, in batches, until
  max_features non-constant ones were seen) are replayed on the host on the scan's results;
  ties between features go to the earlier draw, ties within a feature to the first candidate.
- trees are independent: ``workers`` host threads, each with its own stream and workspace, take
  whole trees from a counter and write them to their own slots, so the result does not depend
  on scheduling nor on how pairs are batched (the device work of one node pair is tiny: a batch
  holds about one pair per growing tree, so there are many workers, mostly blocked).

Sums: counts and integer weight sums (unit weights, bootstrap counts) are exact in any order, so
classification trees with integer weights are bit-identical to the CPU's. Non-integer sums
(regression targets, fractional weights) are added in another order (atomics, a tree-shaped
prefix scan; the CPU also derives histograms by subtraction), so node statistics agree to
rounding and a split can differ only where two candidates tie to the last bits.
"""

from __future__ import annotations

import os

import numpy as np

from .._backend import cuda_module
from .._backend import cuda_stream as _stream

_CRITERIA = {"gini": 0, "entropy": 1, "log_loss": 1, "squared_error": 2}
# device work of the last fit: pairs, leaf_pairs, launches, memsets, h2d, d2h, syncs, batches
# (the batcher's round trips), batched (the pairs they served) and batch_sync_s (seconds in the
# batches' syncs: about their device time); and the
# workers' host seconds (summed over workers): grow_s in all = issue_s (enqueueing copies and
# launches) + wait_s (stream syncs) + prepare_s (rows, bootstrap draws) + host_s (decisions)
last_counts: dict = {}
# batch=None and workers=None take these (the tree bench changes them for comparisons in one
# process; workers None: _default_workers). Batching is opt-in until it has run on a real GPU:
# it has run on the emulator and under ThreadSanitizer only (docs/gpu.md).
defaults: dict = {"batch": False, "workers": None}


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


def _default_workers(trees: int, per_worker_bytes: int, batched: bool) -> int:
    """Workers by default: batched, one per tree (a batch serves about one pair per growing tree)
    up to 128 and a quarter of the free device memory; else as many as the CPU runs at once."""
    if not batched:
        return max(1, min(trees, os.cpu_count() or 1, 16))
    import cupy as cp

    try:
        free = int(cp.cuda.runtime.memGetInfo()[0])
    except Exception:  # no such query (the emulator's stand-in): the count alone limits
        free = 1 << 62
    return max(1, min(trees, 128, free // 4 // max(per_worker_bytes, 1)))


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
    workers=None,
    fused=True,
    batch=None,
    _fail_tree=-1,
    _fail_batch=0,
):
    """tree_grow_forest on CuPy arrays: codes (n, d) uint8, y (n) class indices or targets, weight
    (n) float64, all on the device; seeds on the host. Returns tree_grow_forest's dict (NumPy).
    workers: host threads (each with its own stream and workspace) growing trees concurrently;
    default with batching one per tree up to 128 (while their workspaces take at most a quarter
    of the free device memory), else one per tree up to the CPU count (at most 16). The trees do
    not depend on it. fused=False: small parents also take the separate kernels (for tests);
    batch=True: small pairs go to the batcher, False: one launch per small pair; None:
    defaults["batch"] (False for now). The trees depend on neither.
    _fail_tree, _fail_batch: test hooks (that tree's worker fails at its second small pair; the
    _fail_batch-th batch fails)."""
    import cupy as cp

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
    if K < 1:
        raise ValueError(f"n_classes: expected >= 1, got {n_classes}")
    if classify and len(y_dev) and not (0 <= int(y_dev.min()) and int(y_dev.max()) < K):
        raise ValueError(f"y: expected class indices in [0, {K})")
    params = dict(
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
    seeds = np.ascontiguousarray(np.asarray(seeds, dtype=np.uint64).reshape(-1))
    batch = bool(defaults["batch"] if batch is None else batch)
    mod = cuda_module()
    per = mod.tree_grow_workspace_bytes(n, d, crit, K, bool(bootstrap))
    if workers is None:
        workers = defaults["workers"]
    if workers is None:
        workers = _default_workers(len(seeds), per, batch and fused)
    elif int(workers) < 1:
        raise ValueError(f"workers: expected >= 1, got {workers}")
    workers = max(1, min(int(workers), len(seeds)))
    workspace = cp.empty(workers * per, dtype=cp.uint8)
    grown, counts = mod.tree_grow_forest(
        codes.data.ptr,
        n,
        d,
        y_dev.data.ptr if classify else 0,
        0 if classify else y_dev.data.ptr,
        w_base.data.ptr,
        seeds,
        crit,
        K,
        params["max_depth"],
        params["min_samples_split"],
        params["min_samples_leaf"],
        params["min_weight_fraction_leaf"],
        params["min_impurity_decrease"],
        params["max_features"],
        bool(bootstrap),
        n_draws,
        workspace.data.ptr,
        workers,
        _stream(),
        bool(fused),
        bool(batch),
        int(_fail_tree),
        int(_fail_batch),
    )
    last_counts.clear()
    last_counts.update(counts)
    return grown
