"""fastgrad.glm: kernels, solvers agreement, paths, validation, determinism."""
import io
import contextlib

import numba
import numpy as np
import pytest
import scipy.sparse as sp

import fastgrad
from fastgrad import ConvergenceWarning, glm
from fastgrad.kernels import (LOSS_LOGISTIC, LOSS_SQUARED, glm_cd, glm_cd_csc, glm_cd_gram,
                              glm_loss, glm_loss_csr, glm_loss_grad, glm_loss_grad_csr)


def _data(rng, n=400, p=8, loss="squared", sparse=False, density=0.4):
    X = rng.normal(size=(n, p))
    if sparse:
        X = X * (rng.random((n, p)) < density)
    w = rng.normal(size=p)
    w[::3] = 0.0
    t = X @ w + 0.5
    if loss == "squared":
        y = t + 0.5 * rng.normal(size=n)
    else:
        y = (rng.random(n) < 1.0 / (1.0 + np.exp(-t))).astype(float)
    return (sp.csr_matrix(X) if sparse else X), y


def _numpy_loss_grad(X, y, sw, w, c, loss):
    t = X @ w + c
    if loss == "squared":
        lv, d = 0.5 * (t - y) ** 2, t - y
    else:
        lv = np.logaddexp(0.0, t) - y * t
        d = 1.0 / (1.0 + np.exp(-t)) - y
    return sw @ lv, X.T @ (sw * d), sw @ d


# ---------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["squared", "logistic"])
@pytest.mark.parametrize("sparse", [False, True])
def test_loss_grad_kernel_matches_numpy_and_gradcheck(rng, loss, sparse):
    X, y = _data(rng, n=3000, loss=loss, sparse=sparse)  # > 1 chunk
    Xd = X.toarray() if sparse else X
    sw = rng.uniform(0.2, 2.0, size=y.size)
    sw /= sw.sum()
    w = 0.3 * rng.normal(size=Xd.shape[1])
    code = LOSS_SQUARED if loss == "squared" else LOSS_LOGISTIC
    grad = np.empty(w.size)
    curv = np.empty(y.size)
    if sparse:
        val, gc = glm_loss_grad_csr(X.data, X.indices, X.indptr, y, sw, w, 0.2, code, grad, curv)
        val2 = glm_loss_csr(X.data, X.indices, X.indptr, y, sw, w, 0.2, code)
    else:
        val, gc = glm_loss_grad(X, y, sw, w, 0.2, code, grad, curv)
        val2 = glm_loss(X, y, sw, w, 0.2, code)
    ev, eg, egc = _numpy_loss_grad(Xd, y, sw, w, 0.2, loss)
    assert val == pytest.approx(ev, rel=1e-12) and val2 == pytest.approx(ev, rel=1e-12)
    np.testing.assert_allclose(grad, eg, rtol=1e-10, atol=1e-14)
    assert gc == pytest.approx(egc, rel=1e-10, abs=1e-14)
    t = Xd @ w + 0.2
    s = 1.0 / (1.0 + np.exp(-t))
    np.testing.assert_allclose(curv, sw * (np.ones_like(t) if loss == "squared" else s * (1 - s)),
                               rtol=1e-12)
    # the public front-end function against finite differences of the objective
    x = np.concatenate([w, [0.2]])

    def f(v):
        obj = glm.objective(X, y, v[:-1], v[-1], loss=loss, lam=0.1, l1_ratio=0.0,
                            sample_weight=sw)
        _, g, gci = glm.loss_and_grad(X, y, v[:-1], v[-1], loss=loss, sample_weight=sw)
        return obj, np.concatenate([g + 0.1 * v[:-1], [gci]])

    ok, err, _ = fastgrad.gradcheck(f, x)
    assert ok, err


