"""Heavy-ball (Polyak) momentum gradient descent with backtracking and restart."""
import numpy as np

from .._validation import check_scalar
from ._common import Progress, SolverResult, relative_change, warn_not_converged
from .proxgrad import _initial_lipschitz

__all__ = ["heavy_ball"]


def heavy_ball(fun, x0, *, momentum=0.9, fun_value=None, step=None, max_iter=1000, tol=1e-8,
               gtol=1e-5, max_backtrack=60, callback=None, verbose=False, warn=True,
               name="heavy_ball"):
    """Minimise a smooth function by Polyak's heavy-ball method.

    ``x_{k+1} = x_k - g_k / L + momentum * (x_k - x_{k-1})``. The step ``1/L``
    comes from a backtracking line search on the plain gradient step
    (``L`` doubles until ``f(x - g/L) <= f(x) - ||g||^2/(2L)``, then shrinks
    by 10% per iteration). If adding the momentum term would give a higher
    objective than the plain step, the momentum is dropped for that step
    (a restart), so the objective never increases.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, grad)`` on a flat float64 vector.
    x0 : ndarray, shape (m,)
        Starting point (not modified).
    momentum : float, default=0.9
        Heavy-ball coefficient in ``[0, 1)``; 0 gives gradient descent.
    fun_value : callable, optional
        ``fun_value(x) -> f`` for the line search.
    step : float, optional
        Initial step ``1/L``.
    max_iter : int, default=1000
    tol : float, default=1e-8
        Relative objective change to stop.
    gtol : float, default=1e-5
        Also required: ``max|grad| <= gtol * max(1, max|grad(x0)|)``.
    max_backtrack : int, default=60
    callback : callable, optional
        ``callback(iteration, x)``; returning ``True`` stops.
    verbose, warn : bool
    name : str

    Returns
    -------
    SolverResult
        ``info`` holds ``step``, ``n_fev``, ``n_gev`` and ``n_restarts``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad.solvers import heavy_ball
    >>> A = np.diag([1.0, 10.0])
    >>> res = heavy_ball(lambda x: (0.5 * x @ A @ x, A @ x), np.ones(2))
    >>> bool(np.allclose(res.x, 0.0, atol=1e-4))
    True
    """
    momentum = check_scalar(momentum, "momentum", lo=0.0, hi=1.0, hi_open=True)
    max_iter = check_scalar(max_iter, "max_iter", kind="int", lo=0)
    tol = check_scalar(tol, "tol", lo=0.0)
    counts = {"fev": 0, "gev": 0}

    def fg(v):
        counts["gev"] += 1
        f, g = fun(v)
        return float(f), np.asarray(g, dtype=np.float64).ravel()

    def fv(v):
        counts["fev"] += 1
        return float(fun_value(v)) if fun_value is not None else float(fun(v)[0])

    x = np.array(x0, dtype=np.float64, copy=True).ravel()
    f, g = fg(x)
    if not np.isfinite(f):
        raise ValueError(f"{name}: the objective is not finite at the starting point")
    L = 1.0 / step if step is not None else _initial_lipschitz(fg, x, g)
    gscale = max(1.0, float(np.max(np.abs(g))) if g.size else 0.0)
    history = [f]
    x_prev = x
    converged = False
    message = "max_iter reached"
    restarts = 0
    rel = np.inf
    progress = Progress(verbose, max_iter, name)
    it = 0
    try:
        while it < max_iter:
            gnorm = float(np.max(np.abs(g))) if g.size else 0.0
            if it > 0 and rel <= tol and (gtol is None or gnorm <= gtol * gscale):
                converged = True
                message = "relative objective change and gradient below tolerance"
                break
            gg = float(g @ g)
            if gg == 0.0:
                converged = True
                message = "zero gradient"
                break
            accepted = False
            for _ in range(max_backtrack):
                x_gd = x - g / L
                f_gd = fv(x_gd)
                if f_gd <= f - 0.5 * gg / L + 1e-12 * abs(f):
                    accepted = True
                    break
                L *= 2.0
            if not accepted:
                message = "line search failed"
                break
            x_new = x_gd + momentum * (x - x_prev) if momentum > 0.0 else x_gd
            f_new, g_new = fg(x_new)
            if not f_new <= f_gd:
                restarts += 1
                x_new = x_gd
                f_new, g_new = fg(x_new)
                x = x_new  # drop the momentum memory
            if f_new > f:
                converged = True
                message = "no further decrease possible at machine precision"
                break
            it += 1
            rel = relative_change(f, f_new)
            x_prev, x, f, g = x, x_new, f_new, g_new
            history.append(f)
            progress.update(it, f)
            if callback is not None and callback(it, x):
                message = "stopped by callback"
                break
            L *= 0.9
        else:
            gnorm = float(np.max(np.abs(g))) if g.size else 0.0
            if it > 0 and rel <= tol and (gtol is None or gnorm <= gtol * gscale):
                converged = True
                message = "relative objective change and gradient below tolerance"
    finally:
        progress.close()
    if not converged and warn and message == "max_iter reached":
        warn_not_converged(name, max_iter)
    return SolverResult(x=x, objective=f, n_iter=it, converged=converged,
                        history=np.asarray(history), message=message,
                        info={"step": 1.0 / L, "n_fev": counts["fev"], "n_gev": counts["gev"],
                              "n_restarts": restarts})
