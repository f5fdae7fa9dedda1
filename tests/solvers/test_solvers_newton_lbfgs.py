import warnings

import numpy as np
import pytest
from scipy.optimize import minimize, rosen, rosen_der, rosen_hess

from fastgrad import ConvergenceWarning
from fastgrad.solvers import SolverResult, lbfgs, newton
from fastgrad.solvers.newton import newton_direction


def _quadratic(rng, m=6):
    A = rng.standard_normal((m, m))
    A = A @ A.T + 0.5 * np.eye(m)
    b = rng.standard_normal(m)
    fun = lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)  # noqa: E731
    return A, b, fun


def _logistic(rng, n=300, p=4):
    X = np.column_stack([rng.standard_normal((n, p)), np.ones(n)])
    w = rng.standard_normal(p + 1)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ w))).astype(float)

    def fun(w):
        t = X @ w
        f = np.mean(np.logaddexp(0, t) - y * t) + 0.05 * w @ w
        s = 1 / (1 + np.exp(-t))
        return f, X.T @ (s - y) / n + 0.1 * w

    def hess(w):
        s = 1 / (1 + np.exp(-X @ w))
        return (X * (s * (1 - s))[:, None]).T @ X / n + 0.1 * np.eye(p + 1)

    return fun, hess, p + 1


def test_newton_quadratic_one_step(rng):
    A, b, fun = _quadratic(rng)
    res = newton(fun, np.zeros(len(b)), hess=lambda x: A)
    assert isinstance(res, SolverResult)
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=1e-10, atol=1e-12)
    assert res.converged and res.n_iter <= 2
    assert len(res.history) == res.n_iter + 1
    assert res.history[0] == 0.0 and res.history[-1] == pytest.approx(res.objective)


def test_newton_rosenbrock_matches_scipy():
    x0 = np.array([-1.2, 1.0, -0.5, 0.8])
    res = newton(lambda x: (rosen(x), rosen_der(x)), x0, hess=rosen_hess, gtol=1e-14)
    ref = minimize(rosen, x0, jac=rosen_der, hess=rosen_hess, method="trust-exact",
                   options={"gtol": 1e-12})
    assert res.converged
    np.testing.assert_allclose(res.x, ref.x, atol=1e-7)
    # (this start leads to the known local minimum of the 4-d Rosenbrock function)
    assert np.max(np.abs(rosen_der(res.x))) < 1e-8
    assert np.all(np.diff(res.history) <= 1e-12)  # monotone


def test_newton_logistic_matches_scipy_and_fun_value(rng):
    fun, hess, m = _logistic(rng)
    calls = {"v": 0}

    def value(w):
        calls["v"] += 1
        return fun(w)[0]

    res = newton(fun, np.zeros(m), hess=hess, fun_value=value)
    ref = minimize(fun, np.zeros(m), jac=True, method="BFGS", options={"gtol": 1e-11})
    np.testing.assert_allclose(res.x, ref.x, atol=1e-7)
    assert res.converged and res.n_iter < 15
    assert calls["v"] == res.info["n_fev"] > 0


def test_newton_singular_hessian_fallback():
    # f(x) = x0^4 + (x0 + x1 - 1)^2: Hessian singular at x0 = 0 along (1, -1) when x0=0
    def fun(x):
        r = x[0] + x[1] - 1.0
        return x[0] ** 4 + r * r, np.array([4 * x[0] ** 3 + 2 * r, 2 * r])

    def hess(x):
        return np.array([[12 * x[0] ** 2 + 2.0, 2.0], [2.0, 2.0]])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = newton(fun, np.array([0.0, 0.0]), hess=hess, max_iter=200)
    assert np.all(np.isfinite(res.x))
    assert res.info["n_regularised"] >= 1
    assert res.objective < 1e-8
    assert abs(res.x[0] + res.x[1] - 1.0) < 1e-4


def test_newton_direction_indefinite_and_singular():
    g = np.array([1.0, -2.0])
    d, shift = newton_direction(np.zeros((2, 2)), g)
    assert shift > 0 and g @ d < 0
    H = np.array([[1.0, 0.0], [0.0, -5.0]])  # indefinite
    d, shift = newton_direction(H, g)
    assert g @ d < 0 and shift > 0
    d, shift = newton_direction(np.full((2, 2), np.nan), g)
    assert shift == np.inf and np.array_equal(d, -g)
    d, shift = newton_direction(np.diag([2.0, 4.0]), g)
    assert shift == 0.0
    np.testing.assert_allclose(d, [-0.5, 0.5])
    with pytest.raises(ValueError, match="hess"):
        newton_direction(np.eye(3), g)


