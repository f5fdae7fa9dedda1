"""The fused loss + gradient (+ curvature) passes against a NumPy formula."""
import numba
import numpy as np
import pytest
import scipy.sparse as sp

from fastgrad.kernels import (LOSS_LOGISTIC, LOSS_SQUARED, glm_loss, glm_loss_csr, glm_loss_grad,
                              glm_loss_grad_csr)
from fastgrad.kernels.glm import CHUNK


def _reference(X, y, sw, w, c, loss):
    """(value, grad, grad_intercept, curv) from NumPy (libm exp/log1p)."""
    t = X @ w + c
    if loss == LOSS_SQUARED:
        lv, d1, d2 = 0.5 * (t - y) ** 2, t - y, np.ones_like(t)
    else:
        with np.errstate(over="ignore"):
            s = 1.0 / (1.0 + np.exp(-t))
        lv, d1, d2 = np.logaddexp(0.0, t) - y * t, s - y, s * (1.0 - s)
    return sw @ lv, X.T @ (sw * d1), np.sum(sw * d1), sw * d2


def _problem(n, p, loss, seed, density=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    if density is not None:
        X *= rng.random((n, p)) < density
    w = rng.normal(size=p) * 3.0 / np.sqrt(p)   # |t| up to ~10: both branches of softplus
    t = X @ w
    y = t + rng.normal(size=n) if loss == LOSS_SQUARED else (rng.random(n) < 0.5).astype(float)
    sw = rng.uniform(0.5, 2.0, size=n)
    return X, y, sw / sw.sum(), w


@pytest.mark.parametrize("loss", [LOSS_SQUARED, LOSS_LOGISTIC])
@pytest.mark.parametrize("n, p", [(1, 3), (7, 5), (CHUNK - 1, 13), (CHUNK + 3, 8),
                                  (3 * CHUNK + 17, 11), (2 * CHUNK, 100)])
def test_dense_fused_pass_matches_numpy(loss, n, p):
    X, y, sw, w = _problem(n, p, loss, seed=n + p)
    grad = np.full(p, np.nan)
    curv = np.full(n, np.nan)
    val, gc = glm_loss_grad(X, y, sw, w, -0.4, loss, grad, curv)
    ev, eg, egc, ecurv = _reference(X, y, sw, w, -0.4, loss)
    scale = np.abs(X).max() * np.abs(sw).sum()
    assert val == pytest.approx(ev, rel=1e-13, abs=1e-15)
    np.testing.assert_allclose(grad, eg, rtol=1e-12, atol=1e-14 * scale)
    assert gc == pytest.approx(egc, rel=1e-12, abs=1e-15)
    # s (1 - s) cancels for s near 1 (in both formulas): absolute tolerance on the scale of sw
    np.testing.assert_allclose(curv, ecurv, rtol=1e-12, atol=1e-15 * sw.max())
    # value-only pass agrees with the fused one to rounding
    assert glm_loss(X, y, sw, w, -0.4, loss) == pytest.approx(val, rel=1e-14, abs=1e-16)
    # without curvature: same value and gradient, bit for bit
    g2 = np.empty(p)
    v2, gc2 = glm_loss_grad(X, y, sw, w, -0.4, loss, g2, np.empty(0))
    assert (v2, gc2) == (val, gc) and np.array_equal(g2, grad)


@pytest.mark.parametrize("loss", [LOSS_SQUARED, LOSS_LOGISTIC])
@pytest.mark.parametrize("n, p", [(5, 7), (CHUNK + 3, 9), (3 * CHUNK + 17, 21)])
def test_csr_fused_pass_matches_numpy(loss, n, p):
    X, y, sw, w = _problem(n, p, loss, seed=7 * n + p, density=0.3)
    Xs = sp.csr_matrix(X)
    grad = np.empty(p)
    curv = np.empty(n)
    val, gc = glm_loss_grad_csr(Xs.data, Xs.indices, Xs.indptr, y, sw, w, 0.25, loss, grad, curv)
    ev, eg, egc, ecurv = _reference(X, y, sw, w, 0.25, loss)
    assert val == pytest.approx(ev, rel=1e-13, abs=1e-15)
    np.testing.assert_allclose(grad, eg, rtol=1e-12, atol=1e-14)
    assert gc == pytest.approx(egc, rel=1e-12, abs=1e-15)
    np.testing.assert_allclose(curv, ecurv, rtol=1e-12, atol=1e-15 * sw.max())
    assert glm_loss_csr(Xs.data, Xs.indices, Xs.indptr, y, sw, w, 0.25, loss) == \
        pytest.approx(val, rel=1e-14, abs=1e-16)


def test_logistic_terms_extreme_and_nonfinite_predictors():
    X = np.ones((4, 1))
    y = np.array([0.0, 1.0, 0.0, 1.0])
    sw = np.full(4, 0.25)
    g = np.empty(1)
    curv = np.empty(4)
    for w in (800.0, -800.0, 40.0, -40.0):
        val, gc = glm_loss_grad(X, y, sw, np.array([w]), 0.0, LOSS_LOGISTIC, g, curv)
        ev, eg, egc, ecurv = _reference(X, y, sw, np.array([w]), 0.0, LOSS_LOGISTIC)
        assert val == pytest.approx(ev, rel=1e-15) and gc == pytest.approx(egc, rel=1e-15)
        np.testing.assert_allclose(curv, ecurv, rtol=1e-13, atol=1e-300)
    val, gc = glm_loss_grad(X, y, sw, np.array([np.nan]), 0.0, LOSS_LOGISTIC, g, curv)
    assert np.isnan(val) and np.isnan(gc) and np.isnan(g).all() and np.isnan(curv).all()
    assert np.isnan(glm_loss(X, y, sw, np.array([np.nan]), 0.0, LOSS_LOGISTIC))


@pytest.mark.parametrize("loss", [LOSS_SQUARED, LOSS_LOGISTIC])
def test_fused_passes_bit_identical_across_thread_counts(loss):
    n, p = 5 * CHUNK + 13, 19
    X, y, sw, w = _problem(n, p, loss, seed=3)
    Xs = sp.csr_matrix(X * (np.abs(X) > 0.8))
    old = numba.get_num_threads()
    out = []
    try:
        for k in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(k)
            g, gs = np.empty(p), np.empty(p)
            cv, cvs = np.empty(n), np.empty(n)
            v = glm_loss_grad(X, y, sw, w, 0.1, loss, g, cv)
            vs = glm_loss_grad_csr(Xs.data, Xs.indices, Xs.indptr, y, sw, w, 0.1, loss, gs, cvs)
            f = glm_loss(X, y, sw, w, 0.1, loss)
            out.append((v, g, cv, vs, gs, cvs, f))
    finally:
        numba.set_num_threads(old)
    for a, b in zip(out[0], out[1]):
        assert np.array_equal(np.asarray(a), np.asarray(b))
