"""The Examples sections of the public modules' docstrings, run as doctests.

One test per docstring that has examples. Output is compared with ELLIPSIS and
NORMALIZE_WHITESPACE; ``# doctest: +SKIP`` marks what cannot run here.
Each docstring's examples must run within BUDGET seconds, not counting Numba
compilation (measured from Numba's compile events), so a cold cache does not
make a quick example look slow.
"""
import doctest
import importlib
import time
import warnings

import numpy as np
import pytest

# Every module of the package (the public ones and the private modules that define
# public names), found by walking it so the list follows the layout. fastgrad.dask
# needs a cluster for any example; its docstrings have none.
def _modules():
    import pkgutil

    import fastgrad
    names = ["fastgrad"]
    for info in pkgutil.walk_packages(fastgrad.__path__, "fastgrad."):
        if info.name.startswith("fastgrad.dask") or info.name == "fastgrad.__main__":
            continue
        names.append(info.name)
    return names


MODULES = _modules()

BUDGET = 10.0  # seconds per docstring, compilation excluded
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _collect():
    finder = doctest.DocTestFinder(exclude_empty=True)
    cases = []
    for name in MODULES:
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:  # optional dependency missing
            cases.append(pytest.param(name, None, marks=pytest.mark.skip(reason=str(exc)), id=name))
            continue
        for test in finder.find(mod, name):
            if test.examples:
                cases.append(pytest.param(name, test, id=test.name))
    return cases


@pytest.mark.parametrize("modname, test", _collect())
def test_docstring_examples(modname, test, monkeypatch, tmp_path):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)           # examples that write files write them here
    test.globs.setdefault("np", np)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out = []
    from numba.core import event
    t0 = time.perf_counter()
    with warnings.catch_warnings(), event.install_recorder("numba:compile") as rec:
        warnings.simplefilter("ignore")
        result = runner.run(test, out=out.append)
    elapsed = time.perf_counter() - t0
    compiling = _compile_seconds(rec.buffer)
    try:
        import matplotlib.pyplot as plt
        plt.close("all")
    except ImportError:
        pass
    assert result.failed == 0, "".join(out)
    assert elapsed - compiling < BUDGET, (
        f"{test.name}: examples took {elapsed:.1f} s of which {compiling:.1f} s compiling "
        f"(budget {BUDGET} s without compilation)")


def _compile_seconds(buffer):
    """Wall time covered by Numba compile events (nested compilations counted once)."""
    starts, spans = {}, []
    for ts, ev in buffer:
        key = (id(ev.data.get("dispatcher")), str(ev.data.get("args")))
        if ev.is_start:
            starts[key] = ts
        elif key in starts:
            spans.append((starts.pop(key), ts))
    total, end = 0.0, -float("inf")
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def test_compile_seconds_merges_nested_spans():
    class Ev:
        def __init__(self, d, start):
            self.data = {"dispatcher": d, "args": ()}
            self.is_start = start
    buf = [(0.0, Ev("a", True)), (1.0, Ev("b", True)), (2.0, Ev("b", False)),
           (3.0, Ev("a", False)), (5.0, Ev("c", True)), (5.5, Ev("c", False))]
    assert _compile_seconds(buf) == pytest.approx(3.5)


def test_the_collector_finds_examples():
    ids = [p.id for p in _collect()]
    assert "fastgrad._show_versions.show_versions" in ids
    assert any(i.startswith("fastgrad.glm.") for i in ids)
