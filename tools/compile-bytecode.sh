#!/usr/bin/env bash
# Bytecode of every package, current: editable installs never compile it, and with
# PYTHONDONTWRITEBYTECODE set (CI images often set it) every process, every trial included,
# would recompile each changed module at each import (~5 ms for nni.trial alone). Fast when current.
cd "$(dirname "$0")/.."
"${NNI_VENV:-$(pwd)/.venv}/bin/python" -m compileall -q -j 0 packages/*/src packages/training-services/*/src >/dev/null || true
