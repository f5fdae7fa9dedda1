#!/usr/bin/env bash
# Install fastgrad with its test extras into ./.venv and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[test,bench]"
python -m pytest "$@"
