"""Proximal operators against a numerical argmin of ``0.5||x - v||^2 + t g(x)``."""
import numpy as np
import pytest
from scipy.optimize import minimize

from fastgrad import prox


def _argmin(v, g):
    """Numerical prox: Powell (derivative-free, copes with the kinks of |x|)."""
    obj = lambda x: 0.5 * float((x - v) @ (x - v)) + g(x)  # noqa: E731
    best = None
    for x0 in (v, np.zeros_like(v)):
        r = minimize(obj, x0, method="Powell", options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 20000})
        if best is None or r.fun < best.fun:
            best = r
    return best.x, best.fun, obj


@pytest.mark.parametrize("t", [0.0, 0.3, 1.7])
def test_l1_matches_numerical_argmin(rng, t):
    v = rng.normal(size=6) * 2
    v[0] = 0.1  # below the threshold for t > 0.1
    x = prox.l1(v, t)
    xn, fn, obj = _argmin(v, lambda z: t * np.abs(z).sum())
    assert obj(x) <= fn + 1e-10
    np.testing.assert_allclose(x, xn, atol=1e-6)
    if t > 0.1:
        assert x[0] == 0.0


@pytest.mark.parametrize("t", [0.0, 0.5, 3.0])
def test_ridge_matches_numerical_argmin(rng, t):
    v = rng.normal(size=5)
    x = prox.ridge(v, t)
    xn, fn, obj = _argmin(v, lambda z: 0.5 * t * float(z @ z))
    assert obj(x) <= fn + 1e-10
    np.testing.assert_allclose(x, xn, atol=1e-6)


@pytest.mark.parametrize("l1_ratio", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("t", [0.2, 1.5])
def test_elastic_net_matches_numerical_argmin(rng, t, l1_ratio):
    v = rng.normal(size=5) * 2
    x = prox.elastic_net(v, t, l1_ratio)
    g = lambda z: t * (l1_ratio * np.abs(z).sum() + 0.5 * (1 - l1_ratio) * float(z @ z))  # noqa: E731
    xn, fn, obj = _argmin(v, g)
    assert obj(x) <= fn + 1e-10
    np.testing.assert_allclose(x, xn, atol=1e-6)


@pytest.mark.parametrize("t", [0.1, 0.9, 5.0])
def test_group_l2_matches_numerical_argmin(rng, t):
    V = rng.normal(size=(4, 3))
    V[1] *= 0.05  # a group that is zeroed
    X = prox.group_l2(V, t)
    for k in range(V.shape[0]):
        xn, fn, obj = _argmin(V[k], lambda z: t * float(np.linalg.norm(z)))
        assert obj(X[k]) <= fn + 1e-10
        np.testing.assert_allclose(X[k], xn, atol=1e-5)
    assert np.all(X[1] == 0.0)


def test_prox_rejects_bad_step():
    with pytest.raises(ValueError, match="t must be"):
        prox.l1(np.ones(2), -1.0)
    with pytest.raises(ValueError, match="l1_ratio"):
        prox.elastic_net(np.ones(2), 1.0, 1.5)
