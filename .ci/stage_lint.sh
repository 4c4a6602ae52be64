#!/usr/bin/env bash
# CI stage: ruff lint + format check of python/, tests/ and bench/ (configured in pyproject.toml).
# Usage: .ci/stage_lint.sh PYTHON   (the CI venv's python; ruff goes into its own venv, .venv-lint)
# About 10 s with the wheel cached; ruff itself checks the tree in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:?usage: .ci/stage_lint.sh PYTHON}"
"$PY" -m venv .venv-lint
.venv-lint/bin/pip install -q "ruff==0.17.6" "mypy==2.4.1" "clang-format==23.1.5"
.venv-lint/bin/ruff --version
.venv-lint/bin/ruff check python tests bench docs/hooks.py
.venv-lint/bin/ruff format --check python tests bench docs/hooks.py
.venv-lint/bin/mypy  # python/forgeml, configured in pyproject.toml [tool.mypy]
# C++ / CUDA: .clang-format's style; .clang-format-ignore lists the files older than the check
find csrc \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.inc' \) -print0 |
  xargs -0 .venv-lint/bin/clang-format --dry-run -Werror
echo "lint: ok"
