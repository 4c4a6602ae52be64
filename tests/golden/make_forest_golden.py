"""Writes forest_vN.fgf (a compact forest file in format version N) and forest_vN.npz (what the
saved forest predicts), for test_tree_compact's checks that files saved by earlier forgeml still
load. Run once per version with forgeml at the last commit that wrote it:
``PYTHONPATH=python python tests/golden/make_forest_golden.py N`` (version 1: commit 1339773;
version 2: commit 26e2993). Version 2's forest is deeper than version 1's: its trees go past the
top blocks version 3 adds."""

import pathlib
import sys

import numpy as np

from forgeml.ensemble import RandomForestClassifier

HERE = pathlib.Path(__file__).parent
SHAPES = {1: (90, 3, 4), 2: (300, 4, 9)}  # version: (rows, trees, max_depth)


def main(version: int):
    rows, trees, depth = SHAPES[version]
    rng = np.random.default_rng(7)
    X = rng.standard_normal((rows, 5)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    y = np.array(["ant", "bee", "cat"])[(np.nan_to_num(X[:, 0]) > 0).astype(int) + (np.nan_to_num(X[:, 2]) > 0.5)]
    est = RandomForestClassifier(n_estimators=trees, max_depth=depth, random_state=0).fit(X, y)
    est.save(HERE / f"forest_v{version}.fgf")
    Xq = rng.standard_normal((20, 5)).astype(np.float32)
    Xq[rng.random(Xq.shape) < 0.1] = np.nan
    f = est._forest
    np.savez(
        HERE / f"forest_v{version}.npz",
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
    main(int(sys.argv[1]))
