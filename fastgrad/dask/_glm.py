"""Distributed :func:`fastgrad.glm.fit`: the same objective, summed over row partitions.

Each partition computes ``sum_i sw_i loss_i`` and its gradient with
:func:`fastgrad.kernels.glm_loss_grad`, where ``sw_i = 1/n`` (or
``w_i / sum(w)`` over ALL rows), so the partitions' shares add up to the
single-machine objective exactly (up to the order of the floating-point sum).
The generic solvers of :mod:`fastgrad.solvers` run on the client through
:func:`fastgrad.glm._solve`, with a problem object whose ``loss_grad`` and
``loss_value`` are map-reduces over the cluster.
"""
import numpy as np

from ._objective import align_rows, map_reduce, persist_partitions, release
from ._setup import check_client, get_client

__all__ = ["fit_glm", "DASK_SOLVERS"]

#: solvers that need only loss and gradient evaluations (one map-reduce each)
DASK_SOLVERS = ("auto", "fista", "ista", "lbfgs", "gd", "momentum")


# --------------------------------------------------------------------------- worker side

def _prepare(X, y, w, *, logistic):
    """One row block -> (X C-contiguous float64, y float64, raw weights or None)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.asarray(y)
    y = np.ascontiguousarray(y, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values")
    if logistic and not np.all((y == 0.0) | (y == 1.0)):
        raise ValueError("y must contain only 0 and 1 for loss='logistic'")
    if w is not None:
        w = np.ascontiguousarray(w, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            raise ValueError("sample_weight contains NaN or infinite values")
        if np.any(w < 0):
            raise ValueError("sample_weight must be non-negative")
    return X, y, w


def _weight_sum(part):
    X, _, w = part
    return float(X.shape[0]) if w is None else float(w.sum())


def _sum_weights(part, total):
    """The kernels' weights: ``w_i / total`` (``1 / n`` unweighted)."""
    X, _, w = part
    return np.full(X.shape[0], 1.0 / total) if w is None else w / total


def _loss_grad(part, coef, c, code, total):
    from ..kernels import glm as K
    X, y, _ = part
    grad = np.empty(X.shape[1])
    val, gc = K.glm_loss_grad(X, y, _sum_weights(part, total), coef, c, code, grad, np.empty(0))
    return val, grad, gc


def _loss(part, coef, c, code, total):
    from ..kernels import glm as K
    X, y, _ = part
    return K.glm_loss(X, y, _sum_weights(part, total), coef, c, code)


# --------------------------------------------------------------------------- client side

class _DaskProblem:
    """Duck-types :class:`fastgrad.glm._Problem` for the smooth solvers."""

    sparse = False

    def __init__(self, client, parts, loss, fit_intercept, n, p, total):
        from ..kernels import glm as K
        self.client, self.parts = client, parts
        self.loss = loss
        self.code = K.LOSS_SQUARED if loss == "squared" else K.LOSS_LOGISTIC
        self.fit_intercept = fit_intercept
        self.n, self.p, self.total = n, p, total
        self.stats = {}

    def loss_grad(self, coef, c, grad, curv):
        val, g, gc = map_reduce(self.client, self.parts, _loss_grad, coef, float(c), self.code,
                                self.total, stats=self.stats)
        grad[:] = g
        return val, gc

    def loss_value(self, coef, c):
        return map_reduce(self.client, self.parts, _loss, coef, float(c), self.code, self.total,
                          stats=self.stats)


def _resolve_solver(solver, lam, l1_ratio):
    from .._validation import check_choice
    from ..glm._model import SOLVERS
    solver = check_choice(solver, "solver", SOLVERS)
    if solver not in DASK_SOLVERS:
        raise ValueError(
            f"solver={solver!r} needs the whole data set in memory and is not available for "
            f"dask arrays; use one of {DASK_SOLVERS[1:]} (solver='auto' picks 'fista' with an "
            "L1 penalty and 'lbfgs' otherwise)")
    if solver == "auto":
        solver = "fista" if lam > 0 and l1_ratio > 0 else "lbfgs"
    return solver


def fit_glm(X, y, *, loss="squared", lam=0.0, l1_ratio=0.0, fit_intercept=True, solver="auto",
            sample_weight=None, max_iter=None, tol=1e-8, random_state=None, verbose=False,
            callback=None, warm_start=None, solver_options=None, client=None):
    """:func:`fastgrad.glm.fit` on a dask array ``X`` (row chunks), on a dask cluster.

    Parameters are those of :func:`fastgrad.glm.fit`, plus ``client`` (default:
    the current ``distributed`` client). ``y`` and ``sample_weight`` may be
    dask arrays with ``X``'s row chunks or NumPy arrays. Supported solvers:
    ``"fista"``, ``"ista"``, ``"lbfgs"``, ``"gd"``, ``"momentum"``;
    ``"auto"`` is ``"fista"`` with an L1 part and ``"lbfgs"`` otherwise.
    Every iteration sends only ``(coef, intercept)`` to the workers and gets
    back the summed loss and gradient.

    Returns
    -------
    fastgrad.glm.GLMResult
        ``info`` holds ``n_partitions``, ``map_reduce_calls`` and the client's
        ``bytes_out`` / ``bytes_in`` over the fit.
    """
    from ..glm import _model as G
    from .._validation import check_choice, check_scalar
    client = get_client(client)
    loss = check_choice(loss, "loss", G._LOSSES)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept must be a bool, got {type(fit_intercept).__name__}")
    lam = check_scalar(lam, "lam", lo=0.0)
    l1_ratio = check_scalar(l1_ratio, "l1_ratio", lo=0.0, hi=1.0)
    solver = _resolve_solver(solver, lam, l1_ratio)
    workers = check_client(client)
    X, other = align_rows(X, n_blocks=2 * len(workers), y=y, sample_weight=sample_weight)
    if other["y"] is None:
        raise ValueError("y is required")
    n, p = X.shape
    lam, l1_ratio, solver, max_iter, tol = G._check_params(lam, l1_ratio, solver, max_iter, tol,
                                                           p, n)
    coef0, c0 = G._initial_point(warm_start, p, bool(fit_intercept))
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    parts = persist_partitions(client, _prepare, X, other["y"], other["sample_weight"],
                               logistic=loss == "logistic")
    try:
        total = map_reduce(client, parts, _weight_sum)
        if not total > 0:
            raise ValueError("sample_weight must have a positive sum")
        prob = _DaskProblem(client, parts, loss, bool(fit_intercept), n, p, total)
        opts = dict(solver_options or {})
        opts["presolve"] = False  # the sub-sample warm start would need rows on the client
        res = G._solve(prob, lam, l1_ratio, solver, max_iter, tol, coef0, c0, random_state,
                       verbose, callback, opts)
    finally:
        release(client, parts)
    res.info.update(n_partitions=len(parts), map_reduce_calls=prob.stats.get("calls", 0),
                    bytes_out=prob.stats.get("bytes_out", 0),
                    bytes_in=prob.stats.get("bytes_in", 0))
    return res
