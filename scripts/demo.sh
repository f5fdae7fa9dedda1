#!/usr/bin/env bash
# Install fastgrad with plotting into ./.venv and fit the HLSM to the bundled Aarhus CS network.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[plot,progress]"
python -m fastgrad hlsm --dataset aucs --select-lam --out results/ "$@"
