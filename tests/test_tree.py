"""forgeml.ops tree kernels: binning, the split scan against a brute-force NumPy search,
growth invariants, prediction, NaN routing and determinism across thread counts."""
import numpy as np
import pytest
import scipy.sparse as sp
from conftest import isa_active, supported_isas

from forgeml import ops


# ---------------------------------------------------------------- binning

def test_bin_codes_match_searchsorted(rng):
    X = rng.normal(size=(3001, 7)).astype(np.float32)
    X[:, 2] = np.round(X[:, 2] * 4)          # few distinct values: one cut between each pair
    X[rng.random(3001) < 0.1, 4] = np.nan
    X[:, 5] = 1.5                             # constant: no cut at all
    edges, n_edges = ops.tree_bin_edges(X, max_bins=64)
    codes = ops.tree_bin_codes(X, edges, n_edges)
    assert edges.shape == (7, 256) and codes.dtype == np.uint8
    assert n_edges.max() <= 62 and n_edges[5] == 0
    u = np.unique(X[:, 2])
    assert n_edges[2] == len(u) - 1
    for f in range(7):
        e = edges[f, :n_edges[f]]
        assert np.all(np.diff(e) > 0) and np.all(np.isinf(edges[f, n_edges[f]:]))
        ref = np.where(np.isnan(X[:, f]), 255, np.searchsorted(e, X[:, f], side="left"))
        np.testing.assert_array_equal(codes[:, f], ref)
    # quantile bins hold similar numbers of rows
    counts = np.bincount(codes[:, 0], minlength=n_edges[0] + 1)
    assert counts.min() > 0.5 * 3001 / 63 and counts.max() < 2 * 3001 / 63


@pytest.mark.parametrize("isa", supported_isas("portable"))
def test_bin_codes_full_table_each_isa(rng, isa):
    # 255 bins (all 16 blocks of the AVX-512 search), values on the cut points, duplicates, NaN, odd sizes
    X = rng.normal(size=(4099, 5)).astype(np.float32)
    X[:, 1] = np.round(X[:, 1] * 40) / 40
    X[rng.random(4099) < 0.07, 3] = np.nan
    edges, n_edges = ops.tree_bin_edges(X, max_bins=255)
    assert n_edges.max() > 240  # cuts reach the last block of 16
    cuts = edges[0, :n_edges[0]]
    X[:600, 0] = cuts[rng.integers(0, len(cuts), 600)]  # exactly on a cut: the code counts the cuts below
    X[600:610, 0] = [cuts[0], cuts[-1], -0.0, 0.0, cuts[0] - 1, cuts[-1] + 1, 1e30, -1e30, cuts[1], cuts[-2]]
    with isa_active(isa):
        codes = ops.tree_bin_codes(X, edges, n_edges)
    for f in range(5):
        e = edges[f, :n_edges[f]]
        ref = np.where(np.isnan(X[:, f]), 255, np.searchsorted(e, X[:, f], side="left"))
        np.testing.assert_array_equal(codes[:, f], ref)


