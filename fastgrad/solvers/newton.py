"""Damped Newton's method with an Armijo line search and a safe Cholesky solve.

Written once for every model: it only sees a flat parameter vector, a function
returning the objective and its gradient, and a function returning the dense
Hessian.
"""
import numpy as np

from .._validation import check_scalar
from ._common import Progress, SolverResult, warn_not_converged

__all__ = ["newton", "newton_direction"]

_ARMIJO = 1e-4


def newton_direction(H, g, *, max_shift_tries=12):
    """Solve ``H d = -g`` by Cholesky, regularising ``H`` if necessary.

    If ``H`` is not numerically positive definite, ``tau * I`` is added with
    ``tau`` growing tenfold (starting at ``1e-10 * max(1, max|diag H|)``) until
    the factorisation succeeds; if it never does, or the result is not a
    descent direction, the steepest-descent direction ``-g`` is returned.

    Parameters
    ----------
    H : ndarray, shape (m, m)
        Symmetric Hessian (only the lower triangle is read). Not modified.
    g : ndarray, shape (m,)
        Gradient.
    max_shift_tries : int, default=12
        How many growing shifts ``tau`` to try.

    Returns
    -------
    d : ndarray, shape (m,)
        Search direction.
    shift : float
        The multiple of the identity that was added (0.0 if none, ``inf`` if
        the gradient direction was used).
    """
    from scipy.linalg import LinAlgError, cho_factor, cho_solve  # here: importing scipy.linalg takes ~0.2 s
    H = np.asarray(H, dtype=np.float64)
    m = g.shape[0]
    if H.shape != (m, m):
        raise ValueError(f"hess must return an array of shape ({m}, {m}), got {H.shape}")
    if not np.all(np.isfinite(H)):
        return -g, np.inf
    scale = max(1.0, float(np.max(np.abs(np.diag(H))))) if m else 1.0
    shift = 0.0
    for attempt in range(max_shift_tries + 1):
        A = H if shift == 0.0 else H + shift * np.eye(m)
        try:
            c = cho_factor(A, lower=True, check_finite=False)
            piv = np.diag(c[0])
            # reject factors whose pivots reveal numerical singularity
            ok = bool(np.all(piv > 0.0)) and float(piv.min()) ** 2 > 1e-14 * float(piv.max()) ** 2
        except LinAlgError:
            ok = False
        if ok:
            d = cho_solve(c, -g, check_finite=False)
            if np.all(np.isfinite(d)) and float(g @ d) < 0.0:
                return d, shift
        shift = 1e-10 * scale if shift == 0.0 else shift * 10.0
    return -g, np.inf


