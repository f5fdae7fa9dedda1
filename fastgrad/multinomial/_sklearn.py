"""scikit-learn wrapper for :func:`fastgrad.multinomial.fit` (imports scikit-learn)."""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _model as _mn
from ..glm._sklearn import _dask_classes, _is_dask

__all__ = ["MultinomialLogisticRegression"]


class MultinomialLogisticRegression(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression fitted by Newton's method (or L-BFGS).

    Minimises ``-(1/n) loglik + (lam/2) ||coef||^2`` with the last class as
    reference (see :func:`fastgrad.multinomial.fit`). Unpenalised it gives
    the probabilities of scikit-learn's ``LogisticRegression(C=np.inf)``; for
    two classes ``lam = 1/(n C)`` matches ``LogisticRegression(C=C)``.

    With ``lam=0`` on separable data (e.g. more features than rows) the MLE
    does not exist: the fit warns and returns finite but arbitrary
    coefficients, so results are not unique (scikit-learn's sample-weight
    equivalence checks cannot hold there; use ``lam > 0``).

    Parameters
    ----------
    lam : float, default=0.0
        L2 penalty (intercepts are not penalised).
    fit_intercept : bool, default=True
    solver : {"auto", "newton", "lbfgs"}, default="auto"
        As :func:`fastgrad.multinomial.fit`: whitened L-BFGS, then Newton steps up to
        1,500 parameters.
    max_iter : int, optional
        Default 100 (Newton) or 1000 (L-BFGS, auto).
    tol : float, optional
        Solver tolerance (see :func:`fastgrad.multinomial.fit`).

    Attributes
    ----------
    classes_ : ndarray (K,)
    coef_ : ndarray (K-1, p)
        Slopes of the non-reference classes.
    intercept_ : ndarray (K-1,)
    n_features_in_ : int
    n_iter_ : int
    result_ : fastgrad.multinomial.MultinomialResult
    """

    def __init__(self, lam=0.0, fit_intercept=True, solver="auto", max_iter=None, tol=None):
        self.lam = lam
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit the model; returns ``self``. ``X`` may be a dask array (fitted on the cluster)."""
        if _is_dask(X):
            self.n_features_in_ = X.shape[1]
            classes = _dask_classes(y)
        else:
            X, y = validate_data(self, X, y, accept_sparse="csr", dtype=np.float64)
            check_classification_targets(y)
            classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError("Classifier can't train when only one class is present "
                             f"(got 1 class: {classes[0]!r})")
        res = _mn.fit(X, y, lam=self.lam, fit_intercept=self.fit_intercept, solver=self.solver,
                      sample_weight=sample_weight, max_iter=self.max_iter, tol=self.tol)
        self.result_ = res
        self.classes_ = res.classes
        self.coef_ = res.coef
        self.intercept_ = res.intercept
        self.n_iter_ = res.n_iter
        return self

    def decision_function(self, X):
        """Logits of all classes relative to the last one, shape (n, K); for two
        classes the shape is (n,) and positive values favour ``classes_[1]``."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        D = self.result_.decision_function(X)
        if len(self.classes_) == 2:
            return D[:, 1] - D[:, 0]
        return D

    def predict_proba(self, X):
        """Class probabilities, shape (n, K)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        return self.result_.predict_proba(X)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (computed stably from the logits)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse="csr", dtype=np.float64, reset=False)
        D = self.result_.decision_function(X)
        m = D.max(axis=1, keepdims=True)
        return D - (m + np.log(np.exp(D - m).sum(axis=1, keepdims=True)))

    def predict(self, X):
        """Most probable class of each row."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
