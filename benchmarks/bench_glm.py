"""asv benchmarks for regularised linear / logistic regression (kernels compiled in ``setup``).

Sizes are kept small so that ``asv run --quick`` stays well under 10 s per
benchmark on 2 cores; ``benchmarks/peers_glm.py`` has the full-size peer comparisons.
"""
import numba
import numpy as np
import scipy.sparse as sp

from fastgrad import glm
from fastgrad.kernels import LOSS_LOGISTIC, glm_loss_grad, glm_loss_grad_csr


def _data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    w = rng.normal(size=p) * 2.0 / np.sqrt(p)
    y_bin = (rng.random(n) < 1.0 / (1.0 + np.exp(-(X @ w + 0.3)))).astype(np.float64)
    y_lin = X @ (w * (rng.random(p) < 0.2)) + rng.normal(size=n)
    return X, y_bin, y_lin


class LossGrad:
    """One fused logistic loss + gradient pass, dense and CSR, 1 and 2 threads."""

    params = ([1, 2], ["dense", "csr"])
    param_names = ["n_threads", "layout"]

    def setup(self, n_threads, layout):
        if n_threads > numba.config.NUMBA_NUM_THREADS:
            raise NotImplementedError("not enough threads")
        X, self.y, _ = _data(50_000, 100)
        if layout == "csr":
            X = sp.csr_matrix(X * (np.random.default_rng(1).random(X.shape) < 0.1))
        self.X = X
        self.sw = np.full(self.y.size, 1.0 / self.y.size)
        self.w = np.random.default_rng(2).normal(size=100) * 0.1
        self.g = np.empty(100)
        self.empty = np.empty(0)
        numba.set_num_threads(n_threads)
        self.time_loss_grad(n_threads, layout)  # compile

    def teardown(self, n_threads, layout):
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    def time_loss_grad(self, n_threads, layout):
        if layout == "csr":
            X = self.X
            glm_loss_grad_csr(X.data, X.indices, X.indptr, self.y, self.sw, self.w, 0.0,
                              LOSS_LOGISTIC, self.g, self.empty)
        else:
            glm_loss_grad(self.X, self.y, self.sw, self.w, 0.0, LOSS_LOGISTIC, self.g, self.empty)


class Fit:
    """Whole fits on n=20,000, p=50: L2 logistic (newton, lbfgs), lasso and logistic lasso (cd)."""

    timeout = 60

    def setup(self):
        self.X, self.yb, self.yl = _data(20_000, 50)
        for f in (self.time_logistic_newton, self.time_logistic_lbfgs, self.time_lasso_cd,
                  self.time_logistic_lasso_cd):
            f()  # compile

    def time_logistic_newton(self):
        glm.fit(self.X, self.yb, loss="logistic", lam=1e-4, solver="newton")

    def time_logistic_lbfgs(self):
        glm.fit(self.X, self.yb, loss="logistic", lam=1e-4, solver="lbfgs")

    def time_lasso_cd(self):
        glm.fit(self.X, self.yl, lam=0.01, l1_ratio=1.0, solver="cd")

    def time_logistic_lasso_cd(self):
        glm.fit(self.X, self.yb, loss="logistic", lam=1e-3, l1_ratio=1.0, solver="cd")


class Path:
    """Lasso path of 50 values (covariance-mode CD) on n=20,000, p=50."""

    def setup(self):
        self.X, _, self.y = _data(20_000, 50)
        self.time_lasso_path()

    def time_lasso_path(self):
        glm.path(self.X, self.y, l1_ratio=1.0, n_lams=50, lam_min_ratio=1e-3)