def newton(fun, x0, *, hess, fun_value=None, max_iter=100, tol=1e-10, gtol=1e-8,
           max_backtrack=50, callback=None, verbose=False, warn=True, name="newton"):
    """Minimise a smooth function by damped Newton's method.

    Each iteration solves ``H d = -g`` with a Cholesky factorisation (adding a
    growing multiple of the identity when ``H`` is singular or indefinite,
    and falling back to ``-g`` as a last resort), then backtracks from the
    full step ``t = 1`` by halving until the Armijo condition
    ``f(x + t d) <= f(x) + 1e-4 t g.d`` holds.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (f, grad)``: objective value (float) and gradient (1-D).
    x0 : ndarray, shape (m,)
        Starting point (not modified).
    hess : callable
        ``hess(x) -> H``: dense symmetric Hessian of shape ``(m, m)`` at ``x``.
        It is always called right after ``fun`` at the same ``x``, so a model
        may cache quantities (e.g. probabilities) computed by ``fun``.
    fun_value : callable, optional
        ``fun_value(x) -> f``, a cheaper value-only evaluation used by the line
        search. By default the line search calls ``fun`` and reuses the
        gradient of the accepted point (best when full steps are the rule and
        the value costs nearly as much as value and gradient).
    max_iter : int, default=100
        Maximum number of Newton iterations.
    tol : float, default=1e-10
        Stop when half the squared Newton decrement ``g.H^{-1}g / 2`` (the
        predicted objective decrease of the Newton step, i.e. an estimate of
        the relative objective gap ``f(x) - min f``) is at most
        ``tol * max(1, |f|)``; that last Newton step is still taken, which
        roughly squares the remaining error.
    gtol : float, default=1e-8
        Also stop when ``max|grad| <= gtol * max(1, max|grad(x0)|)``.
        ``None`` disables this check.
    max_backtrack : int, default=50
        Step halvings per iteration before the line search gives up.
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
        iteration. ``info`` holds ``n_fev``, ``n_gev``, ``n_hev``,
        ``decrement`` (last ``g.H^{-1}g``), ``grad_norm`` (last sup-norm of the
        gradient), ``step`` (last accepted step length) and ``n_regularised``
        (iterations in which the Hessian had to be shifted or replaced).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad.solvers import newton
    >>> A = np.array([[3.0, 1.0], [1.0, 2.0]]); b = np.array([1.0, -1.0])
    >>> res = newton(lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b), np.zeros(2),
    ...              hess=lambda x: A)
    >>> bool(np.allclose(res.x, np.linalg.solve(A, b)))
    True
    """
    max_iter = check_scalar(max_iter, "max_iter", kind="int", lo=0)
    tol = check_scalar(tol, "tol", lo=0.0)
    if gtol is not None:
        gtol = check_scalar(gtol, "gtol", lo=0.0)
    max_backtrack = check_scalar(max_backtrack, "max_backtrack", kind="int", lo=1)
    counts = {"fev": 0, "gev": 0, "hev": 0}

    def fg(v):
        counts["gev"] += 1
        f, g = fun(v)
        return float(f), np.asarray(g, dtype=np.float64).ravel()

    last = {"x": None, "g": None}
    if fun_value is None:
        # line search through ``fun``: the gradient of the accepted point is reused
        def fv(v):
            f_, g_ = fg(v)
            last["x"], last["g"] = v, g_
            return f_
    else:
        def fv(v):
            counts["fev"] += 1
            return float(fun_value(v))

    x = np.array(x0, dtype=np.float64, copy=True).ravel()
    f, g = fg(x)
    if not np.isfinite(f) or not np.all(np.isfinite(g)):
        raise ValueError(f"{name}: the objective or its gradient is not finite at the starting point")
    gnorm = float(np.max(np.abs(g))) if g.size else 0.0
    gscale = max(1.0, gnorm)
    history = [f]
    converged = False
    message = "max_iter reached"
    decrement = np.nan
    step = 0.0
    n_reg = 0
    progress = Progress(verbose, max_iter, name)
    it = 0
    try:
        while True:
            if gtol is not None and gnorm <= gtol * gscale:
                converged = True
                message = "gradient norm below gtol"
                break
            if it >= max_iter:
                break
            counts["hev"] += 1
            d, shift = newton_direction(hess(x), g)
            if shift != 0.0:
                n_reg += 1
            decrement = float(-(g @ d))
            # a tiny decrement means x is within ~decrement/2 of the minimum:
            # take this last (full) step, which squares the error, and stop
            final = shift == 0.0 and 0.5 * decrement <= tol * max(1.0, abs(f))
            if shift == np.inf:
                # gradient direction: start from a step of unit length
                dn = float(np.linalg.norm(d))
                t = min(1.0, 1.0 / dn) if dn > 0 else 1.0
            else:
                t = 1.0
            slope = -decrement
            accepted = False
            for _ in range(max_backtrack):
                x_new = x + t * d
                f_new = fv(x_new)
                if np.isfinite(f_new) and f_new <= f + _ARMIJO * t * slope:
                    accepted = True
                    break
                if final and np.isfinite(f_new) and f_new <= f:
                    accepted = True  # rounding hides the tiny predicted decrease
                    break
                t *= 0.5
            if not accepted:
                converged = final or 0.5 * decrement <= 1e3 * np.finfo(float).eps * max(1.0, abs(f))
                message = ("Newton decrement below tol" if final else
                           "no further decrease possible at machine precision" if converged
                           else "line search failed")
                break
            it += 1
            step = t
            x = x_new
            if last["x"] is x_new:
                f, g = f_new, last["g"]
            else:
                f, g = fg(x)
            gnorm = float(np.max(np.abs(g))) if g.size else 0.0
            history.append(f)
            progress.update(it, f)
            if callback is not None and callback(it, x):
                message = "stopped by callback"
                break
            if final:
                converged = True
                message = "Newton decrement below tol"
                break
    finally:
        progress.close()
    if not converged and warn and message in ("max_iter reached", "line search failed"):
        if message == "max_iter reached":
            warn_not_converged(name, max_iter)
        else:
            import warnings

            from .._warnings import ConvergenceWarning
            warnings.warn(f"{name}: line search failed to decrease the objective "
                          f"(Newton decrement {decrement:.3g})", ConvergenceWarning, stacklevel=2)
    return SolverResult(x=x, objective=f, n_iter=it, converged=bool(converged),
                        history=np.asarray(history, dtype=np.float64), message=message,
                        info={"n_fev": counts["fev"], "n_gev": counts["gev"], "n_hev": counts["hev"],
                              "decrement": decrement, "grad_norm": gnorm, "step": step,
                              "n_regularised": n_reg})
