#!/usr/bin/env bash
# CI stage: scikit-learn's own tree/forest test files on forgeml's classes (tests/sklearn_conformance).
# Usage: .ci/stage_sklearn_trees.sh PYTHON   (the CI venv's python, forgeml installed in it)
# Fails when fewer forgeml tests pass than FLOOR (measured on this branch; raise it as it grows).
# About 1 minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:?usage: $0 PYTHON}
FLOOR=1020
# the floor was measured with these installed (plot_tree and the dataframe tests need them)
"$PY" -m pip install -q matplotlib pandas
MPLBACKEND=Agg "$PY" tests/sklearn_conformance/run.py --floor "$FLOOR"
