import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numba import njit

from fastgrad import ConvergenceWarning, multinomial
from fastgrad._gradcheck import gradcheck, numerical_gradient
from fastgrad.kernels import (multinomial_hessian, multinomial_hessian_csr, multinomial_loss,
                              multinomial_loss_grad, multinomial_loss_grad_csr,
                              multinomial_proba, multinomial_proba_csr)
from fastgrad.multinomial import PerfectSeparationWarning


# --------------------------------------------------------------------------- helpers

def simulate(rng, n=600, p=4, K=4, scale=0.7):
    X = rng.standard_normal((n, p))
    B = rng.standard_normal((p, K)) * scale
    L = X @ B + rng.standard_normal(K) * 0.3
    P = np.exp(L - L.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (P.cumsum(1) > rng.random(n)[:, None]).argmax(1)
    return X, y


def numpy_reference(X, y, coef, b, w, fit_intercept=True):
    """Independent NumPy formulas: mean NLL, gradient, probabilities, Hessian."""
    n = X.shape[0]
    K = coef.shape[0] + 1
    eta = np.column_stack([X @ coef.T + b, np.zeros(n)])
    lse = np.logaddexp.reduce(eta, axis=1)
    P = np.exp(eta - lse[:, None])
    W = w.sum()
    loss = np.sum(w * (lse - eta[np.arange(n), y])) / W
    R = (P - np.eye(K)[y])[:, :K - 1] * w[:, None]
    Xt = np.column_stack([X, np.ones(n)]) if fit_intercept else X
    q = Xt.shape[1]
    H = np.zeros(((K - 1) * q, (K - 1) * q))
    for i in range(K - 1):
        for j in range(K - 1):
            d = w * P[:, i] * ((i == j) - P[:, j])
            H[i * q:(i + 1) * q, j * q:(j + 1) * q] = (Xt * d[:, None]).T @ Xt / W
    return loss, R.T @ X / W, R.sum(0) / W, P, H


def wine_subset():
    from sklearn.datasets import load_wine
    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    return X[:, :5], y  # all 13 features separate the classes; these 5 do not


def statsmodels_to_ours(params):
    """statsmodels MNLogit params (q, K-1), first class reference, constant first
    -> (coef (K-1, p), intercept (K-1,)) with the last class as reference."""
    B = np.column_stack([np.zeros(params.shape[0]), params])  # (q, K) vs class 0
    D = B[:, :-1] - B[:, [-1]]
    return D[1:].T, D[0]


# --------------------------------------------------------------------------- kernels

def test_kernels_match_numpy_formulas(rng):
    X, y = simulate(rng, n=700, p=5, K=4)
    coef = rng.standard_normal((3, 5))
    b = rng.standard_normal(3)
    w = rng.random(700) + 0.2
    loss, gc, gi, P, H = numpy_reference(X, y, coef, b, w)
    l2, gc2, gi2 = multinomial_loss_grad(X, y.astype(np.int64), coef, b, w)
    assert l2 == pytest.approx(loss, rel=1e-13)
    assert multinomial_loss(X, y.astype(np.int64), coef, b, w) == pytest.approx(loss, rel=1e-13)
    np.testing.assert_allclose(gc2, gc, atol=1e-14)
    np.testing.assert_allclose(gi2, gi, atol=1e-14)
    P2 = multinomial_proba(X, coef, b)
    np.testing.assert_allclose(P2, P, atol=1e-14)
    H2 = multinomial_hessian(X, P2, w, True)
    np.testing.assert_allclose(H2, H, atol=1e-14)
    np.testing.assert_array_equal(H2, H2.T)
    assert np.linalg.eigvalsh(H2).min() > 0  # NLL Hessian is positive (semi-)definite
    # without intercept
    H3 = multinomial_hessian(X, P2, w, False)
    np.testing.assert_allclose(H3, numpy_reference(X, y, coef, b, w, False)[4], atol=1e-14)


def test_csr_kernels_match_dense(rng):
    X, y = simulate(rng, n=400, p=6, K=3)
    Xs = sp.random(400, 6, density=0.35, random_state=4, format="csr")
    Xd = Xs.toarray()
    Xs.indices = Xs.indices.astype(np.int64)  # the dtype the front-end passes
    Xs.indptr = Xs.indptr.astype(np.int64)
    y = y.astype(np.int64)
    coef = rng.standard_normal((2, 6))
    b = rng.standard_normal(2)
    w = rng.random(400) + 0.1
    ld = multinomial_loss_grad(Xd, y, coef, b, w)
    ls = multinomial_loss_grad_csr(Xs.data, Xs.indices, Xs.indptr, y, coef, b, w)
    assert ls[0] == pytest.approx(ld[0], rel=1e-13)
    np.testing.assert_allclose(ls[1], ld[1], atol=1e-14)
    np.testing.assert_allclose(ls[2], ld[2], atol=1e-14)
    P = multinomial_proba(Xd, coef, b)
    np.testing.assert_allclose(multinomial_proba_csr(Xs.data, Xs.indices, Xs.indptr, coef, b),
                               P, atol=1e-15)
    for fi in (True, False):
        Hs = multinomial_hessian_csr(Xs.data, Xs.indices, Xs.indptr, 6, P, w, fi)
        np.testing.assert_allclose(Hs, numpy_reference(Xd, y, coef, b, w, fi)[4], atol=1e-14)


def test_loss_grad_spread_kernels_match_numpy(rng):
    from fastgrad.kernels.multinomial import _loss_grad_spread, _loss_grad_spread_csr
    X, y = simulate(rng, n=500, p=6, K=4)
    X[np.abs(X) < 0.8] = 0.0
    Xs = sp.csr_matrix(X)
    idx, ptr = Xs.indices.astype(np.int64), Xs.indptr.astype(np.int64)
    y = y.astype(np.int64)
    coef = rng.standard_normal((3, 6)) * 2.0
    b = rng.standard_normal(3)
    w = rng.random(500) + 0.1
    loss, gc, gi, _, _ = numpy_reference(X, y, coef, b, w)
    E = np.column_stack([X @ coef.T + b, np.zeros(500)])
    spread = float(np.max(E.max(1) - E.min(1)))
    for out in (_loss_grad_spread(X, y, coef, b, w),
                _loss_grad_spread_csr(Xs.data, idx, ptr, y, coef, b, w)):
        assert out[0] == pytest.approx(loss, rel=1e-13)
        np.testing.assert_allclose(out[1], gc, atol=1e-14)
        np.testing.assert_allclose(out[2], gi, atol=1e-14)
        assert out[3] == pytest.approx(spread, rel=1e-13)


@pytest.mark.parametrize("sparse", [False, True])
def test_gradient_and_hessian_finite_differences(rng, sparse):
    X, y = simulate(rng, n=300, p=3, K=4)
    Xin = sp.csr_matrix(X) if sparse else X
    w = rng.random(300) + 0.5
    coef = rng.standard_normal((3, 3)) * 0.5
    b = rng.standard_normal(3) * 0.5
    lam = 0.3

    def f_flat(theta):
        T = theta.reshape(3, 4)
        return multinomial.loss_and_grad(Xin, y, T[:, :3], T[:, 3], lam=lam, sample_weight=w)

    def g_flat(theta):
        f, gc, gi = f_flat(theta)
        return np.column_stack([gc, gi]).ravel()

    theta = np.column_stack([coef, b]).ravel()
    ok, err, _ = gradcheck(lambda t: f_flat(t)[0], theta, grad=g_flat, rtol=1e-6, atol=1e-9)
    assert ok, err
    H = multinomial.hessian(Xin, coef, b, lam=lam, sample_weight=w)
    Hfd = np.column_stack([numerical_gradient(lambda t, i=i: g_flat(t)[i], theta)
                           for i in range(theta.size)])
    np.testing.assert_allclose(H, Hfd, atol=1e-7)


def test_kernels_overflow_safe():
    X = np.array([[1e6, -1e6], [-1e6, 1e6], [0.0, 0.0]])
    y = np.array([2, 1, 2], dtype=np.int64)  # row 0 is wrong by a logit of 5e7
    coef = np.array([[50.0, 0.0], [0.0, 50.0]])
    b = np.zeros(2)
    w = np.ones(3)
    loss, gc, gi = multinomial_loss_grad(X, y, coef, b, w)
    P = multinomial_proba(X, coef, b)
    H = multinomial_hessian(X, P, w, True)
    assert np.all(np.isfinite(gc)) and np.all(np.isfinite(H))
    np.testing.assert_allclose(P, [[1, 0, 0], [0, 1, 0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-15)
    assert loss == pytest.approx((5e7 + 0.0 + np.log(3.0)) / 3, rel=1e-14)
    # gradient: row 0 residual (1, 0) for class 0 times x0, row 2 residual 1/3 times 0
    np.testing.assert_allclose(gc, [[1e6 / 3, -1e6 / 3], [0.0, 0.0]], rtol=1e-12, atol=1e-9)


def test_kernels_callable_from_user_njit(rng):
    X, y = simulate(rng, n=200, p=3, K=3)
    y = y.astype(np.int64)
    coef = rng.standard_normal((2, 3))
    b = rng.standard_normal(2)
    w = np.ones(200)

    @njit
    def newton_step(X, y, coef, b, w):
        loss, gc, gi = multinomial_loss_grad(X, y, coef, b, w)
        P = multinomial_proba(X, coef, b)
        H = multinomial_hessian(X, P, w, True)
        g = np.empty(2 * 4)
        for k in range(2):
            for a in range(3):
                g[k * 4 + a] = gc[k, a]
            g[k * 4 + 3] = gi[k]
        return loss, g, H

    loss, g, H2 = newton_step(X, y, coef, b, w)
    ref_loss, gc, gi, P, H = numpy_reference(X, y, coef, b, w)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(g, np.column_stack([gc, gi]).ravel(), atol=1e-14)
    np.testing.assert_allclose(H2, H, atol=1e-14)


def test_thread_count_independence(rng):
    import numba
    X, y = simulate(rng, n=5000, p=6, K=4)
    y = y.astype(np.int64)
    coef = rng.standard_normal((3, 6)) * 0.3
    b = np.zeros(3)
    w = rng.random(5000)
    old = numba.get_num_threads()
    out = []
    try:
        for nt in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(nt)
            l, gc, gi = multinomial_loss_grad(X, y, coef, b, w)
            P = multinomial_proba(X, coef, b)
            out.append((l, gc, gi, multinomial_hessian(X, P, w, True),
                        multinomial.fit(X, y).coef))
    finally:
        numba.set_num_threads(old)
    for a, c in zip(out[0], out[1]):
        np.testing.assert_array_equal(a, c)


# --------------------------------------------------------------------------- fit vs peers

def test_unpenalised_matches_statsmodels_wine():
    sm = pytest.importorskip("statsmodels.api")
    X, y = wine_subset()
    res = multinomial.fit(X, y)
    assert res.converged and not res.separated
    ref = sm.MNLogit(y, np.column_stack([np.ones(len(y)), X])).fit(
        method="newton", maxiter=100, disp=0, tol=1e-12)
    coef, b = statsmodels_to_ours(ref.params)
    np.testing.assert_allclose(res.coef, coef, atol=1e-6)
    np.testing.assert_allclose(res.intercept, b, atol=1e-6)
    assert res.loss == pytest.approx(-ref.llf / len(y), rel=1e-10)
    np.testing.assert_allclose(res.predict_proba(X), ref.predict(), atol=1e-8)


@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
def test_unpenalised_matches_statsmodels_simulated(rng, solver):
    sm = pytest.importorskip("statsmodels.api")
    X, y = simulate(rng, n=800, p=4, K=4)
    labels = np.array(["a", "b", "c", "d"])[y]  # string labels, sorted order kept
    res = multinomial.fit(X, labels, solver=solver)
    assert list(res.classes) == ["a", "b", "c", "d"]
    ref = sm.MNLogit(y, np.column_stack([np.ones(len(y)), X])).fit(
        method="newton", maxiter=100, disp=0, tol=1e-12)
    coef, b = statsmodels_to_ours(ref.params)
    tol = 1e-6 if solver == "newton" else 1e-4
    np.testing.assert_allclose(res.coef, coef, atol=tol)
    np.testing.assert_allclose(res.intercept, b, atol=tol)
    assert res.history[0] >= res.history[-1]
    assert len(res.history) == res.n_iter + 1


def test_no_intercept_matches_statsmodels(rng):
    sm = pytest.importorskip("statsmodels.api")
    X, y = simulate(rng, n=500, p=3, K=3)
    res = multinomial.fit(X, y, fit_intercept=False)
    ref = sm.MNLogit(y, X).fit(method="newton", maxiter=100, disp=0, tol=1e-12)
    B = np.column_stack([np.zeros(3), ref.params])
    np.testing.assert_allclose(res.coef, (B[:, :-1] - B[:, [-1]]).T, atol=1e-6)
    np.testing.assert_array_equal(res.intercept, 0.0)


def test_probabilities_match_sklearn_unpenalised(rng):
    from sklearn.linear_model import LogisticRegression
    X, y = simulate(rng, n=600, p=4, K=3)
    res = multinomial.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = LogisticRegression(C=np.inf, solver="newton-cg", tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(res.predict_proba(X), sk.predict_proba(X), atol=1e-7)
    np.testing.assert_array_equal(res.predict(X), sk.predict(X))
    assert res.score(X, y) == pytest.approx(sk.score(X, y))


def test_l2_binary_matches_sklearn(rng):
    from sklearn.linear_model import LogisticRegression
    X, y = simulate(rng, n=400, p=5, K=2)
    lam = 0.01
    res = multinomial.fit(X, y, lam=lam)
    sk = LogisticRegression(C=1 / (len(y) * lam), solver="newton-cg", tol=1e-12,
                            max_iter=1000).fit(X, y)
    # sklearn's single binary vector favours class 1; ours is class 0 vs class 1
    np.testing.assert_allclose(res.coef[0], -sk.coef_[0], atol=1e-7)
    np.testing.assert_allclose(res.intercept[0], -sk.intercept_[0], atol=1e-7)


@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
def test_l2_multiclass_matches_scipy_reference(rng, solver):
    from scipy.optimize import minimize
    X, y = simulate(rng, n=300, p=3, K=4)
    lam = 0.05
    w = rng.random(300) + 0.5
    wn = w * len(w) / w.sum()

    def f(theta):  # independent NumPy objective (weighted mean NLL + penalty)
        T = theta.reshape(3, 4)
        eta = np.column_stack([X @ T[:, :3].T + T[:, 3], np.zeros(300)])
        nll = np.logaddexp.reduce(eta, axis=1) - eta[np.arange(300), y]
        return np.mean(wn * nll) + 0.5 * lam * np.sum(T[:, :3] ** 2)

    ref = minimize(f, np.zeros(12), method="BFGS", options={"gtol": 1e-10})
    res = multinomial.fit(X, y, lam=lam, sample_weight=w, solver=solver)
    T = ref.x.reshape(3, 4)
    np.testing.assert_allclose(res.coef, T[:, :3], atol=1e-5)
    np.testing.assert_allclose(res.intercept, T[:, 3], atol=1e-5)
    assert res.objective == pytest.approx(ref.fun, rel=1e-9)


def test_sample_weight_equals_repetition(rng):
    X, y = simulate(rng, n=300, p=3, K=3)
    reps = rng.integers(0, 4, size=300)
    a = multinomial.fit(X, y, sample_weight=reps, lam=0.01)
    b = multinomial.fit(np.repeat(X, reps, axis=0), np.repeat(y, reps), lam=0.01)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-9)
    np.testing.assert_allclose(a.intercept, b.intercept, atol=1e-9)


def test_sparse_fit_equals_dense(rng):
    X, y = simulate(rng, n=500, p=6, K=3)
    X[rng.random(X.shape) < 0.6] = 0.0
    d = multinomial.fit(X, y)
    s = multinomial.fit(sp.csr_matrix(X), y)
    c = multinomial.fit(sp.csc_matrix(X), y, solver="lbfgs")
    np.testing.assert_allclose(s.coef, d.coef, atol=1e-10)
    np.testing.assert_allclose(c.coef, d.coef, atol=1e-4)
    np.testing.assert_allclose(s.predict_proba(sp.csr_matrix(X)), d.predict_proba(X), atol=1e-12)


# --------------------------------------------------------------------------- separation

@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
def test_separable_iris_warns_and_stays_finite(solver):
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    with pytest.warns(PerfectSeparationWarning, match="does not exist"):
        res = multinomial.fit(X, y, solver=solver)
    assert res.separated and not res.converged
    assert np.all(np.isfinite(res.coef)) and np.all(np.isfinite(res.intercept))
    assert np.isfinite(res.objective) and res.n_iter < 100
    assert np.all(np.isfinite(res.predict_proba(X)))
    assert res.score(X, y) > 0.95
    assert issubclass(PerfectSeparationWarning, ConvergenceWarning)


def test_separable_complete_and_penalised_is_fine():
    from sklearn.datasets import load_wine
    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    with pytest.warns(PerfectSeparationWarning):
        res = multinomial.fit(X, y)
    assert res.separated and res.score(X, y) == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pen = multinomial.fit(X, y, lam=0.01)
    assert pen.converged and not pen.separated


def test_non_separable_fit_does_not_warn(rng):
    X, y = wine_subset()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = multinomial.fit(X, y)
    assert res.info["separation_check"] is None and res.converged


# --------------------------------------------------------------------------- API behaviour

def test_max_iter_warns_and_callback(rng):
    X, y = simulate(rng, n=300, p=3, K=3)
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        res = multinomial.fit(X, y, max_iter=1)
    assert not res.converged and res.n_iter == 1
    seen = []
    res = multinomial.fit(X, y, callback=lambda it, st: seen.append((it, st["coef"].shape)) or it >= 2)
    assert seen == [(1, (2, 3)), (2, (2, 3))] and res.n_iter == 2


def test_verbose_prints(rng, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = simulate(rng, n=100, p=2, K=3)
    multinomial.fit(X, y, verbose=True)
    assert "objective" in capsys.readouterr().out


@pytest.mark.parametrize("kwargs, match", [
    ({"y": np.zeros(50)}, "at least two classes"),
    ({"X": np.full((50, 2), np.nan)}, "X contains NaN"),
    ({"X": np.full((50, 2), np.inf)}, "X contains NaN or infinite"),
    ({"y": np.r_[np.zeros(25), np.ones(24)]}, "inconsistent lengths"),
    ({"lam": -1.0}, "lam must be >= 0"),
    ({"solver": "sgd"}, "solver must be one of"),
    ({"sample_weight": -np.ones(50)}, "sample_weight must be non-negative"),
    ({"sample_weight": np.ones(3)}, "sample_weight"),
    ({"y": np.r_[np.zeros(25), np.full(25, np.nan)]}, "y contains NaN"),
    ({"X": np.ones(50)}, "X must be 2-dimensional"),
])
def test_bad_inputs_raise_clear_errors(rng, kwargs, match):
    args = {"X": rng.standard_normal((50, 2)), "y": np.r_[np.zeros(25), np.ones(25)]}
    args.update(kwargs)
    X, y = args.pop("X"), args.pop("y")
    with pytest.raises(ValueError, match=match):
        multinomial.fit(X, y, **args)


def test_predict_validates_n_features(rng):
    X, y = simulate(rng, n=100, p=3, K=3)
    res = multinomial.fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but the model was fitted with 3"):
        res.predict_proba(X[:, :2])
    with pytest.raises(ValueError, match="X contains NaN"):
        res.predict(np.full((2, 3), np.nan))
    with pytest.raises(TypeError, match="lam"):
        multinomial.fit(X, y, lam="big")


# --------------------------------------------------------------------------- sklearn

def test_check_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    from fastgrad.sklearn import MultinomialLogisticRegression
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # penalised: every check passes
        check_estimator(MultinomialLogisticRegression(lam=1e-3))
        # unpenalised: the sample-weight checks use 15 rows x 30 features, where the
        # MLE does not exist and the (warned) stopping point is arbitrary
        reason = "separable p > n data: the unpenalised MLE does not exist"
        check_estimator(MultinomialLogisticRegression(), expected_failed_checks={
            "check_sample_weight_equivalence_on_dense_data": reason,
            "check_sample_weight_equivalence_on_sparse_data": reason})


def test_sklearn_wrapper_matches_fit(rng):
    from fastgrad.sklearn import MultinomialLogisticRegression
    X, y = simulate(rng, n=300, p=3, K=3)
    est = MultinomialLogisticRegression(lam=0.01).fit(X, y)
    res = multinomial.fit(X, y, lam=0.01)
    np.testing.assert_allclose(est.coef_, res.coef)
    np.testing.assert_allclose(est.predict_proba(X), res.predict_proba(X))
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X)), res.predict_proba(X), atol=1e-14)


# --------------------------------------------------------------------------- preconditioner

def _precond_jacobian(pre, m):
    """d theta / d u of the preconditioner's (linear) change of variables."""
    return np.column_stack([pre.to_theta(e) for e in np.eye(m)])


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_preconditioner_whitens_the_start_hessian(rng, sparse, fit_intercept):
    from fastgrad.multinomial._model import _setup
    X, y = simulate(rng, n=500, p=4, K=4)
    X = X @ np.array([[1.0, 0.6, 0.0, 0.2], [0, 1, 0.5, 0], [0, 0, 1, 0.3], [0, 0, 0, 1]]) + 0.4
    w = rng.random(500) + 0.2
    prob, _ = _setup(sp.csr_matrix(X) if sparse else X, y, 0.0, fit_intercept, w)
    pre = prob.preconditioner()          # n < 2048: the Gram matrix of all rows
    theta0 = prob.start()
    m = theta0.size
    S = _precond_jacobian(pre, m)
    # maps: from_theta inverts to_theta; grad_u is the chain rule S^T g
    u = rng.standard_normal(m)
    np.testing.assert_allclose(pre.from_theta(pre.to_theta(u)), u, atol=1e-10)
    g = rng.standard_normal(m)
    np.testing.assert_allclose(pre.grad_u(g), S.T @ g, atol=1e-10)
    # with intercepts at the class frequencies every row has p_r = pi: the Hessian there is
    # A (x) G exactly, and S^T H S the identity (the NumPy reference Hessian; without an
    # intercept the start is theta = 0, where p_r = 1/K, not pi: only roughly whitened)
    coef, b = prob.split(theta0)
    H = numpy_reference(X, y, coef, b, prob.w, fit_intercept)[4]
    M = S.T @ H @ S
    if fit_intercept:
        np.testing.assert_allclose(M, np.eye(m), atol=1e-8)
    else:
        assert np.linalg.cond(M) < np.linalg.cond(H)


def test_preconditioner_diagonal_beyond_max_columns(rng, monkeypatch):
    import fastgrad.multinomial._model as M
    X, y = simulate(rng, n=400, p=5, K=3)
    X = X * np.array([1.0, 10.0, 0.1, 3.0, 1.0])
    ref = multinomial.fit(X, y, solver="newton")
    monkeypatch.setattr(M, "_PRECOND_MAX_Q", 3)
    prob, _ = M._setup(X, y, 0.0, True, None)
    pre = prob.preconditioner()
    assert not pre.full
    S = _precond_jacobian(pre, prob.km1 * prob.q)
    H = prob.hess(prob.start())
    np.testing.assert_allclose(np.diag(S.T @ H @ S).reshape(2, 6)[:, :5].ravel() > 0, True)
    res = multinomial.fit(X, y, solver="lbfgs")
    assert res.converged
    assert res.objective == pytest.approx(ref.objective, rel=1e-12)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-5)


