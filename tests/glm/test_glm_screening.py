"""Screened coordinate descent (strong rules + working sets + KKT check, issue 14).

Every screened path must equal the unscreened one and satisfy the optimality
conditions on every feature, checked with an independent NumPy gradient.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from fastgrad import glm
from fastgrad.kernels import glm_col_dots, glm_col_dots_csc


def _toeplitz(n, p, rho, rng):
    X = np.empty((n, p))
    X[:, 0] = rng.standard_normal(n)
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho ** 2) * rng.standard_normal(n)
    return X


def _design(kind, rng):
    if kind == "dense_wide":
        return rng.standard_normal((60, 200))
    if kind == "correlated":
        return _toeplitz(60, 150, 0.8, rng)
    if kind == "tall":
        return rng.standard_normal((300, 30))
    X = sp.random(80, 250, density=0.06, random_state=int(rng.integers(1 << 30)),
                  data_rvs=lambda k: rng.standard_t(3, k), format="csr")
    return X.tocsc() if kind == "csc" else X


def _response(X, loss, rng):
    p = X.shape[1]
    w = np.zeros(p)
    w[rng.choice(p, 6, replace=False)] = rng.choice([-1.5, 1.0, 2.0], 6)
    t = np.asarray(X @ w).ravel()
    if loss == "squared":
        return t + 0.5 * rng.standard_normal(X.shape[0])
    return (rng.random(X.shape[0]) < 1 / (1 + np.exp(-t))).astype(float)


def _kkt_violation(X, y, loss, coef, c, lam, l1_ratio):
    """Largest violation of the optimality conditions (NumPy formulas, mean loss)."""
    Xd = X.toarray() if sp.issparse(X) else X
    t = Xd @ coef + c
    d = t - y if loss == "squared" else 1 / (1 + np.exp(-t)) - y
    n = len(y)
    g = Xd.T @ d / n + lam * (1 - l1_ratio) * coef
    l1 = lam * l1_ratio
    nz = coef != 0
    v_nz = np.abs(g[nz] + l1 * np.sign(coef[nz]))
    v_z = np.maximum(np.abs(g[~nz]) - l1, 0.0)
    return max(v_nz.max(initial=0.0), v_z.max(initial=0.0)), abs(d.mean())


CASES = [(k, loss) for k in ("dense_wide", "correlated", "csr", "csc", "tall")
         for loss in ("squared", "logistic")]


@pytest.mark.parametrize("kind,loss", CASES)
def test_screened_path_equals_unscreened_and_satisfies_kkt(kind, loss):
    rng = np.random.default_rng(hash((kind, loss)) % (1 << 32))
    X = _design(kind, rng)
    y = _response(X, loss, rng)
    l1_ratio = 1.0 if kind != "correlated" else 0.7
    kw = dict(loss=loss, l1_ratio=l1_ratio, n_lams=12, tol=1e-10)
    a = glm.path(X, y, **kw)
    b = glm.path(X, y, **kw, solver_options={"screen": False})
    np.testing.assert_allclose(a.objectives, b.objectives, rtol=1e-11)
    np.testing.assert_allclose(a.coefs, b.coefs, atol=1e-6)
    assert a.converged.all()
    for k in range(len(a)):
        v, gc = _kkt_violation(X, y, loss, a.coefs[k], a.intercepts[k], a.lams[k], l1_ratio)
        assert v < 1e-7, (k, v)
        assert gc < 1e-7


def test_kkt_check_adds_features_the_strong_rule_missed():
    """A wrong screening state (all gradients 'zero') leaves the working set empty:
    the check over all features must find every active feature anyway."""
    from fastgrad.glm._model import _Problem, _solve_cd_screened
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 120))
    y = _response(X, "squared", rng)
    prob = _Problem(X, y, "squared", True, None)
    lam = 0.05 * prob.lam_max(1.0)
    coef0 = np.zeros(120)
    state = {"r": np.zeros(50), "coef": coef0.copy(), "c": 0.0, "lam": lam,
             "ref": (np.zeros(50), np.zeros(120))}
    coef, c, _, conv, _, _, obj, info = _solve_cd_screened(prob, lam, 1.0, 1000, 1e-10,
                                                           coef0, 0.0, state)
    assert info["screen_rounds"] >= 2 and conv
    ref = glm.fit(X, y, lam=lam, l1_ratio=1.0, tol=1e-10, solver_options={"screen": False})
    np.testing.assert_allclose(obj, ref.objective, rtol=1e-11)
    np.testing.assert_allclose(coef, ref.coef, atol=1e-6)
    assert _kkt_violation(X, y, "squared", coef, c, lam, 1.0)[0] < 1e-7


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_screened_fit_equals_unscreened(loss):
    rng = np.random.default_rng(5)
    X = _toeplitz(70, 300, 0.5, rng)
    y = _response(X, loss, rng)
    lam = 0.1 * glm.path(X, y, loss=loss, n_lams=1).lams[0]
    a = glm.fit(X, y, loss=loss, lam=lam, l1_ratio=0.9, tol=1e-10)
    b = glm.fit(X, y, loss=loss, lam=lam, l1_ratio=0.9, tol=1e-10,
                solver_options={"screen": False})
    assert a.info["working_set"] <= 300
    np.testing.assert_allclose(a.objective, b.objective, rtol=1e-11)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-6)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_screened_path_matches_sklearn_objective(l1_ratio):
    from sklearn.linear_model import ElasticNet
    rng = np.random.default_rng(7)
    X = _toeplitz(60, 200, 0.5, rng)
    y = _response(X, "squared", rng)
    P = glm.path(X, y, l1_ratio=l1_ratio, n_lams=8, tol=1e-10)
    for k in (2, 5, 7):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = ElasticNet(alpha=P.lams[k], l1_ratio=l1_ratio, tol=1e-12,
                           max_iter=100_000).fit(X, y)
        f_sk = glm.objective(X, y, m.coef_, m.intercept_, lam=P.lams[k], l1_ratio=l1_ratio)
        # ours is at least as good, and the two agree closely
        assert P.objectives[k] <= f_sk * (1 + 1e-9)
        assert abs(P.objectives[k] - f_sk) <= 1e-7 * f_sk


def test_col_dots_kernels_match_numpy():
    rng = np.random.default_rng(0)
    X = np.asfortranarray(rng.standard_normal((37, 11)))
    r = rng.standard_normal(37)
    cols = np.array([3, 0, 10, 3], dtype=np.int64)
    out = np.empty(4)
    glm_col_dots(X, r, cols, out)
    np.testing.assert_allclose(out, X[:, cols].T @ r, rtol=1e-13)
    A = sp.random(37, 11, density=0.3, random_state=1, format="csc")
    out2 = np.empty(4)
    glm_col_dots_csc(A.data, A.indices.astype(np.int64), A.indptr.astype(np.int64), r, cols,
                     out2)
    np.testing.assert_allclose(out2, A[:, cols].T @ r, rtol=1e-13)


@pytest.mark.parametrize("l1_ratio", [1.0, 0.5])
def test_sparse_text_like_path_matches_sklearn_objective(l1_ratio):
    """Screened CSC coordinate descent on a text-like design (Zipf column frequencies,
    log-count values, p >> n) reaches scikit-learn's optimum, tightly converged."""
    from sklearn.linear_model import ElasticNet
    rng = np.random.default_rng(11)
    n, p, nnz = 80, 600, 2400
    freq = 1.0 / np.arange(1, p + 1) ** 1.1
    cols = rng.choice(p, size=nnz, p=freq / freq.sum())
    X = sp.csr_matrix((np.log1p(rng.geometric(0.5, nnz).astype(float)),
                       (rng.integers(0, n, nnz), cols)), shape=(n, p))
    X.sum_duplicates()
    y = _response(X, "squared", rng)
    P = glm.path(X, y, l1_ratio=l1_ratio, n_lams=10, tol=1e-10)
    assert P.converged.all()
    for k in (3, 6, 9):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = ElasticNet(alpha=P.lams[k], l1_ratio=l1_ratio, tol=1e-14,
                           max_iter=1_000_000).fit(X.tocsc(), y)
        f_sk = glm.objective(X, y, m.coef_, m.intercept_, lam=P.lams[k], l1_ratio=l1_ratio)
        assert P.objectives[k] <= f_sk * (1 + 1e-10)
        assert abs(P.objectives[k] - f_sk) <= 1e-8 * f_sk
        if l1_ratio < 1:  # strictly convex: unique coefficients (a lasso on p >> n
            np.testing.assert_allclose(P.coefs[k], m.coef_, atol=1e-5)  # with tied columns is not)
        v, gc = _kkt_violation(X, y, "squared", P.coefs[k], P.intercepts[k], P.lams[k],
                               l1_ratio)
        assert v < 1e-7 and gc < 1e-7
