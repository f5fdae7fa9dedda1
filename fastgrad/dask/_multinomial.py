"""The multinomial back-end on Dask: loss, gradient and Hessian summed over row partitions.

Each partition is a problem object built once on its worker by the front-end's
``prepare`` function (``fastgrad.multinomial._distributed``: the local
:class:`fastgrad.multinomial._model._Problem`, penalty 0) -- the evaluator protocol:
``fun(theta) -> (loss, grad)``, ``hess(theta)``, attributes ``y``, ``w``, ``wsum``, ``km1``. Its kernels return weighted MEANS over the partition, so
a partition's share of the full-data mean is its value times ``W_part / W``
(``W`` the total weight, ``n`` unweighted): loss, gradient and the dense
``(K-1) q`` square Hessian are summed over partitions by a tree reduction, and
the L2 penalty is added once on the client. Only ``theta`` goes out, only
these sums come back.
"""
import numpy as np

from ._objective import map_reduce

__all__ = ["DaskMultinomialProblem", "class_weights", "classes_of"]


# --------------------------------------------------------------------------- worker side

def class_weights(part):
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

class DaskMultinomialProblem:
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


def classes_of(y):
    """Sorted distinct labels of a dask array (computed on the cluster)."""
    import dask.array as da
    return np.unique(da.unique(y).compute())
