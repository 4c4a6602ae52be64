"""forest prediction kernel against a NumPy float64 reference walk of the same node array."""

import numpy as np
import pytest

from forgeml import ops
from forgeml.ensemble import RandomForestClassifier


def _reference_predict(X, nodes, values, roots):
    """Walks every row through every tree in order, summing leaf values in float64."""
    feat = nodes[:, 0]
    thr = nodes[:, 1].copy().view(np.float32)
    out = np.zeros((X.shape[0], values.shape[1]))
    for i, x in enumerate(X):
        for root in roots:
            node = int(root)
            while feat[node] >= 0:
                f, nan_left = feat[node] & 0x3FFFFFFF, (feat[node] >> 30) & 1
                v = x[f]
                go_left = bool(nan_left) if np.isnan(v) else v <= thr[node]
                node = int(nodes[node, 2] if go_left else nodes[node, 3])
            out[i] += values[node]
    return out / len(roots)


@pytest.mark.parametrize("n_rows", [1, 7, 8, 9, 517, 1031])
@pytest.mark.parametrize("n_classes", [2, 5])
def test_forest_predict_equals_reference_walk(rng, n_rows, n_classes):
    n, d = 600, 11
    X = rng.standard_normal((n, d)).astype(np.float32)
    X[rng.random((n, d)) < 0.1] = np.nan  # NaN goes to the side each split learned
    y = (np.nan_to_num(X[:, 0]) * 3 + np.nan_to_num(X[:, 1]) > 0).astype(int) + rng.integers(0, n_classes - 1, n)
    forest = RandomForestClassifier(n_estimators=13, max_features=0.5, random_state=0).fit(X, y)
    Xq = rng.standard_normal((n_rows, d)).astype(np.float32)
    Xq[rng.random((n_rows, d)) < 0.15] = np.nan
    f = forest._forest
    want = _reference_predict(Xq, f.nodes, f.value, f.roots)
    for threads in (1, 2):
        got = ops.tree_forest_predict(Xq, f.nodes, f.value, f.roots, threads=threads)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(forest.predict_proba(Xq), want, rtol=1e-12, atol=1e-15)
    if n_rows > 1:
        assert len(np.unique(want.round(6), axis=0)) > 1  # the forest did split the query rows
