"""Versions of fastgrad, its dependencies and the machine, for bug reports.

Modelled on :func:`sklearn.show_versions`. Versions come from the installed
distributions' metadata, so an optional dependency is never imported (importing
dask or matplotlib would cost seconds); only NumPy, SciPy and Numba are imported,
Numba to report its threading layer and thread count (which starts Numba's thread
pool, but compiles nothing).
"""
import importlib.metadata
import os
import platform
import sys

# Required dependencies, then the optional ones (the extras of pyproject.toml).
_REQUIRED = ("numpy", "scipy", "numba", "llvmlite")
_OPTIONAL = (
    "matplotlib", "tqdm", "networkx", "scikit-learn", "threadpoolctl", "pandas",
    "dask", "distributed", "pip", "setuptools",
)


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _sys_info():
    """Python, executable and platform."""
    import fastgrad
    return {
        "fastgrad": fastgrad.__version__,
        "location": os.path.dirname(os.path.abspath(fastgrad.__file__)),
        "python": sys.version.replace("\n", " "),
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu count": str(os.cpu_count()),
    }


def _deps_info():
    """Versions of the required and optional dependencies (None if not installed)."""
    return {name: _version(name) for name in _REQUIRED + _OPTIONAL}


def _numba_info():
    """Numba's threading layer, thread counts and cache directory."""
    import numba
    info = {}
    # get_num_threads() launches the thread pool, after which threading_layer() is known.
    info["num threads"] = str(numba.get_num_threads())
    info["NUMBA_NUM_THREADS"] = str(numba.config.NUMBA_NUM_THREADS)
    try:
        info["threading layer"] = numba.threading_layer()
    except ValueError:  # pragma: no cover - pool not started
        info["threading layer"] = f"not initialised (configured: {numba.config.THREADING_LAYER})"
    info["threading layer configured"] = str(numba.config.THREADING_LAYER)
    info["cache dir"] = os.environ.get("NUMBA_CACHE_DIR") or "(default: __pycache__ next to the sources)"
    return info


def _blas_info():
    """BLAS libraries loaded by NumPy/SciPy (needs threadpoolctl), else an empty list."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    import numpy  # noqa: F401  (load NumPy's and SciPy's BLAS before asking)
    import scipy.linalg  # noqa: F401
    return [
        {
            "internal_api": d.get("internal_api"),
            "num_threads": d.get("num_threads"),
            "version": d.get("version"),
            "filepath": d.get("filepath"),
        }
        for d in threadpool_info()
        if d.get("user_api") == "blas"
    ]


def show_versions():
    """Print fastgrad's version, the platform and the versions of its dependencies.

    Paste the output into a bug report. Prints, in sections: fastgrad (version and
    install location), Python and the platform; NumPy, SciPy, Numba and llvmlite;
    Numba's threading layer and thread count; the optional dependencies (a version
    or ``not installed``); and, if threadpoolctl is installed, the BLAS libraries
    loaded by NumPy and SciPy.

    Nothing is compiled. Optional dependencies are looked up in the installed
    package metadata, not imported.

    Examples
    --------
    >>> import fastgrad
    >>> fastgrad.show_versions()  # doctest: +ELLIPSIS
    <BLANKLINE>
    System:
    ...fastgrad: 0.1...
    """
    sections = [
        ("System", _sys_info()),
        ("Required dependencies", {k: v for k, v in _deps_info().items() if k in _REQUIRED}),
        ("Numba", _numba_info()),
        ("Optional dependencies", {k: v for k, v in _deps_info().items() if k in _OPTIONAL}),
    ]
    lines = []
    for title, info in sections:
        lines.append("")
        lines.append(f"{title}:")
        width = max(len(k) for k in info)
        for key, value in info.items():
            lines.append(f"    {key:>{width}}: {value if value is not None else 'not installed'}")
    blas = _blas_info()
    if blas:
        lines.append("")
        lines.append("BLAS (threadpoolctl):")
        for d in blas:
            lines.append(f"    {d['internal_api']} {d['version']}, {d['num_threads']} threads: {d['filepath']}")
    print("\n".join(lines))
