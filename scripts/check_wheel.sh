#!/usr/bin/env bash
# Build the wheel, install it (not editable, with the plot extra) into a fresh virtual
# environment and run the HLSM demo from it outside the source tree, so that missing
# package data or an undeclared dependency fails. Used by .ci/run.
#   PYTHON   interpreter that builds the wheel and the venv (default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
PYTHON=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/fastgrad-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "-- building the wheel"
# -v shows the build backend's output, where setuptools prints its warnings
if ! "$PYTHON" -m pip wheel -v --no-deps --wheel-dir "$work/dist" . > "$work/build.log" 2>&1; then
    cat "$work/build.log" >&2
    exit 1
fi
if grep -qiE "SetuptoolsDeprecationWarning|_DeprecatedConfig" "$work/build.log"; then
    echo "check_wheel: the build printed a setuptools deprecation warning" >&2
    exit 1
fi
wheel=$(ls "$work"/dist/fastgrad-*.whl)
echo "   $(basename "$wheel")"
# list once into a file: `zipfile -l | grep -q` breaks the pipe under pipefail
"$PYTHON" -m zipfile -l "$wheel" > "$work/wheel_files.txt"
for f in fastgrad/datasets/data/aucs.mpx fastgrad/datasets/data/README.md; do
    grep -q "$f" "$work/wheel_files.txt" || { echo "check_wheel: $f missing from the wheel" >&2; exit 1; }
done

echo "-- installing it into a fresh virtual environment"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q "${wheel}[plot]"

echo "-- running the demo from the installed wheel, outside the source tree"
run=$(mktemp -d "$work/run.XXXXXX")
cd "$run"
# only the installed package must be importable: no source tree on the path
env -u PYTHONPATH NUMBA_CACHE_DIR="$work/numba_cache" MPLBACKEND=Agg \
    "$work/venv/bin/python" - <<'PY'
import os, sys, fastgrad
loc = os.path.dirname(fastgrad.__file__)
assert os.path.realpath(loc).startswith(os.path.realpath(sys.prefix)), f"fastgrad imported from {loc}"
fastgrad.show_versions()
PY
start=$(date +%s)
env -u PYTHONPATH NUMBA_CACHE_DIR="$work/numba_cache" MPLBACKEND=Agg \
    "$work/venv/bin/python" -m fastgrad hlsm --dataset aucs --lam 10 --out out/ | tail -3
echo "   cold-cache demo: $(( $(date +%s) - start )) s"
for f in out/hlsm_aucs_plot.png out/hlsm_aucs_positions.csv out/hlsm_aucs_result.npz; do
    [ -s "$f" ] || { echo "check_wheel: the demo did not write $f" >&2; exit 1; }
done
env -u PYTHONPATH "$work/venv/bin/fastgrad" --help >/dev/null
echo "check_wheel: the installed wheel runs the demo ($src)"
