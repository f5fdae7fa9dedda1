"""scikit-learn estimators backed by :func:`fastgrad.glm.fit`.

Parameter names and meanings follow scikit-learn where they coincide
(``alpha``, ``l1_ratio``, ``C``, ``fit_intercept``, ``max_iter``, ``warm_start``),
so that, on the same data, the fitted coefficients are those of
``sklearn.linear_model`` (the DESIGN.md objective is rescaled accordingly):

- ``Lasso(alpha)`` / ``ElasticNet(alpha, l1_ratio)``: ``lam = alpha``;
- ``Ridge(alpha)``: ``lam = alpha / sum(sample_weight)`` (``alpha / n``);
- ``LogisticRegression(C, l1_ratio)``: ``lam = 1 / (C * sum(sample_weight))``.

``tol`` is passed to :func:`fastgrad.glm.fit`, whose stopping rules differ from
scikit-learn's (hence the smaller default); ``solver`` takes fastgrad's solver
names. This module is the only one that imports scikit-learn.
"""
import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _model as _glm

__all__ = ["LinearRegression", "Ridge", "Lasso", "ElasticNet", "LogisticRegression"]

_ACCEPT_SPARSE = ("csr", "csc", "coo")


class _GLMBase(BaseEstimator):
    """Shared fitting code: validation, the ``lam`` mapping and the solve."""

    _loss = "squared"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _lam_l1(self, sw_sum):  # pragma: no cover - overridden
        raise NotImplementedError

    def _fit_glm(self, X, y, sample_weight):
        if _is_dask(X):  # fitted on the dask cluster, which validates the data chunk by chunk
            sw = sample_weight
            sw_sum = float(X.shape[0] if sw is None else sw.sum())
        else:
            sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
            sw_sum = float(sw.sum())
        lam, l1_ratio = self._lam_l1(sw_sum)
        warm = None
        if getattr(self, "warm_start", False) and hasattr(self, "coef_"):
            coef = np.ravel(self.coef_)
            if coef.shape[0] == X.shape[1]:
                warm = (coef, float(np.ravel(self.intercept_)[0]) if self.fit_intercept else 0.0)
        res = _glm.fit(X, y, loss=self._loss, lam=lam, l1_ratio=l1_ratio,
                       fit_intercept=self.fit_intercept, solver=self.solver,
                       sample_weight=None if sample_weight is None else sw,
                       max_iter=self.max_iter, tol=self.tol, warm_start=warm)
        self.result_ = res
        self.n_iter_ = res.n_iter
        return res