def test_logistic_kernel_is_overflow_safe():
    X = np.array([[1e4], [-1e4], [800.0], [-800.0]])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    sw = np.full(4, 0.25)
    grad = np.empty(1)
    val, gc = glm_loss_grad(X, y, sw, np.ones(1), 0.0, LOSS_LOGISTIC, grad, np.empty(0))
    # the first two are perfectly predicted (loss 0), the last two cost 800 each
    assert val == pytest.approx(0.25 * 1600.0, rel=1e-12)
    assert np.isfinite(grad).all() and grad[0] == pytest.approx(0.25 * (800 + 800), rel=1e-12)
    res = glm.fit(X * 1e3, y, loss="logistic", lam=1e-3)
    assert np.isfinite(res.coef).all() and np.isfinite(res.objective)


def test_kernels_callable_from_user_njit(rng):
    X, y = _data(rng, n=200, p=4)
    sw = np.full(200, 1 / 200)

    @numba.njit
    def user_step(X, y, sw, w, lr):
        g = np.empty(w.shape[0])
        val, gc = glm_loss_grad(X, y, sw, w, 0.0, LOSS_SQUARED, g, np.empty(0))
        return w - lr * g, val, glm_loss(X, y, sw, w, 0.0, LOSS_SQUARED)

    @numba.njit
    def user_lasso(X, y, sw):
        coef = np.zeros(X.shape[1])
        hist = np.empty(11)
        c, n_iter, conv, sweeps = glm_cd(X, y, sw, LOSS_SQUARED, 0.05, 1.0, True, coef, 0.0, 10,
                                         1e-20, hist)
        return coef, c

    w2, val, val2 = user_step(X, y, sw, np.zeros(4), 0.1)
    assert val == pytest.approx(0.5 * np.mean(y ** 2)) and val2 == pytest.approx(val)
    np.testing.assert_allclose(w2, 0.1 * X.T @ y / 200, rtol=1e-12)
    coef, c = user_lasso(np.asfortranarray(X), y, sw)
    ref = glm.fit(X, y, lam=0.05, l1_ratio=1.0, solver="fista", tol=1e-14)
    np.testing.assert_allclose(coef, ref.coef, atol=1e-6)