def _edges_reference(values, zeros, value_bins):
    """tree_bin_edges' contract for one column, value by value: sorted values (the implicit zeros
    of a sparse column inserted as one weighted value) grouped while within float32 1e-7 of the
    group's largest; a cut between every pair of groups if they fit, else where the quantile bucket
    of the non-zero values changes, the zero group cut off on both sides."""
    v = np.sort(values[~np.isnan(values)].astype(np.float32))
    z = np.searchsorted(v, np.float32(0), side="left")
    seq = [(x, 1) for x in v[:z]] + ([(np.float32(0), zeros)] if zeros else []) + [(x, 1) for x in v[z:]]
    lo, hi, before, at = [], [], [], 0
    for x, count in seq:
        if not lo or x > np.float32(hi[-1] + np.float32(1e-7)):
            lo.append(x), hi.append(x), before.append(at)
        else:
            hi[-1] = max(hi[-1], x)
        at += count

    def midpoint(a, b):
        m = np.float32(0.5 * (float(a) + float(b)))
        return a if (m >= b or m < a) else m

    g = len(lo)
    if g <= value_bins:
        return [midpoint(hi[i], lo[i + 1]) for i in range(g - 1)]
    zg = next((i for i in range(g) if lo[i] <= 0 <= hi[i]), -1)
    zcount = ((before[zg + 1] if zg + 1 < g else at) - before[zg]) if zg >= 0 else 0
    buckets = value_bins if zg < 0 else value_bins - 2
    bucket = [(before[i] - (zcount if 0 <= zg < i else 0)) * buckets // (at - zcount) for i in range(g)]
    cuts = []
    for i in range(g - 1):
        if len(cuts) == value_bins - 1:
            break
        if i + 1 == zg or i == zg or bucket[i] != bucket[i + 1]:
            cuts.append(midpoint(hi[i], lo[i + 1]))
    return cuts


@pytest.mark.parametrize("max_bins", [5, 40, 255])
def test_bin_edges_match_reference(rng, max_bins):
    n = 1500
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, 1] = np.round(X[:, 1] * 3)  # few values
    X[:, 2] = 1 + rng.integers(0, 40, n) * np.float32(5e-8)  # neighbours within 1e-7: merged groups
    X[:, 3] *= rng.random(n) < 0.2  # mostly zeros (both signs of zero among them)
    X[::7, 3] = -0.0
    X[rng.random(n) < 0.05, 4] = np.nan
    X[:, 5] = np.ldexp(X[:, 5], -rng.integers(0, 140, n))  # tiny values, subnormals
    edges, n_edges = ops.tree_bin_edges(X, max_bins=max_bins)
    for f in range(X.shape[1]):
        ref = _edges_reference(X[:, f], 0, max_bins - 1)
        np.testing.assert_array_equal(edges[f, : n_edges[f]], np.array(ref, np.float32), err_msg=f"feature {f}")
        assert np.all(np.isinf(edges[f, n_edges[f] :]))
    # sparse columns: the zeros enter as one weighted value
    S = sp.csc_matrix(X * (rng.random(X.shape) < 0.3))
    edges, n_edges = ops.tree_bin_edges(S, max_bins=max_bins)
    for f in range(X.shape[1]):
        stored = S.data[S.indptr[f] : S.indptr[f + 1]]
        ref = _edges_reference(stored, n - len(stored), max_bins - 1)
        np.testing.assert_array_equal(edges[f, : n_edges[f]], np.array(ref, np.float32), err_msg=f"sparse {f}")


def test_bin_edges_ignore_zero_weight_rows(rng):
    X = rng.normal(size=(501, 3)).astype(np.float32)
    w = np.ones(501)
    w[::2] = 0
    e1, n1 = ops.tree_bin_edges(X, weight=w)
    e2, n2 = ops.tree_bin_edges(X[1::2])
    np.testing.assert_array_equal(n1, n2)
    np.testing.assert_array_equal(e1, e2)