def test_newton_indefinite_start_still_descends():
    x0 = np.array([0.3, 0.0])
    res = newton(lambda x: (rosen(x), rosen_der(x)), x0, hess=rosen_hess)
    assert res.converged
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-7)


def test_newton_warns_at_max_iter():
    x0 = np.array([-1.2, 1.0])
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        res = newton(lambda x: (rosen(x), rosen_der(x)), x0, hess=rosen_hess, max_iter=2)
    assert not res.converged and res.n_iter == 2 and len(res.history) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        newton(lambda x: (rosen(x), rosen_der(x)), x0, hess=rosen_hess, max_iter=2, warn=False)


def test_newton_callback_stops_and_validates(rng):
    A, b, fun = _quadratic(rng)
    seen = []
    fun2 = lambda x: (rosen(x), rosen_der(x))  # noqa: E731
    res = newton(fun2, np.array([-1.2, 1.0]), hess=rosen_hess,
                 callback=lambda it, x: seen.append(it) or it >= 3)
    assert seen == [1, 2, 3] and res.n_iter == 3 and not res.converged
    assert res.message == "stopped by callback"
    with pytest.raises(ValueError, match="max_iter"):
        newton(fun, np.zeros(len(b)), hess=lambda x: A, max_iter=-1)
    with pytest.raises(ValueError, match="not finite"):
        newton(lambda x: (np.nan, x), np.zeros(2), hess=lambda x: np.eye(2))


def test_newton_verbose_prints(capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # force plain lines
    newton(lambda x: (rosen(x), rosen_der(x)), np.array([-1.2, 1.0]), hess=rosen_hess,
           verbose=True)
    assert "objective" in capsys.readouterr().out


def test_lbfgs_rosenbrock_matches_scipy():
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 0.1])
    res = lbfgs(lambda x: (rosen(x), rosen_der(x)), x0, tol=0.0, gtol=1e-10)
    assert res.converged
    np.testing.assert_allclose(res.x, np.ones(5), atol=1e-6)
    assert len(res.history) == res.n_iter + 1
    assert res.history[-1] == pytest.approx(res.objective, abs=1e-14)


def test_lbfgs_logistic_agrees_with_newton(rng):
    fun, hess, m = _logistic(rng)
    r1 = lbfgs(fun, np.zeros(m))
    r2 = newton(fun, np.zeros(m), hess=hess)
    np.testing.assert_allclose(r1.x, r2.x, atol=1e-6)
    assert r1.converged and r2.converged


def test_lbfgs_warns_callback_and_validation():
    fun = lambda x: (rosen(x), rosen_der(x))  # noqa: E731
    x0 = np.array([-1.2, 1.0])
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        res = lbfgs(fun, x0, max_iter=3)
    assert not res.converged and res.n_iter == 3
    seen = []
    res = lbfgs(fun, x0, callback=lambda it, x: seen.append(it) or it >= 4)
    assert seen == [1, 2, 3, 4] and res.n_iter == 4 and res.message == "stopped by callback"
    assert res.objective == pytest.approx(rosen(res.x))
    with pytest.raises(ValueError, match="m must"):
        lbfgs(fun, x0, m=0)
    res = lbfgs(lambda x: (float(x @ x), 2 * x), np.zeros(3))
    assert res.converged and res.n_iter == 0