def test_cd_kernels_dense_csc_gram_agree(rng):
    X, y = _data(rng, n=300, p=6, sparse=True)
    A = X.tocsc()
    sw = np.full(300, 1 / 300)
    h = np.empty(51)
    c1 = np.zeros(6)
    glm_cd(np.asfortranarray(X.toarray()), y, sw, LOSS_SQUARED, 0.02, 0.7, False, c1, 0.0, 50,
           1e-24, h)
    c2 = np.zeros(6)
    glm_cd_csc(A.data, A.indices, A.indptr, 300, y, sw, LOSS_SQUARED, 0.02, 0.7, False, c2, 0.0,
               50, 1e-24, h)
    c3 = np.zeros(6)
    Xd = X.toarray()
    n_it, conv = glm_cd_gram(Xd.T @ Xd / 300, Xd.T @ y / 300, 0.02, 0.7, c3, 1000, 1e-24, np.empty(1001))
    assert conv
    np.testing.assert_allclose(c1, c2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(c1, c3, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------
# every solver reaches the same optimum
# ---------------------------------------------------------------------------

_TIGHT = {"cd": 1e-10, "newton": 1e-14, "lbfgs": 1e-14, "fista": 1e-15, "ista": 1e-15,
          "gd": 1e-15, "momentum": 1e-15}
_OPTS = {"lbfgs": {"gtol": 1e-11}, "fista": {"gtol": 1e-9}, "ista": {"gtol": 1e-9},
         "gd": {"gtol": 1e-9}, "momentum": {"gtol": 1e-9}}


def _reference(X, y, loss, lam, l1_ratio, sw=None):
    solver = "cd" if l1_ratio > 0 else "newton"
    return glm.fit(X, y, loss=loss, lam=lam, l1_ratio=l1_ratio, solver=solver, tol=1e-13,
                   sample_weight=sw)


@pytest.mark.parametrize("loss,lam,l1_ratio,solvers", [
    ("squared", 0.05, 0.0, ["cd", "newton", "lbfgs", "fista", "ista", "gd", "momentum"]),
    ("squared", 0.05, 1.0, ["cd", "fista", "ista"]),
    ("squared", 0.02, 0.5, ["cd", "fista"]),
    ("logistic", 0.01, 0.0, ["cd", "newton", "lbfgs", "fista", "gd", "momentum"]),
    ("logistic", 0.03, 1.0, ["cd", "fista"]),
    ("logistic", 0.0, 0.0, ["cd", "newton", "lbfgs"]),
])
@pytest.mark.parametrize("sparse", [False, True])
def test_all_applicable_solvers_reach_same_optimum(rng, loss, lam, l1_ratio, solvers, sparse):
    X, y = _data(rng, n=300, p=6, loss=loss, sparse=sparse)
    sw = rng.uniform(0.5, 2.0, size=300)
    ref = _reference(X, y, loss, lam, l1_ratio, sw)
    assert ref.converged
    for s in solvers:
        res = glm.fit(X, y, loss=loss, lam=lam, l1_ratio=l1_ratio, solver=s, tol=_TIGHT[s],
                      sample_weight=sw, max_iter=50000, solver_options=_OPTS.get(s))
        assert res.solver == s
        np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-5, atol=1e-6, err_msg=s)
        assert res.intercept == pytest.approx(ref.intercept, rel=1e-5, abs=1e-6), s
        assert res.objective == pytest.approx(ref.objective, rel=1e-9), s
        assert res.history[-1] == pytest.approx(res.objective, rel=1e-9), s
    if l1_ratio == 1.0 and lam > 0:
        assert np.any(ref.coef == 0.0)  # the lasso gives exact zeros


@pytest.mark.parametrize("method", ["sgd", "adagrad", "adam"])
def test_stochastic_solvers_approach_ridge_optimum(rng, method):
    X, y = _data(rng, n=500, p=5)
    ref = _reference(X, y, "squared", 0.05, 0.0)
    opts = {"sgd": {"learning_rate": 0.01, "decay": 0.1}, "adagrad": {"learning_rate": 0.3},
            "adam": {"learning_rate": 0.01, "decay": 0.05}}[method]
    res = glm.fit(X, y, lam=0.05, solver=method, max_iter=150, random_state=0,
                  solver_options=dict(batch_size=20, **opts))
    assert res.n_iter == 150 and res.history.shape == (151,)
    assert np.max(np.abs(res.coef - ref.coef)) < 0.02
    assert res.objective == pytest.approx(ref.objective, rel=1e-3)
    again = glm.fit(X, y, lam=0.05, solver=method, max_iter=150, random_state=0,
                    solver_options=dict(batch_size=20, **opts))
    assert np.array_equal(res.coef, again.coef)


@pytest.mark.parametrize("solver", ["newton", "lbfgs"])
def test_subsampled_hessian_and_presolve_reach_exact_optimum(rng, monkeypatch, solver):
    X, y = _data(rng, n=3000, p=6, loss="logistic")
    sw = rng.uniform(0.5, 2.0, size=3000)
    ref = glm.fit(X, y, loss="logistic", lam=1e-3, solver="newton", tol=1e-14, sample_weight=sw,
                  solver_options={"hessian_subsample": None})
    monkeypatch.setattr(glm._model, "_PRESOLVE_MIN_N", 1000)  # exercise the large-n path
    opts = {"hessian_subsample": 400} if solver == "newton" else {"gtol": 1e-11}
    res = glm.fit(X, y, loss="logistic", lam=1e-3, solver=solver, tol=1e-14, sample_weight=sw,
                  solver_options=opts)
    assert res.info["presolve_rows"] == 1500  # half the rows at this small n
    if solver == "newton":
        assert res.info["hessian_rows"] == 400
    np.testing.assert_allclose(res.coef, ref.coef, rtol=1e-6, atol=1e-6)
    assert res.objective == pytest.approx(ref.objective, rel=1e-12)
    # a sub-sampled Hessian still drives Newton to the exact optimum (gradient is exact)
    noskip = glm.fit(X, y, loss="logistic", lam=1e-3, solver="newton", tol=1e-14,
                     sample_weight=sw, solver_options={"hessian_subsample": 300, "presolve": False})
    np.testing.assert_allclose(noskip.coef, ref.coef, rtol=1e-6, atol=1e-6)
    assert "presolve_rows" not in noskip.info


def test_auto_solver_choice(rng):
    X, y = _data(rng)
    assert glm.fit(X, y, lam=0.1, l1_ratio=0.5).solver == "cd"
    assert glm.fit(X, y, lam=0.1).solver == "newton"
    Xl, yl = _data(rng, loss="logistic")
    assert glm.fit(Xl, yl, loss="logistic", lam=0.1).solver == "newton"


# ---------------------------------------------------------------------------
# results, paths, warm starts, callbacks
# ---------------------------------------------------------------------------

def test_result_predictions(rng):
    X, y = _data(rng, loss="logistic")
    res = glm.fit(X, y, loss="logistic", lam=0.01)
    t = X @ res.coef + res.intercept
    np.testing.assert_allclose(res.decision_function(X), t)
    np.testing.assert_allclose(res.predict_proba(X), 1 / (1 + np.exp(-t)), rtol=1e-12)
    np.testing.assert_array_equal(res.predict(X), (t > 0).astype(int))
    assert np.mean(res.predict(X) == y) > 0.7
    lin = glm.fit(*_data(rng))
    with pytest.raises(ValueError, match="predict_proba"):
        lin.predict_proba(X)
    with pytest.raises(ValueError, match="features"):
        res.predict(X[:, :3])


def test_path_properties(rng):
    X, y = _data(rng, n=300, p=10)
    pth = glm.path(X, y, l1_ratio=1.0, n_lams=30, tol=1e-10)
    assert len(pth) == 30 and np.all(np.diff(pth.lams) < 0)
    assert np.all(pth.coefs[0] == 0.0)  # lam_max zeroes every coefficient
    assert np.count_nonzero(pth.coefs[1]) >= 1  # and is the smallest such value
    assert pth.lams[-1] == pytest.approx(1e-4 * pth.lams[0])
    nnz = np.count_nonzero(pth.coefs, axis=1)
    assert nnz[-1] == 10
    k = 17
    single = glm.fit(X, y, lam=pth.lams[k], l1_ratio=1.0, tol=1e-10)
    np.testing.assert_allclose(pth.coefs[k], single.coef, atol=1e-8)
    assert pth[k].objective == pytest.approx(single.objective, rel=1e-10)
    # logistic elastic-net path with the covariance-free CD on sparse data
    Xl, yl = _data(rng, loss="logistic", sparse=True)
    pl = glm.path(Xl, yl, loss="logistic", l1_ratio=0.5, n_lams=8, tol=1e-10)
    assert np.all(pl.coefs[0] == 0.0) and pl.converged.all()
    one = glm.fit(Xl, yl, loss="logistic", lam=pl.lams[5], l1_ratio=0.5, solver="fista",
                  tol=1e-15, solver_options={"gtol": 1e-10})
    np.testing.assert_allclose(pl.coefs[5], one.coef, atol=1e-5)


def test_warm_start_callback_verbose_and_warning(rng):
    X, y = _data(rng, loss="logistic")
    cold = glm.fit(X, y, loss="logistic", lam=0.01, solver="lbfgs")
    warm = glm.fit(X, y, loss="logistic", lam=0.0101, solver="lbfgs", warm_start=cold)
    assert warm.n_iter < cold.n_iter
    states = []

    def cb(it, state):
        states.append((it, state["coef"].copy(), state["intercept"]))
        return it >= 2

    res = glm.fit(X, y, loss="logistic", lam=0.01, l1_ratio=0.5, solver="cd", callback=cb)
    assert [s[0] for s in states] == [1, 2] and res.n_iter == 2 and not res.converged
    np.testing.assert_allclose(states[-1][1], res.coef)
    res2 = glm.fit(X, y, loss="logistic", lam=0.01, solver="newton", callback=cb)
    assert res2.n_iter == 2 + 0 * len(states)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), \
            pytest.warns(ConvergenceWarning):
        glm.fit(X, y, loss="logistic", lam=0.01, solver="gd", verbose=True, max_iter=5,
                tol=0.0)
    assert buf.getvalue()
    with pytest.warns(ConvergenceWarning):
        r = glm.fit(X, y, loss="logistic", lam=1e-4, l1_ratio=1.0, solver="fista", max_iter=3)
    assert not r.converged and r.n_iter == 3
    with pytest.warns(ConvergenceWarning):
        glm.fit(X, y, loss="logistic", lam=1e-4, l1_ratio=1.0, solver="cd", max_iter=1, tol=1e-14)


