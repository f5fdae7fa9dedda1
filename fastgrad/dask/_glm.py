"""The GLM back-end on Dask: the objective of :func:`fastgrad.glm.fit`, summed over row partitions.

Each partition computes ``sum_i sw_i loss_i`` and its gradient with
:func:`fastgrad.kernels.glm_loss_grad`, where ``sw_i = 1/n`` (or
``w_i / sum(w)`` over ALL rows), so the partitions' shares add up to the
single-machine objective exactly (up to the order of the floating-point sum).
The generic solvers of :mod:`fastgrad.solvers` run on the client (the front-end,
``fastgrad.glm._distributed``) with :class:`DaskGLMProblem`, whose ``loss_grad``
and ``loss_value`` are map-reduces over the cluster.
"""
import numpy as np

from ._objective import map_reduce

__all__ = ["DaskGLMProblem", "DASK_SOLVERS", "prepare", "weight_sum"]

#: solvers that need only loss and gradient evaluations (one map-reduce each)
DASK_SOLVERS = ("auto", "fista", "ista", "lbfgs", "gd", "momentum")


# --------------------------------------------------------------------------- worker side

def prepare(X, y, w, *, logistic):
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


def weight_sum(part):
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

class DaskGLMProblem:
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
