"""fastgrad.show_versions: content checked against the modules themselves."""
import re
import subprocess
import sys

import pytest

import fastgrad
from fastgrad import _show_versions


def _field(out, key):
    m = re.search(rf"^\s+{re.escape(key)}: (.*)$", out, flags=re.M)
    assert m, f"{key!r} missing from show_versions output:\n{out}"
    return m.group(1)


def test_show_versions_reports_installed_versions(capsys):
    import llvmlite
    import numba
    import numpy
    import scipy

    fastgrad.show_versions()
    out = capsys.readouterr().out
    assert _field(out, "fastgrad") == fastgrad.__version__
    assert _field(out, "numpy") == numpy.__version__
    assert _field(out, "scipy") == scipy.__version__
    assert _field(out, "numba") == numba.__version__
    assert _field(out, "llvmlite") == llvmlite.__version__
    assert _field(out, "python").startswith(".".join(map(str, sys.version_info[:3])))
    assert _field(out, "num threads") == str(numba.get_num_threads())
    assert _field(out, "threading layer") == numba.threading_layer()
    assert _field(out, "platform")
    for section in ("System:", "Required dependencies:", "Numba:", "Optional dependencies:"):
        assert section in out


def test_optional_dependency_not_installed(capsys, monkeypatch):
    monkeypatch.setattr(_show_versions, "_OPTIONAL",
                        _show_versions._OPTIONAL + ("fastgrad-no-such-distribution",))
    fastgrad.show_versions()
    out = capsys.readouterr().out
    assert _field(out, "fastgrad-no-such-distribution") == "not installed"
    try:
        import matplotlib
    except ImportError:
        assert _field(out, "matplotlib") == "not installed"
    else:
        assert _field(out, "matplotlib") == matplotlib.__version__


def test_exported_lazily():
    assert "show_versions" in fastgrad.__all__
    assert "show_versions" in dir(fastgrad)
    assert fastgrad.show_versions is _show_versions.show_versions


def test_import_fastgrad_stays_light_and_show_versions_imports_no_optional():
    code = (
        "import sys, fastgrad\n"
        "assert 'numba' not in sys.modules, 'import fastgrad imported numba'\n"
        "fastgrad.show_versions()\n"
        "heavy = [m for m in ('dask', 'distributed', 'matplotlib', 'sklearn', 'pandas', 'networkx')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "fastgrad:" in r.stdout


def test_unknown_attribute_still_raises():
    with pytest.raises(AttributeError, match="no_such_thing"):
        fastgrad.no_such_thing
