"""asv benchmarks for multinomial logistic regression (kernels compiled in ``setup``)."""
import numpy as np
import scipy.sparse as sp

from fastgrad import multinomial

from .peers_multinomial import _simulate
from fastgrad.kernels import (multinomial_hessian, multinomial_hessian_csr, multinomial_loss_grad,
                              multinomial_loss_grad_csr, multinomial_proba)


def _data(n, p, K, seed=0):
    X, y = _simulate(n, p, K, seed)
    return X, y.astype(np.int64)


class MultinomialKernels:
    """Loss + gradient and Hessian assembly (dense and CSR)."""

    params = ([(2000, 10, 3), (20000, 50, 5)],)
    param_names = ["n_p_K"]
    timeout = 60

    def setup(self, npk):
        n, p, K = npk
        self.X, self.y = _data(n, p, K)
        self.Xs = sp.csr_matrix(np.where(np.abs(self.X) > 1.0, self.X, 0.0))
        rng = np.random.default_rng(1)
        self.coef = rng.standard_normal((K - 1, p)) * 0.1
        self.b = np.zeros(K - 1)
        self.w = np.ones(n)
        self.P = multinomial_proba(self.X, self.coef, self.b)
        self.p = p
        # compile / load everything outside the timings
        self.time_loss_grad(npk)
        self.time_loss_grad_csr(npk)
        self.time_hessian(npk)
        self.time_hessian_csr(npk)

    def time_loss_grad(self, npk):
        multinomial_loss_grad(self.X, self.y, self.coef, self.b, self.w)

    def time_loss_grad_csr(self, npk):
        Xs = self.Xs
        multinomial_loss_grad_csr(Xs.data, Xs.indices, Xs.indptr, self.y, self.coef, self.b,
                                  self.w)

    def time_hessian(self, npk):
        multinomial_hessian(self.X, self.P, self.w, True)

    def time_hessian_csr(self, npk):
        Xs = self.Xs
        multinomial_hessian_csr(Xs.data, Xs.indices, Xs.indptr, self.p, self.P, self.w, True)


class MultinomialFit:
    """Full unpenalised fit (the default: whitened L-BFGS then Newton; Newton; L-BFGS)."""

    params = ([(2000, 10, 3), (20000, 50, 5)], ["auto", "newton", "lbfgs"])
    param_names = ["n_p_K", "solver"]
    timeout = 120

    def setup(self, npk, solver):
        self.X, self.y = _data(*npk)
        multinomial.fit(self.X[:200], self.y[:200], solver=solver, check_separation=False)

    def time_fit(self, npk, solver):
        multinomial.fit(self.X, self.y, solver=solver)
