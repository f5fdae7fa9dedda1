"""Generic optimisers, each written once and shared by every model.

All solvers work on a flat float64 parameter vector and return a
:class:`SolverResult`. Importing this package does not import SciPy: the
solvers built on it (:func:`newton`'s Cholesky factorisation, :func:`lbfgs`)
import it when first called.
"""
from ._common import SolverResult
from .proxgrad import proximal_gradient
from .newton import newton
from .lbfgs import lbfgs
from .gd import gradient_descent
from .momentum import heavy_ball
from .sgd import sgd

__all__ = ["SolverResult", "proximal_gradient", "newton", "lbfgs",
           "gradient_descent", "heavy_ball", "sgd"]
