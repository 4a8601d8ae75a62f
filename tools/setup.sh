#!/usr/bin/env bash
# Create .venv and install every package of the monorepo editable, with test dependencies.
# Safe to re-run: it does nothing when no pyproject.toml / requirement file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
VENV=${NNI_VENV:-$ROOT/.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CONSTRAINT="$ROOT/tools/constraints.txt"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
compile_bytecode() { NNI_VENV="$VENV" bash tools/compile-bytecode.sh; }
STAMP="$VENV/.nni-setup-stamp"
HASH=$(cat tools/constraints.txt tools/packages.txt tools/dev-requirements.txt pyproject.toml \
        $(sed -e '/^#/d' tools/packages.txt | sed 's|$|/pyproject.toml|') | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
  compile_bytecode
  echo "[setup] .venv is up to date"
  exit 0
fi
PIP="$VENV/bin/python -m pip"
# torch first, from the constraints file: nothing later may replace it with a CUDA build.
$PIP install -q "torch==2.13.0"
ARGS=()
while read -r p; do
  case "$p" in ''|'#'*) continue;; esac
  ARGS+=(-e "$p[test]")
done < tools/packages.txt
echo "[setup] installing $(( ${#ARGS[@]} / 2 )) packages editable"
$PIP install -q -r tools/dev-requirements.txt "${ARGS[@]}"
$PIP install -q --no-deps -e .
compile_bytecode
echo "$HASH" > "$STAMP"
echo "[setup] done: $VENV"
