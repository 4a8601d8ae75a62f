#!/usr/bin/env bash
# Run every package's tests/ and the top-level tests/ with pytest (in parallel).
# Extra arguments go to pytest, e.g. `tools/test.sh -k registry`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${NNI_VENV:-$(pwd)/.venv}
[ -x "$VENV/bin/python" ] || bash tools/setup.sh
# the tests start hundreds of manager and trial processes
NNI_VENV="$VENV" bash tools/compile-bytecode.sh
DIRS=()
while read -r p; do
  case "$p" in ''|'#'*) continue;; esac
  [ -d "$p/tests" ] && DIRS+=("$p/tests")
done < tools/packages.txt
DIRS+=(tests)
# one BLAS/OpenMP thread per worker: xdist already runs a worker per core, and oversubscribed
# threads made tiny torch loops up to 45x slower
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}
WORKERS=${NNI_TEST_WORKERS:-auto}
exec "$VENV/bin/python" -m pytest -n "$WORKERS" --dist loadfile "${DIRS[@]}" "$@"
