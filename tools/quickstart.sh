#!/usr/bin/env bash
# README quick start, command 1: set up .venv, then run a real example experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/python tools/run_example.py "$@"
