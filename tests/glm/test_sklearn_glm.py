"""fastgrad GLMs against scikit-learn on the same objective, and the sklearn estimators."""
import numpy as np
import pytest
import scipy.sparse as sp

sklearn = pytest.importorskip("sklearn")
from sklearn import linear_model as sk  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastgrad import glm  # noqa: E402
from fastgrad.sklearn import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge  # noqa: E402

RTOL = 1e-6


def _rel(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def _regression_data(name):
    if name == "diabetes":
        X, y = load_diabetes(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        return X, y
    rng = np.random.default_rng(3)
    X = rng.normal(size=(250, 12)) * rng.uniform(0.5, 3.0, size=12) + rng.normal(size=12)
    X[rng.random(X.shape) < 0.3] = 0.0  # sparse-friendly, non-centred columns
    w = rng.normal(size=12) * (rng.random(12) < 0.6)
    return X, X @ w + 1.5 + rng.normal(size=250)


def _classification_data(name):
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        return StandardScaler().fit_transform(X), y
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 8))
    X[rng.random(X.shape) < 0.3] = 0.0
    t = X @ rng.normal(size=8) - 0.5
    return X, (rng.random(400) < 1 / (1 + np.exp(-t))).astype(int)


def _weights(n):
    return np.random.default_rng(5).uniform(0.2, 3.0, size=n)


