"""Generic optimisers, each written once and shared by every model.

All solvers work on a flat float64 parameter vector and return a
:class:`SolverResult`.
"""
from ._common import SolverResult
from .proxgrad import proximal_gradient
from .newton import newton
from .lbfgs import lbfgs

__all__ = ["SolverResult", "proximal_gradient", "newton", "lbfgs"]
