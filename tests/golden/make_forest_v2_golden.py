"""Writes forest_v2.fgf (a compact forest file in format version 2, the layout before version 3)
and forest_v2.npz (what the saved forest predicts), for test_tree_compact's check that files saved
by earlier forgeml still load. Run once with forgeml at commit 26e2993 (the last one writing
version 2): ``PYTHONPATH=python python tests/golden/make_forest_v2_golden.py``. A deeper forest than
version 1's: its trees go past the top blocks version 3 adds."""

import pathlib

import numpy as np

from forgeml.ensemble import RandomForestClassifier

HERE = pathlib.Path(__file__).parent


def main():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 5)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.array(["ant", "bee", "cat"])[(np.nan_to_num(X[:, 0]) > 0).astype(int) + (np.nan_to_num(X[:, 2]) > 0.5)]
    est = RandomForestClassifier(n_estimators=4, max_depth=9, random_state=0).fit(X, y)
    est.save(HERE / "forest_v2.fgf")
    Xq = rng.standard_normal((20, 5)).astype(np.float32)
    Xq[rng.random(Xq.shape) < 0.1] = np.nan
    f = est._forest
    np.savez(
        HERE / "forest_v2.npz",
        X=Xq,
        proba=est.predict_proba(Xq),
        apply=est.apply(Xq),
        importances=est.feature_importances_,
        feature=f.feature,
        threshold=f.threshold,
        children_left=f.children_left,
        children_right=f.children_right,
        value=f.value,
    )


if __name__ == "__main__":
    main()
