"""Limited-memory BFGS for smooth objectives (wraps SciPy's L-BFGS-B)."""
import numpy as np

from .._validation import check_scalar
from ._common import Progress, SolverResult, warn_not_converged

__all__ = ["lbfgs"]


class _Stop(Exception):
    pass


def lbfgs(fun, x0, *, max_iter=1000, tol=1e-10, gtol=1e-8, m=10, callback=None,
          verbose=False, warn=True, name="lbfgs"):
    """Minimise a smooth function by L-BFGS.

    A thin wrapper around ``scipy.optimize.minimize(method="L-BFGS-B")``
    (without bounds) that follows the fastgrad solver conventions: flat float64
    vector in, :class:`SolverResult` out, an objective history, ``callback``
    and ``verbose`` support and a :class:`fastgrad.ConvergenceWarning` when
    ``max_iter`` is reached.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, grad)``: objective value (float) and gradient (1-D).
    x0 : ndarray, shape (m,)
        Starting point (not modified).
    max_iter : int, default=1000
        Maximum number of iterations.
    tol : float, default=1e-10
        Stop when the relative objective change
        ``(f_old - f_new) / max(|f_old|, |f_new|, 1)`` is at most ``tol``
        (SciPy's ``ftol``).
    gtol : float, default=1e-8
        Stop when ``max|grad| <= gtol * max(1, max|grad(x0)|)``.
    m : int, default=10
        Number of stored correction pairs.
    callback : callable, optional
        ``callback(iteration, x)``; returning ``True`` stops the solver.
    verbose : bool, default=False
        Show progress (tqdm if installed, else printed lines).
    warn : bool, default=True
        Emit :class:`fastgrad.ConvergenceWarning` if ``max_iter`` is reached.
    name : str
        Name used in messages.

    Returns
    -------
    SolverResult
        ``history[0]`` is the starting objective, then one value per
        iteration. ``info`` holds ``n_fev`` (function-and-gradient
        evaluations), ``grad_norm`` and SciPy's ``status``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad.solvers import lbfgs
    >>> res = lbfgs(lambda x: (float((x - 3.0) @ (x - 3.0)), 2 * (x - 3.0)), np.zeros(4))
    >>> bool(np.allclose(res.x, 3.0))
    True
    """
    max_iter = check_scalar(max_iter, "max_iter", kind="int", lo=0)
    tol = check_scalar(tol, "tol", lo=0.0)
    gtol = check_scalar(gtol, "gtol", lo=0.0)
    m = check_scalar(m, "m", kind="int", lo=1)
    x = np.array(x0, dtype=np.float64, copy=True).ravel()
    cache = {"x": None, "f": None, "g": None, "n": 0}

    def fg(v):
        cache["n"] += 1
        f, g = fun(v)
        f = float(f)
        g = np.asarray(g, dtype=np.float64).ravel()
        cache["x"], cache["f"], cache["g"] = v.copy(), f, g
        return f, g

    f0, g0 = fg(x)
    if not np.isfinite(f0) or not np.all(np.isfinite(g0)):
        raise ValueError(f"{name}: the objective or its gradient is not finite at the starting point")
    g0norm = float(np.max(np.abs(g0))) if g0.size else 0.0
    history = [f0]
    state = {"it": 0, "stopped": False}
    progress = Progress(verbose, max_iter, name)

    def cb(xk):
        state["it"] += 1
        if cache["x"] is not None and np.array_equal(cache["x"], xk):
            fk = cache["f"]
        else:
            fk = fg(xk)[0]
        history.append(fk)
        progress.update(state["it"], fk)
        if callback is not None and callback(state["it"], xk.copy()):
            state["stopped"] = True
            state["x"], state["f"] = xk.copy(), fk
            raise _Stop

    if max_iter == 0 or g0norm == 0.0:
        progress.close()
        conv = g0norm <= gtol * max(1.0, g0norm)
        if not conv and warn:
            warn_not_converged(name, max_iter)
        return SolverResult(x=x, objective=f0, n_iter=0, converged=bool(conv),
                            history=np.asarray(history), message="no iterations",
                            info={"n_fev": cache["n"], "grad_norm": g0norm, "status": None})
    options = {"maxiter": max_iter, "maxcor": m, "ftol": tol,
               "gtol": gtol * max(1.0, g0norm), "maxfun": max(15000, 20 * max_iter),
               "maxls": 50}
    status = None
    from scipy.optimize import minimize  # here: importing scipy.optimize takes ~0.4 s
    try:
        res = minimize(fg, x, jac=True, method="L-BFGS-B", callback=cb, options=options)
        x, f, status, message = res.x, float(res.fun), int(res.status), str(res.message)
    except _Stop:
        x, f, message = state["x"], state["f"], "stopped by callback"
    finally:
        progress.close()
    if cache["x"] is None or not np.array_equal(cache["x"], x):
        f, g = fg(x)
    else:
        g = cache["g"]
    gnorm = float(np.max(np.abs(g))) if g.size else 0.0
    n_iter = state["it"]
    if state["stopped"]:
        converged = False
    elif status == 0:
        converged = True
    elif status == 2 and gnorm <= 1e3 * gtol * max(1.0, g0norm):
        # ABNORMAL line search at a point that is already (almost) stationary:
        # no further decrease is possible at machine precision
        converged = True
        message = "no further decrease possible at machine precision"
    else:
        converged = False
    if status == 1 and warn:
        warn_not_converged(name, max_iter)
    elif not converged and not state["stopped"] and warn:
        import warnings

        from .._warnings import ConvergenceWarning
        warnings.warn(f"{name} stopped without converging: {message}", ConvergenceWarning,
                      stacklevel=2)
    return SolverResult(x=np.asarray(x, dtype=np.float64), objective=f, n_iter=n_iter,
                        converged=bool(converged), history=np.asarray(history, dtype=np.float64),
                        message=message, info={"n_fev": cache["n"], "grad_norm": gnorm,
                                               "status": status})
