#!/usr/bin/env bash
# CI stage: the scale-out engines (dask.distributed, Open MPI + mpi4py) and their tests.
# Usage: .ci/stage_scaleout.sh PYTHON   (the CI venv's python, with forgeml[test] installed)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:?usage: $0 PYTHON}
if ! command -v mpirun >/dev/null 2>&1 || ! command -v mpicc >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q openmpi-bin libopenmpi-dev   # mpicc: mpi4py builds against it
fi
# The floors matter: unbounded, pip pairs the newest dask with a 2021 distributed (whose loose pin
# allows it) that no longer imports; a modern distributed pins dask to its own release.
"$PY" -m pip install -q "dask[array,dataframe]>=2024.1" "distributed>=2024.1" mpi4py   # forgeml's [dask] and [mpi] extras
# Open MPI refuses root unless told; --oversubscribe is passed by the tests (2 ranks on any machine)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
"$PY" -m pytest tests/test_dask.py tests/test_distributed.py -q --durations=10