class _Regressor(RegressorMixin, _GLMBase):
    def fit(self, X, y, sample_weight=None):
        """Fit the model. ``X`` dense or sparse (n, p) or a dask array, ``y`` (n,)."""
        if _is_dask(X):
            self.n_features_in_ = X.shape[1]
        else:
            X, y = validate_data(self, X, y, accept_sparse=_ACCEPT_SPARSE, dtype=np.float64,
                                 y_numeric=True)
        res = self._fit_glm(X, y, sample_weight)
        self.coef_ = res.coef
        self.intercept_ = res.intercept
        return self

    def predict(self, X):
        """Predicted values ``X @ coef_ + intercept_``."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=_ACCEPT_SPARSE, dtype=np.float64, reset=False)
        return np.asarray(X @ self.coef_).ravel() + self.intercept_


class LinearRegression(_Regressor):
    """Ordinary least squares (fastgrad ``loss="squared"``, ``lam=0``).

    Parameters
    ----------
    fit_intercept : bool, default=True
    solver : str, default="auto"
        ``"auto"`` computes the minimum-norm least-squares solution directly
        (LAPACK ``gelsd``, or LSQR for sparse ``X``), as scikit-learn does;
        any :data:`fastgrad.glm.SOLVERS` name runs that iterative solver.
    max_iter : int, optional
    tol : float, default=1e-8

    Attributes
    ----------
    coef_ : ndarray, shape (p,)
    intercept_ : float
    n_iter_ : int
    result_ : fastgrad.glm.GLMResult
    """

    def __init__(self, *, fit_intercept=True, solver="auto", max_iter=None, tol=1e-8):
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol

    def _lam_l1(self, sw_sum):
        return 0.0, 0.0

    def _fit_glm(self, X, y, sample_weight):
        if self.solver != "auto" or _is_dask(X):  # dask: L-BFGS on the cluster
            return super()._fit_glm(X, y, sample_weight)
        # the minimum-norm least-squares solution (unique even when p > n), as scikit-learn
        import scipy.sparse as sp
        from scipy.linalg import lstsq
        from scipy.sparse.linalg import lsqr
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        s = sw / sw.sum()
        xbar = np.asarray(X.T @ s).ravel() if self.fit_intercept else np.zeros(X.shape[1])
        ybar = float(s @ y) if self.fit_intercept else 0.0
        r = np.sqrt(s)
        if sp.issparse(X):
            A = sp.linalg.LinearOperator(
                X.shape, matvec=lambda v: r * (X @ v - xbar @ v),
                rmatvec=lambda u: X.T @ (r * u) - xbar * float(r @ u), dtype=np.float64)
            coef = lsqr(A, r * (y - ybar), atol=1e-14, btol=1e-14, iter_lim=100 * X.shape[1])[0]
        else:
            coef = lstsq((X - xbar) * r[:, None], r * (y - ybar), lapack_driver="gelsd",
                         cond=max(X.shape) * np.finfo(np.float64).eps)[0]
        c = ybar - float(xbar @ coef) if self.fit_intercept else 0.0
        obj = _glm.objective(X, y, coef, c, sample_weight=sw)
        res = _glm.GLMResult(coef=coef, intercept=c, objective=obj, n_iter=1, converged=True,
                             history=np.array([obj]), solver="lstsq",
                             fit_intercept=self.fit_intercept, message="least-squares solve")
        self.result_ = res
        self.n_iter_ = 1
        return res


class Ridge(_Regressor):
    """Least squares with an L2 penalty: minimises
    ``||y - Xw - c||^2_s + alpha ||w||^2`` (as ``sklearn.linear_model.Ridge``).

    Parameters
    ----------
    alpha : float, default=1.0
    fit_intercept : bool, default=True
    solver : str, default="auto"
    max_iter : int, optional
    tol : float, default=1e-8

    Attributes
    ----------
    coef_, intercept_, n_iter_, result_
    """

    def __init__(self, alpha=1.0, *, fit_intercept=True, solver="auto", max_iter=None, tol=1e-8):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol

    def _lam_l1(self, sw_sum):
        return _nonneg(self.alpha, "alpha") / sw_sum, 0.0


class ElasticNet(_Regressor):
    """Least squares with an elastic-net penalty, as ``sklearn.linear_model.ElasticNet``:
    ``1/(2 n) ||y - Xw - c||^2 + alpha (l1_ratio ||w||_1 + (1 - l1_ratio)/2 ||w||^2)``.

    Parameters
    ----------
    alpha : float, default=1.0
    l1_ratio : float, default=0.5
    fit_intercept : bool, default=True
    solver : str, default="auto"
        ``"auto"`` is coordinate descent.
    max_iter : int, default=1000
    tol : float, default=1e-8
    warm_start : bool, default=False
        Start from the previous solution.

    Attributes
    ----------
    coef_, intercept_, n_iter_, result_
    """

    def __init__(self, alpha=1.0, *, l1_ratio=0.5, fit_intercept=True, solver="auto",
                 max_iter=1000, tol=1e-8, warm_start=False):
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _lam_l1(self, sw_sum):
        return _nonneg(self.alpha, "alpha"), self.l1_ratio


class Lasso(ElasticNet):
    """Least squares with an L1 penalty (``ElasticNet`` with ``l1_ratio=1``), as
    ``sklearn.linear_model.Lasso``.

    Parameters
    ----------
    alpha : float, default=1.0
    fit_intercept : bool, default=True
    solver : str, default="auto"
    max_iter : int, default=1000
    tol : float, default=1e-8
    warm_start : bool, default=False
    """

    def __init__(self, alpha=1.0, *, fit_intercept=True, solver="auto", max_iter=1000,
                 tol=1e-8, warm_start=False):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def _lam_l1(self, sw_sum):
        return _nonneg(self.alpha, "alpha"), 1.0


class LogisticRegression(ClassifierMixin, _GLMBase):
    """Binary logistic regression, as ``sklearn.linear_model.LogisticRegression``:
    minimises ``C sum_i s_i logloss_i + (1 - l1_ratio)/2 ||w||^2 + l1_ratio ||w||_1``.

    The two classes may have any labels (``classes_`` is sorted; the second is
    the positive class). For more than two classes use
    ``fastgrad.sklearn.MultinomialLogisticRegression``.

    Parameters
    ----------
    C : float, default=1.0
        Inverse regularisation strength (``np.inf`` for none).
    l1_ratio : float, default=0.0
    fit_intercept : bool, default=True
    solver : str, default="auto"
    max_iter : int, optional
    tol : float, default=1e-8
    warm_start : bool, default=False

    Attributes
    ----------
    classes_ : ndarray, shape (2,)
    coef_ : ndarray, shape (1, p)
    intercept_ : ndarray, shape (1,)
    n_iter_ : int
    result_ : fastgrad.glm.GLMResult
    """

    _loss = "logistic"

    def __init__(self, C=1.0, *, l1_ratio=0.0, fit_intercept=True, solver="auto",
                 max_iter=None, tol=1e-8, warm_start=False):
        self.C = C
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _lam_l1(self, sw_sum):
        C = float(self.C)
        if not C > 0:
            raise ValueError(f"C must be positive, got {self.C}")
        return (0.0 if np.isinf(C) else 1.0 / (C * sw_sum)), self.l1_ratio

    def fit(self, X, y, sample_weight=None):
        """Fit the model. ``y`` must have exactly two classes; ``X`` may be a dask array."""
        if _is_dask(X):
            self.n_features_in_ = X.shape[1]
            self.classes_ = _dask_classes(y)
        else:
            X, y = validate_data(self, X, y, accept_sparse=_ACCEPT_SPARSE, dtype=np.float64)
            check_classification_targets(y)
            self.classes_ = np.unique(y)
        if self.classes_.shape[0] != 2:
            raise ValueError(
                f"Only binary classification is supported: LogisticRegression needs exactly 2 "
                f"classes, got {self.classes_.shape[0]} class(es); use "
                "fastgrad.sklearn.MultinomialLogisticRegression")
        y01 = (y == self.classes_[1]).astype(np.float64)
        res = self._fit_glm(X, y01, sample_weight)
        self.coef_ = res.coef[None, :]
        self.intercept_ = np.array([res.intercept])
        return self

    def decision_function(self, X):
        """Linear predictor, shape (n,)."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, accept_sparse=_ACCEPT_SPARSE, dtype=np.float64, reset=False)
        return np.asarray(X @ self.coef_[0]).ravel() + self.intercept_[0]

    def predict_proba(self, X):
        """Class probabilities, shape (n, 2), columns in ``classes_`` order."""
        t = self.decision_function(X)
        e = np.exp(-np.abs(t))
        p1 = np.where(t >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        return np.column_stack([1.0 - p1, p1])

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba` (computed stably)."""
        t = self.decision_function(X)
        lp1 = -np.logaddexp(0.0, -t)
        lp0 = -np.logaddexp(0.0, t)
        return np.column_stack([lp0, lp1])

    def predict(self, X):
        """Predicted class labels."""
        check_is_fitted(self, "coef_")
        return self.classes_[(self.decision_function(X) > 0).astype(np.int64)]


def _is_dask(X):
    """Whether ``X`` is a dask array (without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask"


def _dask_classes(y):
    """Sorted distinct labels of ``y`` (a dask array is reduced on the cluster)."""
    if _is_dask(y):
        import dask.array as da
        return np.unique(da.unique(y).compute())
    return np.unique(np.asarray(y))


def _nonneg(value, name):
    value = float(value)
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value
