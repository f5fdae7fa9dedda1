"""fastgrad: Numba-compiled kernels and generic solvers for four model families.

Model families (one public module each, imported lazily on first access):

- :mod:`fastgrad.hlsm` -- hierarchical latent space model for multiplex networks
- :mod:`fastgrad.glm` -- regularised linear and logistic regression
- :mod:`fastgrad.multinomial` -- multinomial logistic regression by Newton's method
- :mod:`fastgrad.mf` -- biased matrix factorisation by SGD

Building blocks: :mod:`fastgrad.kernels` (``@njit`` kernels, callable from
user ``@njit`` code), :mod:`fastgrad.prox` (proximal operators),
:mod:`fastgrad.solvers` (generic optimisers) and :mod:`fastgrad.datasets`.
:func:`fastgrad.show_versions` prints the versions of fastgrad and its
dependencies for bug reports.

Importing :mod:`fastgrad` compiles nothing and does not import numba.
"""
import importlib as _importlib

from ._warnings import ConvergenceWarning

__version__ = "0.1.0"

_SUBMODULES = {
    "hlsm", "glm", "multinomial", "mf", "kernels", "prox", "solvers",
    "datasets", "sklearn", "plotting",
}

__all__ = sorted(_SUBMODULES) + ["ConvergenceWarning", "gradcheck", "show_versions", "__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(f"fastgrad.{name}")
    if name == "gradcheck":
        from ._gradcheck import gradcheck
        return gradcheck
    if name == "show_versions":
        from ._show_versions import show_versions
        return show_versions
    raise AttributeError(f"module 'fastgrad' has no attribute {name!r}")


def __dir__():
    return __all__
