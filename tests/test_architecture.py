"""The layout rules of CONTRIBUTING.md, checked on the source.

- no import cycle among fastgrad modules (every ``import`` statement counts, the
  lazy ones inside functions too), except through a package's own ``__init__``;
- the distributed back-ends (``fastgrad.dask``) import kernels, solvers and shared
  helpers, never a model front-end;
- ``fastgrad.kernels`` imports nothing else of fastgrad;
- importing a model family imports neither dask nor numba.
"""
import ast
import pathlib
import subprocess
import sys

import pytest

import fastgrad

ROOT = pathlib.Path(fastgrad.__file__).parent


def _module_name(path):
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(mod, is_pkg, node):
    """Absolute names of the fastgrad modules an import statement refers to."""
    out = []
    if isinstance(node, ast.Import):
        out = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = mod.split(".")
            base = base if is_pkg else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        out = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
    return [o for o in out if o.split(".")[0] == "fastgrad"]


def _graph():
    mods = _modules()
    graph = {}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            for name in _resolve(mod, is_pkg, node):
                if name in mods and name != mod:
                    deps.add(name)
        graph[mod] = deps
    return graph


def _cycles(graph, skip):
    """Strongly connected components with more than one module (Tarjan), ignoring ``skip`` nodes."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w in skip:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in graph:
        if v not in skip and v not in index:
            visit(v)
    return comps


def test_no_import_cycles():
    graph = _graph()
    packages = {m for m, p in _modules().items() if p.name == "__init__.py"}
    assert _cycles(graph, skip=packages) == []


def test_dask_back_ends_never_import_a_model_front_end():
    graph = _graph()
    front_ends = ("fastgrad.hlsm", "fastgrad.glm", "fastgrad.multinomial", "fastgrad.mf", "fastgrad.sklearn")
    for mod, deps in graph.items():
        if mod.startswith("fastgrad.dask.") or mod == "fastgrad.dask":
            if mod == "fastgrad.dask":
                continue  # its lazy entry points (fit_glm, ...) are the front-ends' dask paths
            bad = sorted(d for d in deps if d.startswith(front_ends))
            assert not bad, f"{mod} imports {bad}"


def test_kernels_import_nothing_else_of_fastgrad():
    graph = _graph()
    for mod, deps in graph.items():
        if mod.startswith("fastgrad.kernels"):
            assert all(d.startswith("fastgrad.kernels") for d in deps), (mod, deps)


@pytest.mark.parametrize("family", ["hlsm", "glm", "multinomial", "mf", "datasets", "solvers", "prox"])
def test_importing_a_family_imports_neither_dask_nor_numba(family):
    code = (f"import sys, fastgrad.{family}; "
            "print(any(m == 'dask' or m.startswith('dask.') for m in sys.modules), 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_old_kernel_names_are_deprecated_aliases():
    import numpy as np
    from numba import njit

    import fastgrad.kernels as K
    for old, new in (("fast_softplus_v2", "fast_softplus64"), ("fast_softplus_sigmoid_v2", "fast_softplus_sigmoid64")):
        with pytest.warns(DeprecationWarning, match=new):
            f = getattr(K, old)
        assert f is getattr(K, new)
        assert old not in K.__all__ and new in K.__all__
    with pytest.raises(AttributeError):
        K.no_such_kernel

    @njit
    def user(x):
        return K.fast_softplus64(x)

    assert abs(user(0.5) - np.logaddexp(0.0, 0.5)) < 1e-15


def test_public_names_resolve_and_readme_names_only_public_api():
    import importlib
    for mod in ("fastgrad.hlsm", "fastgrad.glm", "fastgrad.multinomial", "fastgrad.mf", "fastgrad.kernels",
                "fastgrad.solvers", "fastgrad.datasets", "fastgrad.sklearn", "fastgrad.plotting", "fastgrad.prox"):
        m = importlib.import_module(mod)
        for name in m.__all__:
            assert getattr(m, name) is not None, (mod, name)
    readme = (ROOT.parent / "README.md").read_text()
    import re
    private = sorted(set(re.findall(r"fastgrad(?:\.\w+)*\._\w+", readme)))
    assert private == [], private


def test_a_kernel_import_builds_only_its_own_module():
    code = ("import sys; from fastgrad.kernels import hlsm_nll; import fastgrad.kernels as K; "
            "print(sorted(m for m in sys.modules if m.startswith('fastgrad.kernels.'))); "
            "print(all(callable(getattr(K, n)) or isinstance(getattr(K, n), int) for n in K.__all__), "
            "sorted(K.__all__) == sorted(K._WHERE))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    first, second = out.splitlines()
    assert first == str(["fastgrad.kernels._math", "fastgrad.kernels._twins", "fastgrad.kernels.hlsm"])
    assert second.split() == ["True", "True"]


def test_every_kernel_module_lists_exactly_its_kernels():
    """``kernels._MODULES`` (the package's one list) against each module's own ``__all__``."""
    import importlib

    import fastgrad.kernels as K
    for mod, names in K._MODULES.items():
        m = importlib.import_module(f"fastgrad.kernels.{mod}")
        assert set(names) <= set(dir(m)), (mod, set(names) - set(dir(m)))
        own = set(getattr(m, "__all__", names)) - set(K._DEPRECATED)
        assert own == set(names), (mod, own ^ set(names))
    assert len(K.__all__) == len(set(K.__all__))
