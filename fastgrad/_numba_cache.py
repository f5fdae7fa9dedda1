"""Whether a kernel has Numba cache files, answered without importing numba.

The command line decides at its first step, before it imports numba (about 0.4 s), whether
its first fit will compile (see :mod:`fastgrad.hlsm._plotjob`). This module looks for the
index file (``<module>.<qualname>-<line>.py<XY>.nbi``) where Numba's cache locators put it:
``NUMBA_CACHE_DIR`` if set, else the ``__pycache__`` folder beside the source when it is
writable, else the user-wide cache folder. Finding an index does not prove that it holds
an entry for this machine and these types: a wrong "cached" answer only costs the speed-up,
never a result.
"""
import glob
import hashlib
import os
import sys

__all__ = ["has_cache_index"]


def _subpath(py_file):
    # numba.core.caching._CacheLocator.get_suitable_cache_subpath
    folder = os.path.dirname(os.path.abspath(py_file))
    return os.path.split(folder)[-1] + "_" + hashlib.sha1(folder.encode()).hexdigest()


def _cache_dirs(py_file):
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        return [os.path.join(env, _subpath(py_file))]
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [os.path.join(os.path.dirname(os.path.abspath(py_file)), "__pycache__"),
            os.path.join(xdg, "numba", _subpath(py_file))]


def has_cache_index(py_file, qualname):
    """True if a Numba cache index of function ``qualname`` defined in ``py_file`` exists."""
    stem = os.path.splitext(os.path.basename(py_file))[0]
    name = f"{stem}.{qualname}-*.py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}.nbi"
    return any(glob.glob(os.path.join(glob.escape(d), name)) for d in _cache_dirs(py_file))
