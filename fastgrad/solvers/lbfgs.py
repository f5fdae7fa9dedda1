"""Limited-memory BFGS for smooth objectives.

The two-loop recursion (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 7.4),
evaluated in matrix form (:class:`_Memory`), with a line search for the strong Wolfe
conditions (Alg. 3.5 and 3.6, cubic interpolation), and the stopping rules of SciPy's
``L-BFGS-B`` without bounds: a relative objective change ``ftol`` and a largest gradient
entry ``gtol``. It was a wrapper of ``scipy.optimize.minimize`` until importing
``scipy.optimize`` (~0.3 s) became a sixth of a warm ``python -m fastgrad hlsm`` run.
"""
import numpy as np

from .._validation import check_scalar
from ._common import Progress, SolverResult, warn_not_converged

__all__ = ["lbfgs"]


class _Stop(Exception):
    pass


def lbfgs(fun, x0, *, max_iter=1000, tol=1e-10, gtol=1e-8, m=10, callback=None,
          verbose=False, warn=True, name="lbfgs"):
    """Minimise a smooth function by L-BFGS.

    Follows the fastgrad solver conventions: flat float64 vector in,
    :class:`SolverResult` out, an objective history, ``callback`` and ``verbose``
    support and a :class:`fastgrad.ConvergenceWarning` when ``max_iter`` is
    reached. The stopping rules are those of SciPy's L-BFGS-B without bounds
    (``ftol`` = ``tol``; see the module docstring).

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
        (as SciPy's ``ftol``).
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
        evaluations), ``grad_norm`` and ``status`` (0 converged, 1 ``max_iter``
        reached, 2 the line search found no decrease: at machine precision, or a
        wrong gradient).

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
    n_fev = [0]

    def fg(v):
        n_fev[0] += 1
        f, g = fun(v)
        return float(f), np.array(g, dtype=np.float64).ravel()   # a copy: the caller may reuse its buffer

    f0, g0 = fg(x)
    if not np.isfinite(f0) or not np.all(np.isfinite(g0)):
        raise ValueError(f"{name}: the objective or its gradient is not finite at the starting point")
    g0norm = float(np.max(np.abs(g0))) if g0.size else 0.0
    history = [f0]
    state = {"it": 0, "stopped": False}
    progress = Progress(verbose, max_iter, name)

    def cb(xk, fk, gk):
        state["it"] += 1
        history.append(fk)
        progress.update(state["it"], fk)
        if callback is not None and callback(state["it"], xk.copy()):
            state["stopped"] = True
            state["x"], state["f"], state["g"] = xk.copy(), fk, gk
            raise _Stop

    if max_iter == 0 or g0norm == 0.0:
        progress.close()
        conv = g0norm <= gtol * max(1.0, g0norm)
        if not conv and warn:
            warn_not_converged(name, max_iter)
        return SolverResult(x=x, objective=f0, n_iter=0, converged=bool(conv),
                            history=np.asarray(history), message="no iterations",
                            info={"n_fev": n_fev[0], "grad_norm": g0norm, "status": None})
    status = None
    try:
        x, f, g, status, message = _minimise(fg, x, f0, g0, max_iter=max_iter, m=m, ftol=tol,
                                             gtol=gtol * max(1.0, g0norm), cb=cb)
    except _Stop:
        x, f, g, message = state["x"], state["f"], state["g"], "stopped by callback"
    finally:
        progress.close()
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
                        message=message, info={"n_fev": n_fev[0], "grad_norm": gnorm,
                                               "status": status})


_C1, _C2 = 1e-3, 0.9        # sufficient decrease, curvature (strong Wolfe; SciPy's values)
_MAX_LS = 40                # evaluations per line search
_EPS = np.finfo(float).eps


def _minimise(fg, x, f, g, *, max_iter, m, ftol, gtol, cb):
    """``(x, f, g, status, message)``; ``cb(x, f, g)`` after each iteration (may raise _Stop)."""
    mem = _Memory(x.size, m)
    it = 0
    while True:
        if it >= max_iter:
            return x, f, g, 1, "max_iter reached"
        d = -mem.apply(g)
        slope = float(g @ d)
        if not slope < 0.0:                      # not a descent direction: restart
            mem.clear()
            d = -g
            slope = -float(g @ g)
        # without curvature pairs the first trial step has unit length (as SciPy's)
        a0 = 1.0 if mem.k else 1.0 / max(float(np.sqrt(g @ g)), _EPS)
        a, f_new, g_new = _wolfe(fg, x, f, g, d, slope, a0)
        if a is None:
            if mem.k:                            # try once more along the gradient
                mem.clear()
                continue
            return x, f, g, 2, "the line search found no lower objective (at machine precision?)"
        s = a * d
        y = g_new - g
        sy = float(s @ y)
        yy = float(y @ y)
        if sy > _EPS * yy:
            mem.push(s, y, sy, yy)
        x = x + s
        f_old, f, g = f, f_new, g_new
        it += 1
        cb(x, f, g)
        if (f_old - f) <= ftol * max(abs(f_old), abs(f), 1.0):
            return x, f, g, 0, "relative reduction of the objective <= tol"
        if float(np.max(np.abs(g))) <= gtol:
            return x, f, g, 0, "largest gradient entry <= gtol"


class _Memory:
    """The last ``m`` correction pairs ``(s_j, y_j)`` and the product of their L-BFGS
    inverse-Hessian estimate with a vector.

    :meth:`apply` is the two-loop recursion (Nocedal & Wright, Alg. 7.4, with the scaling
    ``gamma = s.y / y.y`` of the newest pair) in matrix form. Its first loop solves the
    unit upper-triangular system ``U al = rho * (S g)``, ``U[j, i] = rho_j s_j.y_i``
    (``i > j``), its second the unit lower-triangular ``L c = al - rho * (Y q)``,
    ``L[j, i] = rho_j s_i.y_j`` (``i < j``); ``H g = q + S^T c`` with ``q = gamma (g - Y^T
    al)``. The inverses of ``U`` and ``L`` are kept up to date as pairs come (a new last
    row or column, from one product ``S y``) and go (the oldest pair's removal leaves the
    trailing block of each inverse), so a product takes four matrix-vector products with
    the stored pairs and two small ones, instead of ``4 m`` vector operations: Python's
    per-operation cost had made the loops about 0.3 ms per iteration with ``m = 20``, as
    much as an HLSM likelihood evaluation on a 61-node network. The result is the
    recursion's in exact arithmetic.
    """

    def __init__(self, n, m):
        self.m = m
        self.S = np.empty((m, n))          # by storage slot
        self.Y = np.empty((m, n))
        self.Uinv = np.empty((m, m))       # chronological order (oldest pair first)
        self.Linv = np.empty((m, m))
        self.rho = np.empty(m)
        self.clear()

    @property
    def k(self):
        """Pairs held."""
        return self.idx.size

    def clear(self):
        self.filled = 0                    # storage slots written since the last clear
        self.idx = np.empty(0, dtype=np.intp)   # the slots of the pairs held, oldest first
        self.gamma = 1.0

    def push(self, s, y, sy, yy):
        """Add the pair ``(s, y)`` (``sy = s.y > 0``, ``yy = y.y``), dropping the oldest
        if ``m`` are held."""
        m, k, kept = self.m, self.k, self.idx
        if k == m:
            slot, kept = kept[0], kept[1:]
            k -= 1
            self.Uinv[:k, :k] = self.Uinv[1:m, 1:m].copy()
            self.Linv[:k, :k] = self.Linv[1:m, 1:m].copy()
            self.rho[:k] = self.rho[1:m].copy()
        else:
            slot = self.filled
            self.filled += 1
        self.S[slot] = s                   # first: no product below reads an unwritten slot
        self.Y[slot] = y
        v = (self.S[:self.filled] @ y)[kept]              # s_i . y for the pairs kept
        Ui, Li = self.Uinv, self.Linv
        Ui[:k, k] = -(Ui[:k, :k] @ (self.rho[:k] * v))
        Ui[k, :k] = 0.0
        Li[k, :k] = -((v / sy) @ Li[:k, :k])
        Li[:k, k] = 0.0
        Ui[k, k] = Li[k, k] = 1.0
        self.rho[k] = 1.0 / sy
        self.idx = np.append(kept, slot)
        self.gamma = sy / yy

    def apply(self, g):
        """``H g`` (a new array)."""
        k, f, idx = self.k, self.filled, self.idx
        if k == 0:
            return g.copy()
        S, Y, rho = self.S[:f], self.Y[:f], self.rho[:k]
        al = self.Uinv[:k, :k] @ (rho * (S @ g)[idx])
        w = np.zeros(f)
        w[idx] = al
        q = (g - Y.T @ w) * self.gamma
        c = self.Linv[:k, :k] @ (al - rho * (Y @ q)[idx])
        w[idx] = c
        return q + S.T @ w


def _wolfe(fg, x, f0, g0, d, slope0, a1):
    """A step ``a`` along ``d`` meeting the strong Wolfe conditions: ``(a, f, g)``; ``a`` is
    None if no step lowered the objective by the sufficient-decrease rule within
    :data:`_MAX_LS` evaluations (one that did is returned even if it misses the curvature
    rule). A point where the objective or gradient is not finite counts as too far."""
    def phi(a):
        f, g = fg(x + a * d)
        if not (np.isfinite(f) and np.all(np.isfinite(g))):
            return np.inf, g, np.nan
        return f, g, float(g @ d)

    # steps shorter than this leave x unchanged in floating point
    tiny = _EPS * max(1.0, float(np.max(np.abs(x)))) / max(float(np.max(np.abs(d))), 1e-300)
    a_prev, f_prev, s_prev = 0.0, f0, slope0
    best = None
    a = a1
    for n in range(_MAX_LS):
        fa, ga, sa = phi(a)
        if _decrease(fa, f0, a, slope0) and (best is None or fa < best[1]):
            best = (a, fa, ga)
        if not _decrease(fa, f0, a, slope0) or (n > 0 and fa >= f_prev):
            return _zoom(phi, f0, slope0, a_prev, f_prev, s_prev, a, fa, sa, _MAX_LS - n - 1, best, tiny)
        if abs(sa) <= -_C2 * slope0:
            return a, fa, ga
        if sa >= 0:
            return _zoom(phi, f0, slope0, a, fa, sa, a_prev, f_prev, s_prev, _MAX_LS - n - 1, best, tiny)
        a_prev, f_prev, s_prev = a, fa, sa
        a *= 4.0                                 # no bracket yet: extrapolate
    return best if best is not None else (None, f0, g0)


def _decrease(fa, f0, a, slope0):
    """The sufficient-decrease (Armijo) rule, with a strictly lower value (a step too short to
    change the objective in floating point does not count)."""
    return bool(np.isfinite(fa) and fa < f0 and fa <= f0 + _C1 * a * slope0)


def _zoom(phi, f0, slope0, lo, f_lo, s_lo, hi, f_hi, s_hi, budget, best, tiny):
    """Nocedal & Wright Alg. 3.6: ``lo`` satisfies sufficient decrease with the lowest value
    so far, and the interval between ``lo`` and ``hi`` holds a strong-Wolfe step."""
    for _ in range(max(budget, 0)):
        a = _cubic_min(lo, f_lo, s_lo, hi, f_hi, s_hi)
        fa, ga, sa = phi(a)
        if _decrease(fa, f0, a, slope0) and (best is None or fa < best[1]):
            best = (a, fa, ga)
        if not _decrease(fa, f0, a, slope0) or fa >= f_lo:
            hi, f_hi, s_hi = a, fa, sa
        else:
            if abs(sa) <= -_C2 * slope0:
                return a, fa, ga
            if sa * (hi - lo) >= 0:
                hi, f_hi, s_hi = lo, f_lo, s_lo
            lo, f_lo, s_lo = a, fa, sa
        if abs(hi - lo) <= max(tiny, _EPS * max(abs(lo), abs(hi))):
            break
    if best is not None:
        return best
    return None, f0, None


def _cubic_min(a, fa, sa, b, fb, sb):
    """Minimiser of the cubic through ``(a, fa, sa)``, ``(b, fb, sb)``, kept inside the
    interval's middle 80% (bisection when the cubic is not usable)."""
    lo, hi = min(a, b), max(a, b)
    mid = 0.5 * (a + b)
    if np.isfinite(fa) and np.isfinite(fb) and np.isfinite(sa) and np.isfinite(sb) and a != b:
        d1 = sa + sb - 3.0 * (fa - fb) / (a - b)
        disc = d1 * d1 - sa * sb
        if disc >= 0.0:
            d2 = np.copysign(np.sqrt(disc), b - a)
            den = sb - sa + 2.0 * d2
            if den != 0.0:
                t = b - (b - a) * (sb + d2 - d1) / den
                if np.isfinite(t):
                    w = hi - lo
                    return min(max(t, lo + 0.1 * w), hi - 0.1 * w)
    elif np.isfinite(fa) and np.isfinite(sa) and not np.isfinite(fb) and a < b:
        return a + 0.1 * (b - a) if sa < 0 else mid   # shrink hard towards the finite end
    return mid
