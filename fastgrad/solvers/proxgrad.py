"""Accelerated proximal gradient (FISTA) with backtracking and restart.

Written once for every model: it only sees a flat parameter vector, a smooth
function with its gradient, a proximal operator and the penalty value.
"""
import math

import numpy as np

from .._validation import check_scalar
from ._common import Progress, SolverResult, relative_change, warn_not_converged

__all__ = ["proximal_gradient"]


def proximal_gradient(fun, x0, *, prox=None, penalty=None, fun_value=None, step=None,
                      accelerate=True, max_iter=1000, tol=1e-8, gtol=1e-5,
                      max_backtrack=60, callback=None, verbose=False, warn=True,
                      gmap_ref=None, name="proximal_gradient"):
    """Minimise ``f(x) + g(x)`` by (accelerated) proximal gradient descent.

    Monotone FISTA: momentum as Beck & Teboulle (2009), a backtracking line
    search on the local Lipschitz constant (which is also allowed to shrink
    between iterations), and a restart whenever an accelerated step would raise
    the objective, so the recorded objective never increases.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, grad)``: smooth part and its gradient (1-D arrays).
    x0 : ndarray, shape (m,)
        Starting point (not modified).
    prox : callable, optional
        ``prox(v, t) -> argmin_x 0.5||x - v||^2 + t g(x)``. ``None`` means g = 0.
    penalty : callable, optional
        ``penalty(x) -> g(x)`` (needed with ``prox`` for the objective value).
    fun_value : callable, optional
        ``fun_value(x) -> f``, a cheaper value-only evaluation used by the line
        search. Defaults to ``fun(x)[0]``.
    step : float, optional
        Initial step size ``1/L``. Default: estimated from the gradient.
    accelerate : bool, default=True
        FISTA momentum with restart; ``False`` gives plain proximal gradient.
    max_iter : int, default=1000
        Maximum number of iterations.
    tol : float, default=1e-8
        Relative objective change ``|F_old - F_new| / max(1, |F|)`` to stop.
    gtol : float, default=1e-5
        Also required to stop: the sup-norm of the gradient mapping
        ``L (y - x_new)`` at most ``gtol * max(1, |its first value|)``.
        ``None`` disables this check.
    max_backtrack : int, default=60
        Line-search halvings per iteration before giving up.
    callback : callable, optional
        ``callback(iteration, x)``; returning ``True`` stops the solver.
    verbose : bool, default=False
        Show progress (tqdm if installed, else printed lines).
    warn : bool, default=True
        Emit :class:`fastgrad.ConvergenceWarning` if ``max_iter`` is reached.
    gmap_ref : float, optional
        The scale of the ``gtol`` test in place of ``max(1, first gradient mapping)``:
        a solve resumed from another one's end point passes that one's
        ``info["gmap_ref"]``, so it stops where a single uninterrupted run would.
    name : str
        Name used in messages.

    Returns
    -------
    SolverResult
        ``info`` holds ``step`` (final 1/L), ``n_fev``, ``n_gev`` and ``gmap_ref``
        (the scale the ``gtol`` test used).
    """
    max_iter = check_scalar(max_iter, "max_iter", kind="int", lo=0)
    tol = check_scalar(tol, "tol", lo=0.0)
    if gmap_ref is not None:
        gmap_ref = check_scalar(gmap_ref, "gmap_ref", lo=0.0, lo_open=True)
    if prox is None:
        prox = _identity_prox
    if penalty is None:
        penalty = _zero
    if fun_value is None:
        fun_value = lambda v: fun(v)[0]  # noqa: E731
    counts = {"fev": 0, "gev": 0}

    def fg(v):
        counts["gev"] += 1
        f, g = fun(v)
        return float(f), np.asarray(g, dtype=np.float64)

    def fv(v):
        counts["fev"] += 1
        return float(fun_value(v))

    x = np.array(x0, dtype=np.float64, copy=True).ravel()
    fx, gx = fg(x)
    Fx = fx + float(penalty(x))
    if not np.isfinite(Fx):
        raise ValueError(f"{name}: the objective is not finite at the starting point")
    L = 1.0 / step if step is not None else _initial_lipschitz(fg, x, gx)
    history = [Fx]
    y, fy, gy = x, fx, gx
    t = 1.0
    gnorm0 = gmap_ref
    converged = False
    message = "max_iter reached"
    progress = Progress(verbose, max_iter, name)
    it = 0
    try:
        while it < max_iter:
            # backtracking line search on L at the extrapolated point y
            accepted = False
            for _ in range(max_backtrack):
                x_new = prox(y - gy / L, 1.0 / L)
                diff = x_new - y
                f_new = fv(x_new)
                quad = fy + float(gy @ diff) + 0.5 * L * float(diff @ diff)
                if f_new <= quad + 1e-12 * abs(fy) or not np.any(diff):
                    accepted = True
                    break
                L *= 2.0
            if not accepted:
                message = "line search failed"
                break
            F_new = f_new + float(penalty(x_new))
            gmap = L * float(np.max(np.abs(diff))) if diff.size else 0.0
            if F_new > Fx:
                if accelerate and y is not x:
                    # momentum overshot: restart from x with a plain step
                    t = 1.0
                    if gx is None:
                        fx, gx = fg(x)
                    y, fy, gy = x, fx, gx
                    continue
                converged = True
                message = "no further decrease possible at machine precision"
                break
            it += 1
            if accelerate:
                t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
                beta = (t - 1.0) / t_new
                # gradient-based restart (O'Donoghue & Candes 2015)
                if float(diff @ (x_new - x)) > 0.0:
                    beta, t_new = 0.0, 1.0
                t = t_new
            else:
                beta = 0.0
            rel = relative_change(Fx, F_new)
            x_old, x, Fx = x, x_new, F_new
            history.append(Fx)
            progress.update(it, Fx)
            if gnorm0 is None:
                gnorm0 = max(1.0, gmap)
            if rel <= tol and (gtol is None or gmap <= gtol * gnorm0):
                converged = True
                message = "relative objective change and gradient mapping below tolerance"
                break
            if callback is not None and callback(it, x):
                message = "stopped by callback"
                break
            if beta > 0.0:
                y = x + beta * (x - x_old)
                fy, gy = fg(y)
                fx, gx = f_new, None  # gradient at x computed only if a restart needs it
            else:
                fx, gx = fg(x)
                y, fy, gy = x, fx, gx
            L *= 0.9
    finally:
        progress.close()
    if not converged and it >= max_iter and warn and message == "max_iter reached":
        warn_not_converged(name, max_iter)
    return SolverResult(x=x, objective=Fx, n_iter=it, converged=converged,
                        history=np.asarray(history), message=message,
                        info={"step": 1.0 / L, "n_fev": counts["fev"], "n_gev": counts["gev"],
                              "gmap_ref": gnorm0})


def _identity_prox(v, t):
    return v


def _zero(x):
    return 0.0


def _initial_lipschitz(fg, x, g):
    """Estimate L from the gradient change along a small step."""
    gn = float(np.linalg.norm(g))
    if gn == 0.0 or not np.isfinite(gn):
        return 1.0
    h = 1e-4 * max(1.0, float(np.linalg.norm(x))) / gn
    _, g2 = fg(x - h * g)
    est = float(np.linalg.norm(g2 - g)) / (h * gn)
    return est if np.isfinite(est) and est > 0 else 1.0
