"""Packaging metadata: SPDX licence, licence file, build requirements, declared imports.

The wheel itself is built, installed into a fresh virtual environment and run outside
the source tree by .ci/run; these are the quick static checks of the same promises.
"""
import ast
import importlib.metadata
import pathlib
import os
import re
import subprocess
import sys

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def _req_name(req):
    return re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_license_is_an_spdx_string_with_its_file():
    # A TOML table here makes setuptools >= 75 warn on every install (deprecated,
    # unsupported after 2027-02-18).
    assert PROJECT["license"] == "BSD-3-Clause"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause License" in text and "fastgrad developers" in text
    assert not any("License ::" in c for c in PROJECT.get("classifiers", [])), \
        "licence classifiers conflict with an SPDX licence expression"


def test_build_requires_setuptools_with_spdx_support():
    reqs = PYPROJECT["build-system"]["requires"]
    st = [r for r in reqs if _req_name(r) == "setuptools"]
    assert st, reqs
    m = re.search(r">=\s*(\d+)", st[0])
    assert m and int(m.group(1)) >= 77, st[0]   # license-files / SPDX: setuptools 77


def _third_party_imports():
    """Top-level names of every non-stdlib module imported anywhere in fastgrad/."""
    names = {}
    for path in (ROOT / "fastgrad").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods = [node.module]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top != "fastgrad" and top not in sys.stdlib_module_names:
                    names.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    return names


def test_every_imported_package_is_declared():
    declared = {_req_name(r) for r in PROJECT["dependencies"]}
    for reqs in PROJECT["optional-dependencies"].values():
        declared |= {_req_name(r) for r in reqs}
    # what the required dependencies bring along (llvmlite comes with numba)
    implied = set()
    for dep in PROJECT["dependencies"]:
        for r in importlib.metadata.requires(_req_name(dep)) or []:
            if "extra ==" not in r:
                implied.add(_req_name(r))
    dist_of = importlib.metadata.packages_distributions()
    undeclared = {}
    for top, files in _third_party_imports().items():
        dists = {d.lower().replace("_", "-") for d in dist_of.get(top, [top])}
        if not dists & (declared | implied):
            undeclared[top] = sorted(files)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_declared_extras_exist():
    extras = PROJECT["optional-dependencies"]
    for name in ("plot", "test", "docs", "dask", "sklearn"):
        assert name in extras, name
    docs = {_req_name(r) for r in extras["docs"]}
    assert {"sphinx", "numpydoc", "matplotlib"} <= docs


def test_package_data_files_exist():
    pkg_data = PYPROJECT["tool"]["setuptools"]["package-data"]["fastgrad.datasets"]
    data = ROOT / "fastgrad" / "datasets" / "data"
    for pattern in pkg_data:
        assert list(data.parent.glob(pattern)), pattern
    # every file the loaders read is bundled
    for f in ("aucs.mpx", "florentine.mpx", "krack_full_edges.csv", "krack_attributes.csv"):
        assert (data / f).is_file(), f


def test_version_matches_metadata():
    import fastgrad
    assert fastgrad.__version__ == PROJECT["version"]


def test_importing_solvers_and_models_leaves_scipy_optimize_and_linalg_unimported():
    # First-run cost: scipy.optimize takes ~0.4 s to import and scipy.linalg ~0.2 s, so the
    # solvers import them only when called (lbfgs, newton); a fresh interpreter shows it.
    code = ("import sys, fastgrad, fastgrad.solvers, fastgrad.hlsm, fastgrad.prox; "
            "from fastgrad.solvers import lbfgs, newton, proximal_gradient; "
            "print(sorted(m for m in ('scipy.optimize', 'scipy.linalg') if m in sys.modules))")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, cwd=str(ROOT))
    assert out.stdout.strip() == "[]", out.stdout
