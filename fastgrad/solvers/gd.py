"""Gradient descent with a backtracking line search.

Plain gradient descent is the un-accelerated, penalty-free special case of the
proximal gradient method, so it is implemented once, there: this module only
fixes the options (no momentum, no proximal operator).
"""
from .proxgrad import proximal_gradient

__all__ = ["gradient_descent"]


def gradient_descent(fun, x0, *, fun_value=None, step=None, max_iter=1000, tol=1e-8,
                     gtol=1e-5, max_backtrack=60, callback=None, verbose=False, warn=True,
                     name="gradient_descent"):
    """Minimise a smooth function by gradient descent with backtracking.

    Each step is ``x - g / L``; the local Lipschitz estimate ``L`` doubles until
    the sufficient-decrease condition ``f(x_new) <= f(x) - ||g||^2 / (2L)`` holds
    and shrinks by 10% after every accepted step, so the step size adapts to
    the local curvature.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, grad)`` on a flat float64 vector.
    x0 : ndarray, shape (m,)
        Starting point (not modified).
    fun_value : callable, optional
        ``fun_value(x) -> f``, a cheaper value-only evaluation for the line search.
    step : float, optional
        Initial step ``1/L``; estimated from the gradient by default.
    max_iter : int, default=1000
    tol : float, default=1e-8
        Relative objective change to stop.
    gtol : float, default=1e-5
        Also required: sup-norm of the gradient at most ``gtol * max(1, |g0|)``.
    max_backtrack : int, default=60
    callback : callable, optional
        ``callback(iteration, x)``; returning ``True`` stops.
    verbose, warn : bool
        Progress output; :class:`fastgrad.ConvergenceWarning` at ``max_iter``.
    name : str

    Returns
    -------
    SolverResult

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad.solvers import gradient_descent
    >>> res = gradient_descent(lambda x: (float(x @ x), 2 * x), np.ones(3))
    >>> bool(np.allclose(res.x, 0.0))
    True
    """
    return proximal_gradient(fun, x0, fun_value=fun_value, step=step, accelerate=False,
                             max_iter=max_iter, tol=tol, gtol=gtol, max_backtrack=max_backtrack,
                             callback=callback, verbose=verbose, warn=warn, name=name)
