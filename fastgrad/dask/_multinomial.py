"""Distributed :func:`fastgrad.multinomial.fit` (Newton or L-BFGS on the client).

Each partition is a :class:`fastgrad.multinomial._Problem` (penalty 0) built
once on its worker. Its kernels return weighted MEANS over the partition, so
a partition's share of the full-data mean is its value times ``W_part / W``
(``W`` the total weight, ``n`` unweighted): loss, gradient and the dense
``(K-1) q`` square Hessian are summed over partitions by a tree reduction, and
the L2 penalty is added once on the client. Only ``theta`` goes out, only
these sums come back.
"""
import numpy as np

from ._objective import align_rows, map_reduce, persist_partitions, release
from ._setup import check_client, get_client

__all__ = ["fit_multinomial"]


# --------------------------------------------------------------------------- worker side

def _prepare(X, y, w, *, classes, fit_intercept):
    from ..multinomial import _model as M
    design = M._Design(X, "X")
    y = M._check_y(y)
    _, codes = M._encode(y, classes)
    if w is None:
        w = np.ones(design.n)
    else:
        w = np.ascontiguousarray(w, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            raise ValueError("sample_weight contains NaN or infinite values")
        if np.any(w < 0):
            raise ValueError("sample_weight must be non-negative")
    part = M._Problem(design, codes, w, len(classes), 0.0, fit_intercept)
    part.wsum = float(w.sum())
    return part


def _class_weights(part):
    """Total weight per class (the intercept-only start and the weight total)."""
    return np.bincount(part.y, weights=part.w, minlength=part.km1 + 1)


def _share(part, total):
    return part.wsum / total


def _fun(part, theta, total):
    if part.wsum == 0.0:
        return 0.0, np.zeros_like(theta)
    f, g = part.fun(theta)
    s = _share(part, total)
    return f * s, g * s


def _hess(part, theta, total):
    if part.wsum == 0.0:
        return np.zeros((theta.size, theta.size))
    return part.hess(theta) * _share(part, total)


# --------------------------------------------------------------------------- client side

class _DaskProblem:
    """Objective, gradient and Hessian of the full data, as map-reduces."""

    def __init__(self, client, parts, class_weights, lam, p, fit_intercept):
        self.client, self.parts = client, parts
        self.class_weights = class_weights
        self.total = float(class_weights.sum())
        self.km1 = class_weights.shape[0] - 1
        self.lam, self.p, self.fit_intercept = lam, p, fit_intercept
        self.q = p + (1 if fit_intercept else 0)
        self.stats = {}

    def _reduce(self, func, theta):
        return map_reduce(self.client, self.parts, func, np.asarray(theta, dtype=np.float64),
                          self.total, stats=self.stats)

    def _coef_view(self, v):
        return v.reshape(self.km1, self.q)[:, :self.p]

    def fun(self, theta):
        f, g = self._reduce(_fun, theta)
        if self.lam:
            coef = self._coef_view(theta)
            f += 0.5 * self.lam * float(np.sum(coef * coef))
            self._coef_view(g)[...] += self.lam * coef
        return f, g

    def hess(self, theta):
        H = self._reduce(_hess, theta)
        if self.lam:
            idx = (np.arange(self.km1)[:, None] * self.q + np.arange(self.p)[None, :]).ravel()
            H[idx, idx] += self.lam
        return H

    def split(self, theta):
        T = np.asarray(theta, dtype=np.float64).reshape(self.km1, self.q)
        intercept = T[:, self.p].copy() if self.fit_intercept else np.zeros(self.km1)
        return T[:, :self.p].copy(), intercept

    def start(self):
        """As :meth:`fastgrad.multinomial._Problem.start`: intercept-only MLE."""
        T = np.zeros((self.km1, self.q))
        if self.fit_intercept:
            freq = np.maximum(self.class_weights / self.total, 1e-12)
            T[:, self.p] = np.log(freq[:-1] / freq[-1])
        return T.ravel()


def _classes(y):
    """Sorted distinct labels of a dask array (computed on the cluster)."""
    import dask.array as da
    return np.unique(da.unique(y).compute())


def fit_multinomial(X, y, *, lam=0.0, fit_intercept=True, solver="newton", sample_weight=None,
                    max_iter=None, tol=None, gtol=None, check_separation=True, verbose=False,
                    callback=None, warm_start=None, client=None):
    """:func:`fastgrad.multinomial.fit` on a dask array ``X`` (row chunks), on a dask cluster.

    Parameters are those of :func:`fastgrad.multinomial.fit` plus ``client``
    (default: the current ``distributed`` client). ``y`` and
    ``sample_weight`` may be dask arrays with ``X``'s row chunks or NumPy
    arrays. Newton sums the partitions' ``(K-1)(p+1)`` square Hessians, so
    each Newton iteration moves ``O((K-1)^2 q^2)`` numbers per partition;
    L-BFGS moves only gradients. ``check_separation`` is not available on a
    cluster (it needs all rows at once): use ``lam > 0`` when the classes may
    be separable.

    Returns
    -------
    fastgrad.multinomial.MultinomialResult
    """
    from ..multinomial import _model as M
    from .._validation import as_float_array, check_choice, check_scalar
    from ..solvers import lbfgs, newton
    client = get_client(client)
    lam = check_scalar(lam, "lam", lo=0.0)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept must be a bool, got {type(fit_intercept).__name__}")
    solver = check_choice(solver, "solver", ("newton", "lbfgs", "auto"))
    workers = check_client(client)
    X, other = align_rows(X, n_blocks=2 * len(workers), y=y, sample_weight=sample_weight)
    if other["y"] is None:
        raise ValueError("y is required")
    n, p = X.shape
    classes = _classes(other["y"])
    if len(classes) < 2:
        raise ValueError(f"y must contain at least two classes, got {len(classes)}")
    if solver == "auto":
        dim = (len(classes) - 1) * (p + (1 if fit_intercept else 0))
        solver = "newton" if dim <= M._NEWTON_MAX_DIM else "lbfgs"
    max_iter = check_scalar(100 if max_iter is None and solver == "newton" else
                            1000 if max_iter is None else max_iter, "max_iter", kind="int", lo=0)
    tol = check_scalar((1e-10 if solver == "newton" else 1e-12) if tol is None else tol, "tol",
                       lo=0.0)
    gtol = check_scalar((1e-12 if solver == "newton" else 1e-7) if gtol is None else gtol, "gtol",
                        lo=0.0)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    parts = persist_partitions(client, _prepare, X, other["y"], other["sample_weight"],
                               classes=classes, fit_intercept=bool(fit_intercept))
    try:
        prob = _DaskProblem(client, parts, map_reduce(client, parts, _class_weights), lam, p,
                            bool(fit_intercept))
        if not prob.total > 0:
            raise ValueError("sample_weight must not be all zero (the sum of the weights is "
                             "zero)")
        if warm_start is None:
            theta0 = prob.start()
        else:
            c0, i0 = warm_start
            c0 = as_float_array(c0, "warm_start coef", ndim=2)
            i0 = as_float_array(i0, "warm_start intercept", ndim=1)
            if c0.shape != (prob.km1, p) or i0.shape != (prob.km1,):
                raise ValueError(f"warm_start must have shapes ({prob.km1}, {p}) and "
                                 f"({prob.km1},), got {c0.shape} and {i0.shape}")
            theta0 = (np.column_stack([c0, i0]) if fit_intercept else c0).ravel()

        cb = None
        if callback is not None:
            def cb(it, theta):
                coef, intercept = prob.split(theta)
                return bool(callback(it, {"coef": coef, "intercept": intercept}))

        name = f"fastgrad.dask multinomial (solver={solver!r})"
        if solver == "newton":
            res = newton(prob.fun, theta0, hess=prob.hess, max_iter=max_iter, tol=tol,
                         gtol=gtol, callback=cb, verbose=verbose, name=name)
        else:
            res = lbfgs(prob.fun, theta0, max_iter=max_iter, tol=tol, gtol=gtol, callback=cb,
                        verbose=verbose, name=name)
    finally:
        release(client, parts)
    coef, intercept = prob.split(res.x)
    loss = float(res.objective) - 0.5 * lam * float(np.sum(coef * coef))
    info = dict(res.info, separation_check=None, n_partitions=len(parts),
                map_reduce_calls=prob.stats.get("calls", 0),
                bytes_out=prob.stats.get("bytes_out", 0), bytes_in=prob.stats.get("bytes_in", 0))
    return M.MultinomialResult(coef=coef, intercept=intercept, classes=classes, lam=lam,
                               fit_intercept=bool(fit_intercept), objective=float(res.objective),
                               loss=loss, n_iter=res.n_iter, converged=bool(res.converged),
                               history=res.history, solver=solver, separated=False,
                               message=res.message, info=info)
