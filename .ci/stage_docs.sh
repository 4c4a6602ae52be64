#!/usr/bin/env bash
# CI stage: build the docs site (MkDocs + mkdocstrings, API pages from the docstrings, benchmark
# tables and plots from bench/results) with warnings as errors (mkdocs.yml: strict).
# Usage: .ci/stage_docs.sh PYTHON   (the CI venv's python; the docs tools go into .venv-docs,
# which sees that venv's packages). Output: build/site. About 1-2 min, most of it pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:?usage: .ci/stage_docs.sh PYTHON}"
"$PY" -m venv --system-site-packages .venv-docs
.venv-docs/bin/pip install -q "mkdocs>=1.6,<2" "mkdocstrings[python]>=0.26" matplotlib
.venv-docs/bin/mkdocs --version
.venv-docs/bin/mkdocs build --strict
echo "docs: ok ($(find build/site -name '*.html' | wc -l) pages in build/site)"
