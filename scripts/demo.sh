#!/usr/bin/env bash
# Install fastgrad with plotting into ./.venv and fit the HLSM to the bundled Aarhus CS network,
# choosing the latent dimension and lam by 5-fold cross-validation on held-out pairs
# (prints the candidates' held-out scores and the cross-validated AUC; writes positions,
# the result and two plots to results/).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q -e ".[plot,progress]"
python -m fastgrad hlsm --dataset aucs --select --out results/ "$@"
