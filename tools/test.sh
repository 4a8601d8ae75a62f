#!/usr/bin/env bash
# Run every package's tests/ and the top-level tests/ with pytest (in parallel).
# Extra arguments go to pytest, e.g. `tools/test.sh -k registry`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${NNI_VENV:-$(pwd)/.venv}
[ -x "$VENV/bin/python" ] || bash tools/setup.sh
DIRS=()
while read -r p; do
  case "$p" in ''|'#'*) continue;; esac
  [ -d "$p/tests" ] && DIRS+=("$p/tests")
done < tools/packages.txt
DIRS+=(tests)
WORKERS=${NNI_TEST_WORKERS:-auto}
exec "$VENV/bin/python" -m pytest -n "$WORKERS" --dist loadfile "${DIRS[@]}" "$@"
