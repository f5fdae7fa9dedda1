#!/usr/bin/env bash
# Build the HTML documentation into docs/_build/html, warnings as errors.
# Needs the docs extra: pip install -e ".[docs]". Extra arguments go to sphinx-build.
set -euo pipefail
cd "$(dirname "$0")/.."
export MPLBACKEND=Agg
python -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