@pytest.mark.parametrize("dataset", ["diabetes", "simulated"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", ["lasso", "enet", "ridge"])
def test_regression_matches_sklearn(dataset, sparse, fit_intercept, weighted, kind):
    X, y = _regression_data(dataset)
    sw = _weights(X.shape[0]) if weighted else None
    Xf = sp.csr_matrix(X) if sparse else X
    if kind == "lasso":
        ours = Lasso(alpha=0.3, fit_intercept=fit_intercept, tol=1e-12)
        ref = sk.Lasso(alpha=0.3, fit_intercept=fit_intercept, tol=1e-13, max_iter=100000)
    elif kind == "enet":
        ours = ElasticNet(alpha=0.3, l1_ratio=0.4, fit_intercept=fit_intercept, tol=1e-12)
        ref = sk.ElasticNet(alpha=0.3, l1_ratio=0.4, fit_intercept=fit_intercept, tol=1e-13,
                            max_iter=100000)
    else:
        ours = Ridge(alpha=5.0, fit_intercept=fit_intercept, tol=1e-12)
        ref = sk.Ridge(alpha=5.0, fit_intercept=fit_intercept, solver="cholesky")
    ours.fit(Xf, y, sample_weight=sw)
    # sklearn's exact Ridge solvers are dense-only with an intercept: same data, dense
    ref.fit(X if kind == "ridge" else Xf, y, sample_weight=sw)
    assert _rel(ours.coef_, ref.coef_) <= RTOL
    assert abs(ours.intercept_ - ref.intercept_) <= RTOL * max(1.0, abs(ref.intercept_))
    if kind != "ridge":
        assert np.count_nonzero(ours.coef_) == np.count_nonzero(ref.coef_)


def test_glm_fit_scaling_matches_design_equivalences():
    """DESIGN.md: Lasso(alpha=lam), Ridge(alpha=n*lam), LogisticRegression(C=1/(n*lam))."""
    X, y = _regression_data("diabetes")
    n = X.shape[0]
    r = glm.fit(X, y, lam=0.2, l1_ratio=1.0, tol=1e-12)
    assert _rel(r.coef, sk.Lasso(alpha=0.2, tol=1e-13, max_iter=10 ** 5).fit(X, y).coef_) <= RTOL
    r = glm.fit(X, y, lam=0.01, l1_ratio=0.0, tol=1e-12)
    assert _rel(r.coef, sk.Ridge(alpha=n * 0.01).fit(X, y).coef_) <= RTOL
    Xc, yc = _classification_data("breast_cancer")
    n = Xc.shape[0]
    for solver in ("newton", "lbfgs", "cd"):
        r = glm.fit(Xc, yc, loss="logistic", lam=0.001, solver=solver,
                    tol=1e-20 if solver == "lbfgs" else 1e-13,
                    solver_options={"gtol": 1e-12} if solver == "lbfgs" else None)
        ref = sk.LogisticRegression(C=1 / (n * 0.001), tol=1e-12, solver="newton-cholesky",
                                    max_iter=1000).fit(Xc, yc)
        assert _rel(r.coef, ref.coef_) <= RTOL, solver
        assert abs(r.intercept - ref.intercept_[0]) <= RTOL * max(1, abs(ref.intercept_[0]))


@pytest.mark.parametrize("dataset", ["breast_cancer", "simulated"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("solver", ["auto", "cd"])
def test_logistic_matches_sklearn(dataset, sparse, fit_intercept, weighted, solver):
    X, y = _classification_data(dataset)
    sw = _weights(X.shape[0]) if weighted else None
    Xf = sp.csr_matrix(X) if sparse else X
    ours = LogisticRegression(C=0.5, fit_intercept=fit_intercept, tol=1e-12, solver=solver)
    ours.fit(Xf, y, sample_weight=sw)
    ref = sk.LogisticRegression(C=0.5, fit_intercept=fit_intercept, tol=1e-12,
                                solver="newton-cholesky", max_iter=1000).fit(X, y, sample_weight=sw)
    assert _rel(ours.coef_, ref.coef_) <= RTOL
    assert abs(ours.intercept_[0] - ref.intercept_[0]) <= RTOL * max(1.0, abs(ref.intercept_[0]))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_logistic_labels_and_unpenalised(rng):
    X, y = _classification_data("simulated")
    labels = np.array(["no", "yes"])[y]
    ours = LogisticRegression(C=np.inf, tol=1e-12).fit(X, labels)
    ref = sk.LogisticRegression(C=np.inf, tol=1e-12, solver="newton-cholesky").fit(X, labels)
    assert _rel(ours.coef_, ref.coef_) <= RTOL
    assert list(ours.classes_) == ["no", "yes"]
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    with pytest.raises(ValueError, match="Only binary"):
        LogisticRegression().fit(X, np.arange(400) % 3)


@pytest.mark.parametrize("sparse", [False, True])
def test_linear_regression_matches_sklearn(sparse):
    X, y = _regression_data("simulated")
    sw = _weights(X.shape[0])
    Xf = sp.csr_matrix(X) if sparse else X
    ours = LinearRegression().fit(Xf, y, sample_weight=sw)
    ref = sk.LinearRegression().fit(X, y, sample_weight=sw)
    assert _rel(ours.coef_, ref.coef_) <= RTOL
    it = LinearRegression(solver="newton", tol=1e-14).fit(Xf, y, sample_weight=sw)
    assert _rel(it.coef_, ref.coef_) <= RTOL


def test_lasso_path_matches_sklearn():
    X, y = _regression_data("diabetes")
    y = y - y.mean()
    ours = glm.path(X, y, l1_ratio=1.0, n_lams=20, lam_min_ratio=1e-3, fit_intercept=False,
                    tol=1e-12)
    alphas, coefs, _ = sk.lasso_path(X, y, alphas=ours.lams, tol=1e-13, max_iter=100000)
    np.testing.assert_allclose(alphas, ours.lams)
    for k in range(1, len(ours)):  # k = 0 is all zeros in both
        assert _rel(ours.coefs[k], coefs[:, k]) <= RTOL, k
    assert np.all(ours.coefs[0] == 0) and np.all(coefs[:, 0] == 0)
    # logistic elastic net path: glmnet-style CD vs sklearn saga at one grid point
    Xc, yc = _classification_data("simulated")
    pl = glm.path(Xc, yc, loss="logistic", l1_ratio=1.0, n_lams=10, tol=1e-12)
    k = 6
    n = Xc.shape[0]
    ref = sk.LogisticRegression(C=1 / (n * pl.lams[k]), l1_ratio=1.0, solver="saga", tol=1e-10,
                                max_iter=100000).fit(Xc, yc)
    assert _rel(pl.coefs[k], ref.coef_) <= 1e-4  # saga's own accuracy limits this comparison


@parametrize_with_checks([LinearRegression(), Ridge(), Lasso(alpha=0.01), ElasticNet(alpha=0.01),
                          LogisticRegression()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
