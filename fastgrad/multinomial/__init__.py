"""Multinomial logistic regression by Newton's method (or L-BFGS).

Model (see :mod:`fastgrad.kernels.multinomial`): the classes are sorted and
the LAST class is the reference with logit 0; with ``x~ = (x, 1)``

    P(k | x) = exp(theta_k . x~) / (1 + sum_{i < K-1} exp(theta_i . x~)),  k < K-1.

The fit minimises

    objective = -(1/n) loglik + (lam / 2) * ||coef||_2^2

(the intercepts are not penalised; with ``sample_weight`` the mean is a
weighted mean). Unpenalised, the probabilities equal scikit-learn's
multinomial ``LogisticRegression(C=np.inf)`` (its symmetric parametrisation
differs from ours by a shift of all logits, which changes neither the
probabilities nor the likelihood). With two classes ``lam = 1 / (n C)`` is
scikit-learn's ``LogisticRegression(C=C)``; with more classes the L2 problems
differ, because scikit-learn penalises all K symmetric coefficient vectors
while we penalise the K-1 differences from the reference class.

When the classes are (quasi-)separable and ``lam == 0`` the maximum-likelihood
estimate does not exist: the fit stops with finite coefficients and emits a
:class:`PerfectSeparationWarning` (a :class:`fastgrad.ConvergenceWarning`).
"""
from ._model import (  # noqa: F401
    fit, MultinomialResult, PerfectSeparationWarning, loss_and_grad,
    hessian, objective,
)

__all__ = [
    'fit', 'MultinomialResult', 'PerfectSeparationWarning', 'loss_and_grad', 'hessian',
    'objective',
]