@pytest.mark.parametrize("seed", range(4))
def test_lbfgs_reaches_scipys_optimum_in_as_few_iterations(seed):
    """The native L-BFGS against SciPy's L-BFGS-B (no bounds) on ill-conditioned convex
    problems (condition number 1e3): about as close to the optimum (Newton's), in about as
    many iterations."""
    from scipy.optimize import minimize
    rng = np.random.default_rng(seed)
    m = 30
    Q = rng.standard_normal((m, m))
    A = Q @ np.diag(np.logspace(0, 3, m)) @ Q.T / m
    b = rng.standard_normal(m)

    def fun(x):   # a smooth, non-quadratic convex objective
        r = A @ x - b
        return float(0.5 * r @ np.linalg.solve(A, r) + np.logaddexp(0, x).sum()), \
            r + 1 / (1 + np.exp(-x))
    def hess(x):
        s = 1 / (1 + np.exp(-x))
        return A + np.diag(s * (1 - s))
    x0 = np.zeros(m)
    ours = lbfgs(fun, x0)                                # default tol=1e-10, gtol=1e-8
    ref = minimize(fun, x0, jac=True, method="L-BFGS-B",
                   options=dict(ftol=1e-10, gtol=1e-8 * max(1, np.abs(fun(x0)[1]).max()), maxiter=1000))
    best = newton(fun, x0, hess=hess, tol=1e-15)        # the optimum, to rounding
    f_star = best.objective
    assert ours.converged and ref.status == 0
    # both stop on the objective change (gaps 1e-7..1e-5 here): within a small factor of SciPy's
    assert ours.objective - f_star <= 3 * (ref.fun - f_star) + 1e-12 * abs(f_star)
    assert np.abs(ours.x - best.x).max() < 1e-2
    assert ours.n_iter <= 1.3 * ref.nit + 5


def test_lbfgs_backs_off_from_non_finite_values_and_reports_a_wrong_gradient():
    # the objective is +inf beyond x = 2 (a barrier the first trial step crosses)
    def fun(x):
        if x[0] >= 2.0:
            return np.inf, np.array([np.nan])
        return float((x[0] - 1.5) ** 2 - np.log(2.0 - x[0])), np.array([2 * (x[0] - 1.5) + 1 / (2.0 - x[0])])
    res = lbfgs(fun, np.array([-30.0]), gtol=1e-10)
    xs = 1.75 - np.sqrt(0.0625 + 0.5)          # root of 2(x - 1.5)(2 - x) + 1 = 0 below 2
    assert res.converged and abs(res.x[0] - xs) < 1e-6
    # a gradient of the wrong sign: no step lowers the objective
    with pytest.warns(ConvergenceWarning, match="without converging"):
        bad = lbfgs(lambda x: (float(x @ x), -2 * x), np.ones(3))
    assert not bad.converged and bad.info["status"] == 2
    np.testing.assert_array_equal(bad.x, np.ones(3))


def _two_loop_reference(g, pairs):
    """Nocedal & Wright Alg. 7.4 with ``gamma = s.y / y.y`` of the newest pair (plain loops)."""
    q = g.copy()
    if not pairs:
        return q
    alphas = []
    for s, y in reversed(pairs):
        al = (s @ q) / (s @ y)
        alphas.append(al)
        q = q - al * y
    s, y = pairs[-1]
    q = q * (s @ y) / (y @ y)
    for (s, y), al in zip(pairs, reversed(alphas)):
        q = q + (al - (y @ q) / (s @ y)) * s
    return q


@pytest.mark.parametrize("m", [1, 3, 7])
def test_lbfgs_memory_product_equals_the_two_loop_recursion(m):
    # the matrix form of the recursion, with pairs added, dropped (memory full) and cleared
    from fastgrad.solvers.lbfgs import _Memory
    rng = np.random.default_rng(m)
    n = 40
    B = rng.standard_normal((n, n))
    H = B @ B.T / n + 0.1 * np.eye(n)                     # s.y > 0 for every pair
    mem, pairs = _Memory(n, m), []
    mem.S[:] = mem.Y[:] = 1e308           # storage not yet written must never be read
    for t in range(3 * m + 5):
        if t == 2 * m + 1:
            mem.clear()
            pairs = []
        g = rng.standard_normal(n)
        np.testing.assert_allclose(mem.apply(g), _two_loop_reference(g, pairs), rtol=1e-10, atol=1e-12)
        s = rng.standard_normal(n)
        y = H @ s
        with np.errstate(all="raise"):
            mem.push(s, y, float(s @ y), float(y @ y))
        pairs = (pairs + [(s, y)])[-m:]
        assert mem.k == len(pairs)
    g = rng.standard_normal(n)
    np.testing.assert_allclose(mem.apply(g), _two_loop_reference(g, pairs), rtol=1e-10, atol=1e-12)
