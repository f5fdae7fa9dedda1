"""Regularised linear and logistic regression.

Objective (DESIGN.md), for coefficients ``w`` and an unpenalised intercept ``c``::

    (1/n) sum_i s_i loss(y_i, x_i.w + c) + lam (l1_ratio ||w||_1 + (1 - l1_ratio)/2 ||w||^2)

with the squared loss ``(1/2)(y - t)^2`` or the logistic loss
``log(1 + exp(t)) - y t`` (``y`` in ``{0, 1}``) and sample weights ``s_i``
normalised to sum to ``n`` (all ones by default). Hence squared + ``l1_ratio=1``
is scikit-learn's ``Lasso(alpha=lam)``, squared + elastic net is
``ElasticNet(alpha=lam, l1_ratio)``, squared + ``l1_ratio=0`` is
``Ridge(alpha=n*lam)`` and logistic + ``l1_ratio=0`` is
``LogisticRegression(C=1/(n*lam))``.

Solvers (``solver=``):

- ``"cd"`` -- coordinate descent (glmnet's proximal-Newton/IRLS CD for the
  logistic loss; covariance updates on the Gram matrix for the squared loss
  when ``n > p``); handles every penalty; the default for L1/elastic net.
- ``"fista"`` / ``"ista"`` -- (accelerated) proximal gradient; every penalty.
- ``"newton"`` -- damped Newton; smooth penalties (``l1_ratio = 0`` or ``lam = 0``).
- ``"lbfgs"``, ``"gd"``, ``"momentum"`` -- smooth penalties.
- ``"sgd"``, ``"adagrad"``, ``"adam"`` -- mini-batch stochastic; smooth penalties;
  ``max_iter`` counts epochs.
- ``"auto"`` -- ``"cd"`` with an L1 part; otherwise ``"newton"`` when
  ``p <= 1000`` and ``n <= 2 max(20000, 100 p)``, and ``"lbfgs"`` beyond.

For ``n >= 100,000`` the smooth solvers ``"lbfgs"`` and ``"newton"`` start from a
fit on a 5% sub-sample (unless given a warm start or
``solver_options={"presolve": False}``), and ``"newton"`` estimates its Hessian
from a fixed sub-sample of ``max(20000, 100 p)`` rows when ``n`` is more than
twice that (``solver_options={"hessian_subsample": None}`` for the exact one).
"""
from ._model import (  # noqa: F401
    fit, path, GLMResult, GLMPath,
    objective, loss_and_grad, SOLVERS,
)

__all__ = [
    'fit', 'path', 'GLMResult', 'GLMPath', 'objective',
    'loss_and_grad', 'SOLVERS',
]