def test_binning_bad_input(rng):
    X = rng.normal(size=(10, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="max_bins"):
        ops.tree_bin_edges(X, max_bins=256)
    X[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        ops.tree_bin_edges(X)
    with pytest.raises(ValueError, match="edges"):
        ops.tree_bin_codes(np.zeros((4, 2), np.float32), np.zeros((3, 256), np.float32), np.zeros(3, np.int32))


# ---------------------------------------------------------------- split scan vs brute force

def _proxy(s, criterion):
    if criterion == "squared_error":
        return s[2] ** 2 / s[1]
    w = s[2:]
    if criterion == "gini":
        return np.sum(w * w) / s[1]
    xlogx = lambda x: np.where(x > 0, x * np.log(np.where(x > 0, x, 1)), 0.0)
    return np.sum(xlogx(w)) - xlogx(s[1])


def _brute_force(hist, total, criterion, min_leaf):
    """Every (feature, boundary, NaN side) candidate, the best by proxy (ties: first found)."""
    best = (-np.inf, -1, 0, False)
    for f in range(hist.shape[0]):
        h = hist[f]
        occ = [b for b in range(255) if h[b, 0] > 0]
        nan = h[255]
        for j, b in enumerate(occ):
            left = h[occ[:j + 1]].sum(axis=0)
            if j + 1 < len(occ):
                thr = (b + occ[j + 1] - 1) // 2
                cands = [(left, thr, False)] + ([(left + nan, thr, True)] if nan[0] > 0 else [])
            else:
                cands = [(left, 254, False)] if nan[0] > 0 else []
            for l, thr, nl in cands:
                r = total - l
                if l[0] < min_leaf or r[0] < min_leaf:
                    continue
                p = _proxy(l, criterion) + _proxy(r, criterion)
                if p > best[0]:  # no NaN seen: NaN follows the child with more rows (ties: right)
                    best = (p, f, thr, nl if nan[0] > 0 else bool(l[0] > r[0]))
    return best


def _random_hist(rng, d, criterion, n_classes=3):
    """Histograms of random rows: each feature puts the rows into a few random bins (maybe NaN)."""
    n = int(rng.integers(2, 80))
    w = rng.random(n) + 0.5
    S = n_classes + 2 if criterion != "squared_error" else 4
    hist = np.zeros((d, 256, S))
    y = rng.normal(size=n)
    cls = rng.integers(0, n_classes, size=n)
    for f in range(d):
        choices = rng.choice(254, size=rng.integers(1, 10), replace=False)
        if rng.random() < 0.5:
            choices = np.append(choices, 255)
        codes = rng.choice(choices, size=n)
        np.add.at(hist[f, :, 0], codes, 1)
        np.add.at(hist[f, :, 1], codes, w)
        if criterion == "squared_error":
            np.add.at(hist[f, :, 2], codes, w * y)
            np.add.at(hist[f, :, 3], codes, w * y * y)
        else:
            np.add.at(hist[f], (codes, 2 + cls), w)
    return hist, hist[0].sum(axis=0)


@pytest.mark.parametrize("criterion", ["gini", "entropy", "squared_error"])
@pytest.mark.parametrize("min_leaf", [1, 7])
def test_best_split_matches_brute_force(rng, isa, criterion, min_leaf):
    for _ in range(40):
        hist, total = _random_hist(rng, 5, criterion)
        feat, thr, nan_left, proxy = ops.tree_best_split(hist, total, criterion=criterion, min_samples_leaf=min_leaf)
        bp, bf, bthr, bnl = _brute_force(hist, total, criterion, min_leaf)
        if bf < 0:
            assert feat == -1
            continue
        assert proxy == pytest.approx(bp, rel=1e-10)
        assert (feat, thr, nan_left) == (bf, bthr, bnl)


@pytest.mark.parametrize("criterion,n_classes", [(c, k) for c in ("gini", "entropy") for k in (1, 2, 3, 5, 8, 9)]
                         + [("squared_error", 1)])
@pytest.mark.parametrize("isa", supported_isas("portable"), indirect=True)
def test_best_split_each_isa_equals_reference(rng, isa, criterion, n_classes):
    """The split-kernel table's entries: above reference the scan fixes the class count at compile
    time (as growth does); the reference entry is the generic scan. Same winner, same proxy bits,
    ties (integer weights) included."""
    for i in range(30):
        hist, total = _random_hist(rng, 6, criterion, n_classes=n_classes)
        if i % 2:  # integer weights: many exactly tied candidates
            hist[..., 1:] = np.round(hist[..., 1:] * 2)
            if criterion != "squared_error":
                hist[..., 1] = hist[..., 2:].sum(axis=-1)
            hist[hist[..., 0] == 0] = 0
            total = hist[0].sum(axis=0)
        for min_leaf, min_w in [(1, 0.0), (5, 0.0), (1, 0.3 * total[1])]:
            kw = dict(criterion=criterion, min_samples_leaf=min_leaf, min_weight_leaf=min_w)
            fast = ops.tree_best_split(hist, total, **kw)
            with isa_active("reference"):
                ref = ops.tree_best_split(hist, total, **kw)
            assert fast[:3] == ref[:3]
            assert fast[3] == ref[3] or (np.isinf(fast[3]) and np.isinf(ref[3]))


def test_best_split_none_when_constant():
    hist = np.zeros((2, 256, 4))
    hist[:, 17] = [5, 5.0, 2.0, 3.0]
    assert ops.tree_best_split(hist, hist[0, 17], criterion="gini")[0] == -1


# ---------------------------------------------------------------- growth and prediction

def _fit_forest(X, y, seeds, criterion="gini", n_classes=2, threads=None, **kw):
    edges, n_edges = ops.tree_bin_edges(X)
    codes = ops.tree_bin_codes(X, edges, n_edges)
    return ops.tree_grow_forest(codes, y, np.ones(len(y)), seeds, criterion=criterion, n_classes=n_classes,
                                threads=threads, **kw), edges


def test_grown_tree_invariants(rng):
    X = rng.normal(size=(2001, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32)
    out, _ = _fit_forest(X, y, [3], min_samples_leaf=5)
    f, left, right, n = out["feature"], out["left"], out["right"], out["n_samples"]
    internal = f >= 0
    assert np.all(n[left[internal]] + n[right[internal]] == n[internal])
    assert n[0] == 2001 and np.all(n[~internal] >= 5)
    np.testing.assert_allclose(out["value"].sum(axis=1), 1.0)
    assert np.all(left[~internal] == -1) and np.all(right[~internal] == -1)


def test_bootstrap_counts():
    c = ops.tree_bootstrap_counts(1001, 700, 42)
    assert c.sum() == 700 and c.dtype == np.int32
    np.testing.assert_array_equal(c, ops.tree_bootstrap_counts(1001, 700, 42))
    assert not np.array_equal(c, ops.tree_bootstrap_counts(1001, 700, 43))


def test_forest_deterministic_across_threads(rng, restore_threads):
    X = rng.normal(size=(3001, 12)).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nan_to_num(X[:, 0]) * np.nan_to_num(X[:, 1]) > 0).astype(np.int32)
    seeds = np.arange(37)  # more trees than the first parallel region holds: later regions are sized by time
    ref, _ = _fit_forest(X, y, seeds, bootstrap=True, max_features=3, threads=1)
    assert (np.diff(ref["offsets"]) > 1).all()
    for threads in (2, 3):
        out, _ = _fit_forest(X, y, seeds, bootstrap=True, max_features=3, threads=threads)
        for k in ref:
            np.testing.assert_array_equal(out[k], ref[k])


def test_single_tree_feature_parallel_deterministic(rng):
    # big enough that nodes split their feature work over threads
    X = rng.normal(size=(20001, 16)).astype(np.float32)
    y = rng.normal(size=20001) + X[:, 0] * 2
    ref, _ = _fit_forest(X, y, [5], criterion="squared_error", n_classes=1, threads=1, max_depth=12)
    out, _ = _fit_forest(X, y, [5], criterion="squared_error", n_classes=1, threads=4, max_depth=12)
    for k in ref:
        np.testing.assert_array_equal(out[k], ref[k])


@pytest.mark.parametrize("criterion,n_classes", [("gini", 3), ("entropy", 2)])
def test_histogram_subtraction_gives_the_same_tree(rng, criterion, n_classes):
    # unit weights: class sums are exact integers both ways, so the trees must be identical
    X = rng.normal(size=(6001, 9)).astype(np.float32)
    X[rng.random(X.shape) < 0.03] = np.nan
    y = ((X[:, 0] > 0) + (np.nan_to_num(X[:, 1]) > 0.7)).astype(np.int32) % n_classes
    y[rng.random(6001) < 0.2] = 0
    kw = dict(criterion=criterion, n_classes=n_classes, bootstrap=True)
    ref, _ = _fit_forest(X, y, [1, 2], hist_subtraction=False, **kw)
    out, _ = _fit_forest(X, y, [1, 2], **kw)
    assert len(ref["feature"]) > 200
    for k in ref:
        np.testing.assert_array_equal(out[k], ref[k])


def _assert_same_trees_as_double_histograms(monkeypatch, X, y, w, seeds, min_nodes, **kw):
    """Grows the forest as is (integer counts take packed / word histograms), then with int_counts
    off (the double histograms, the reference): identical trees, every array bit for bit."""
    from forgeml import _cpu

    edges, n_edges = ops.tree_bin_edges(X)
    codes = ops.tree_bin_codes(X, edges, n_edges)
    out = ops.tree_grow_forest(codes, y, w, seeds, **kw)
    grow = _cpu.tree_grow_forest
    monkeypatch.setattr(_cpu, "tree_grow_forest", lambda *a: grow(*a[:-1], {**a[-1], "int_counts": False}))
    ref = ops.tree_grow_forest(codes, y, w, seeds, **kw)
    assert len(ref["feature"]) > min_nodes
    for k in ref:
        np.testing.assert_array_equal(out[k], ref[k])


@pytest.mark.parametrize("nan", [True, False])
@pytest.mark.parametrize("criterion,n_classes,weight", [("gini", 2, "counts"), ("gini", 3, "ones"),
                                                       ("entropy", 5, "counts"), ("gini", 8, "counts"),
                                                       ("entropy", 2, "counts"), ("gini", 2, "large")])
def test_packed_integer_histograms_give_the_same_trees(rng, monkeypatch, isa, criterion, n_classes, weight, nan):
    """Integer weights take packed integer histograms (rows << 32 | weight per class; two classes
    with a root weight below 2^21: one word per bin, hist_words.h; "large" weights exceed it); the
    double histograms are the reference: identical trees, every array bit for bit. Gini on features
    without NaN takes the vectorised proxies of each ISA (split_proxies.h)."""
    X = rng.normal(size=(7001, 11)).astype(np.float32)
    if nan:
        X[rng.random(X.shape) < 0.03] = np.nan
    X[:, 3] = np.round(X[:, 3])  # few distinct values: many tied candidates
    y = ((X[:, 0] > 0) * 2 + (np.nan_to_num(X[:, 1]) > 0.5) + (X[:, 3] > 0)).astype(np.int32) % n_classes
    y[rng.random(7001) < 0.2] = rng.integers(0, n_classes)
    w = rng.integers(0, 4, size=7001).astype(np.float64) if weight != "ones" else np.ones(7001)
    if weight == "large":
        w *= 1000.0
    _assert_same_trees_as_double_histograms(monkeypatch, X, y, w, [1, 2, 3], 300, criterion=criterion,
                                            n_classes=n_classes, bootstrap=True, max_features=4, min_samples_leaf=2)


@pytest.mark.parametrize("d", [12, 16, 17, 50, 64, 71])
@pytest.mark.parametrize("max_features", [1, 7, 8, 9, 12])
def test_word_histograms_kept_codes_partition_same_trees(rng, monkeypatch, isa, max_features, d):
    """Word histograms of large nodes keep the drawn features' codes per row and the winner's
    partition reads them (up to 8 features a batch; more: the codes are gathered again). Features
    with few values turn constant in nodes, so later batches are drawn and may hold the winner.
    The AVX2 build reads a row's codes in 16-byte pieces (the last one ending at the row's end):
    rows of 12 to 71 codes cover one to four pieces and the portable fallback on either side.
    The double histograms (int_counts off) are the reference: identical trees, bit for bit."""
    n = 6007
    X = rng.normal(size=(n, d)).astype(np.float32)
    X[:, 4:9] = np.round(X[:, 4:9])  # few distinct values: constant in many nodes
    X[:, d - 2] = np.round(X[:, d - 2])
    X[rng.random(X.shape) < 0.03] = np.nan
    y = ((X[:, 0] > 0) ^ (np.nan_to_num(X[:, 5]) > 0)).astype(np.int32)
    y[rng.random(n) < 0.1] ^= 1
    w = rng.integers(0, 3, size=n).astype(np.float64)
    _assert_same_trees_as_double_histograms(monkeypatch, X, y, w, [3, 4], 300, criterion="gini", n_classes=2,
                                            bootstrap=True, max_features=max_features)


@pytest.mark.parametrize("min_leaf,min_weight_fraction", [(1, 0.0), (7, 0.0), (1, 0.01), (30, 0.02)])
def test_word_histograms_leaf_limits_same_trees(rng, monkeypatch, isa, min_leaf, min_weight_fraction):
    """The word histograms' Gini scan checks min_samples_leaf and the minimum leaf weight once per
    feature (the allowed boundaries are one range, word_gini_avx2); the double histograms are the
    reference: identical trees, bit for bit, with the limits cutting nodes' ranges at both ends."""
    n = 5003
    X = rng.normal(size=(n, 20)).astype(np.float32)
    X[:, 3] = np.round(X[:, 3])
    y = ((X[:, 0] > 0) ^ (X[:, 1] > 0.5)).astype(np.int32)
    y[rng.random(n) < 0.15] ^= 1
    w = rng.integers(0, 4, size=n).astype(np.float64)
    _assert_same_trees_as_double_histograms(monkeypatch, X, y, w, [7, 8], 100, criterion="gini", n_classes=2,
                                            bootstrap=True, max_features=5, min_samples_leaf=min_leaf,
                                            min_weight_fraction_leaf=min_weight_fraction)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_packed_histograms_column_major_codes_same_trees(rng, n_classes):
    """Column-major codes build the packed histograms feature by feature (hist_words.h's column
    loop for two classes): the same trees as row-major codes, every array bit for bit."""
    X = rng.normal(size=(6001, 9)).astype(np.float32)
    X[rng.random(X.shape) < 0.02] = np.nan
    y = ((X[:, 0] > 0) + (np.nan_to_num(X[:, 1]) > 0.3)).astype(np.int32) % n_classes
    edges, n_edges = ops.tree_bin_edges(X)
    codes = ops.tree_bin_codes(X, edges, n_edges)
    kw = dict(criterion="gini", n_classes=n_classes, bootstrap=True, max_features=3)
    ref = ops.tree_grow_forest(codes, y, np.ones(6001), [5, 6], **kw)
    out = ops.tree_grow_forest(np.asfortranarray(codes), y, np.ones(6001), [5, 6], **kw)
    assert len(ref["feature"]) > 300
    for k in ref:
        np.testing.assert_array_equal(out[k], ref[k])


def test_histogram_subtraction_regression_close(rng):
    X = rng.normal(size=(5001, 7)).astype(np.float32)
    y = X[:, 0] ** 2 + rng.normal(size=5001)
    ref, _ = _fit_forest(X, y, [4], criterion="squared_error", hist_subtraction=False, max_depth=6)
    out, _ = _fit_forest(X, y, [4], criterion="squared_error", max_depth=6)
    np.testing.assert_array_equal(out["feature"], ref["feature"])
    np.testing.assert_allclose(out["value"], ref["value"], rtol=1e-10)