# ---------------------------------------------------------------------------
# determinism across thread counts
# ---------------------------------------------------------------------------

def test_thread_count_independence(rng):
    X, y = _data(rng, n=20000, p=12, loss="logistic")
    Xs = sp.csr_matrix(X * (rng.random(X.shape) < 0.3))
    sw = np.full(y.size, 1 / y.size)
    w = rng.normal(size=12)
    old = numba.get_num_threads()
    out = []
    try:
        for k in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(k)
            g1, g2 = np.empty(12), np.empty(12)
            v1 = glm_loss_grad(X, y, sw, w, 0.1, LOSS_LOGISTIC, g1, np.empty(0))
            v2 = glm_loss_grad_csr(Xs.data, Xs.indices, Xs.indptr, y, sw, w, 0.1, LOSS_LOGISTIC,
                                   g2, np.empty(0))
            fit = glm.fit(X, y, loss="logistic", lam=1e-3, solver="lbfgs")
            out.append((v1, g1, v2, g2, fit.coef))
    finally:
        numba.set_num_threads(old)
    for a, b in zip(out[0], out[-1]):
        assert np.array_equal(np.asarray(a), np.asarray(b))  # bit-identical


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_bad_input_raises_clear_errors(rng):
    X, y = _data(rng, n=50, p=3)
    yl = (y > 0).astype(float)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        glm.fit(Xn, y)
    Xi = X.copy()
    Xi[0, 0] = np.inf
    with pytest.raises(ValueError, match="X contains"):
        glm.fit(sp.csr_matrix(Xi), y)
    yn = y.copy()
    yn[2] = np.nan
    with pytest.raises(ValueError, match="y contains"):
        glm.fit(X, yn)
    with pytest.raises(ValueError, match="y contains"):
        glm.fit(X, np.where(np.arange(50) == 0, np.inf, y))
    with pytest.raises(ValueError, match="only 0 and 1"):
        glm.fit(X, yl * 2 - 1, loss="logistic")
    with pytest.raises(ValueError, match="inconsistent lengths"):
        glm.fit(X, y[:-1])
    with pytest.raises(ValueError, match="inconsistent lengths"):
        glm.fit(X, y, sample_weight=np.ones(49))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        glm.fit(X, y, sample_weight=-np.ones(50))
    with pytest.raises(ValueError, match="lam must be >= 0"):
        glm.fit(X, y, lam=-0.1)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="l1_ratio must be"):
            glm.fit(X, y, lam=0.1, l1_ratio=bad)
    with pytest.raises(ValueError, match="empty"):
        glm.fit(np.empty((0, 3)), np.empty(0))
    with pytest.raises(ValueError, match="0 features"):
        glm.fit(np.empty((5, 0)), np.ones(5))
    with pytest.raises(ValueError, match="solver must be one of"):
        glm.fit(X, y, solver="bfgs")
    for s in ("lbfgs", "newton", "gd", "momentum", "sgd", "adam"):
        with pytest.raises(ValueError, match="cannot handle an L1 penalty"):
            glm.fit(X, y, lam=0.1, l1_ratio=0.5, solver=s)
    with pytest.raises(ValueError, match="loss must be one of"):
        glm.fit(X, y, loss="hinge")
    with pytest.raises(TypeError, match="fit_intercept"):
        glm.fit(X, y, fit_intercept="yes")
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        glm.fit(y, y)
    with pytest.raises(ValueError, match="lams must be non-negative"):
        glm.path(X, y, lams=[0.1, -1.0])