@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_auto_is_lbfgs_then_newton_and_matches_newton(rng, lam):
    X, y = simulate(rng, n=1500, p=6, K=4)
    X[:, 1] = 0.8 * X[:, 0] + 0.6 * X[:, 1]
    order = np.argsort(y, kind="stable")      # sorted by class: the strided sample copes
    X, y = X[order], y[order]
    ref = multinomial.fit(X, y, lam=lam, solver="newton", tol=1e-14)
    res = multinomial.fit(X, y, lam=lam)
    assert res.solver == "lbfgs+newton" and res.converged
    assert res.info["n_lbfgs_iter"] >= 1 and res.info["n_hev"] <= 2
    assert res.n_iter == res.history.size - 1
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-9)
    np.testing.assert_allclose(res.intercept, ref.intercept, atol=1e-9)
    assert res.objective == pytest.approx(ref.objective, rel=1e-14)
    # the whitened L-BFGS alone reaches the objective to ~1e-12
    lb = multinomial.fit(X, y, lam=lam, solver="lbfgs")
    assert lb.solver == "lbfgs" and lb.converged
    assert (lb.objective - ref.objective) / ref.objective < 1e-10


def test_auto_callback_counts_both_phases(rng):
    X, y = simulate(rng, n=400, p=3, K=3)
    seen = []
    res = multinomial.fit(X, y, callback=lambda it, st: seen.append(it) and False)
    assert seen == list(range(1, res.n_iter + 1))
    stop = multinomial.fit(X, y, callback=lambda it, st: it >= 2)
    assert stop.n_iter == 2 and not stop.converged
