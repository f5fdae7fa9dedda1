"""Gradient descent, heavy-ball and stochastic solvers on problems with a closed form."""
import numpy as np
import pytest

from fastgrad import ConvergenceWarning
from fastgrad.solvers import SolverResult, gradient_descent, heavy_ball, sgd


def _ridge_problem(rng, n=300, p=6, lam=0.1):
    A = rng.normal(size=(n, p)) @ np.diag(np.linspace(0.5, 2.0, p))
    b = A @ rng.normal(size=p) + 0.3 * rng.normal(size=n)

    def fun(x):
        r = A @ x - b
        return 0.5 * float(r @ r) / n + 0.5 * lam * float(x @ x), A.T @ r / n + lam * x

    x_star = np.linalg.solve(A.T @ A / n + lam * np.eye(p), A.T @ b / n)
    return A, b, fun, x_star


@pytest.mark.parametrize("solver", [gradient_descent, heavy_ball])
def test_deterministic_solvers_reach_closed_form(rng, solver):
    _, _, fun, x_star = _ridge_problem(rng)
    res = solver(fun, np.zeros(x_star.size), tol=1e-15, gtol=1e-10, max_iter=20000)
    assert isinstance(res, SolverResult) and res.converged
    # objective precision ~1e-16 limits x to ~sqrt(eps) relative accuracy
    np.testing.assert_allclose(res.x, x_star, rtol=1e-6, atol=1e-6)
    assert np.all(np.diff(res.history) <= 1e-15)  # monotone
    assert res.objective == pytest.approx(fun(x_star)[0], rel=1e-12)


def test_heavy_ball_needs_fewer_iterations_than_gd_when_ill_conditioned():
    d = np.logspace(0, 3, 20)

    def fun(x):
        return 0.5 * float(x @ (d * x)), d * x

    x0 = np.ones(20)
    r_gd = gradient_descent(fun, x0, tol=1e-14, gtol=1e-8, max_iter=100000)
    r_hb = heavy_ball(fun, x0, tol=1e-14, gtol=1e-8, max_iter=100000)
    assert r_gd.converged and r_hb.converged
    assert np.max(np.abs(r_hb.x)) < 1e-5
    assert r_hb.n_iter < r_gd.n_iter / 3


def test_max_iter_warns_and_callback_stops(rng):
    _, _, fun, x_star = _ridge_problem(rng)
    with pytest.warns(ConvergenceWarning):
        res = heavy_ball(fun, np.zeros(x_star.size), max_iter=2, tol=0.0)
    assert not res.converged and res.n_iter == 2
    seen = []
    res = gradient_descent(fun, np.zeros(x_star.size), callback=lambda it, x: seen.append(it) or it >= 3)
    assert seen == [1, 2, 3] and res.n_iter == 3 and res.message == "stopped by callback"


def _interpolating_least_squares(rng, n=400, p=5):
    A = rng.normal(size=(n, p))
    x_true = rng.normal(size=p)
    return A, A @ x_true, x_true  # noiseless: SGD noise vanishes at the optimum


@pytest.mark.parametrize("method,lr,epochs,atol", [("sgd", 0.05, 60, 1e-8),
                                                   ("adagrad", 0.5, 200, 1e-5),
                                                   ("adam", 0.01, 300, 1e-4)])
def test_stochastic_methods_reach_least_squares_solution(rng, method, lr, epochs, atol):
    A, b, x_true = _interpolating_least_squares(rng)

    def gb(x, idx):
        return A[idx].T @ (A[idx] @ x - b[idx]) / idx.size

    def fv(x):
        r = A @ x - b
        return 0.5 * float(r @ r) / b.size

    res = sgd(gb, np.zeros(5), b.size, method=method, learning_rate=lr, n_epochs=epochs,
              batch_size=16, fun_value=fv, random_state=0)
    np.testing.assert_allclose(res.x, x_true, atol=atol)
    assert res.history.shape == (epochs + 1,) and res.history[-1] < 1e-3 * res.history[0]
    assert res.info["n_updates"] == epochs * 25


def test_adam_on_noisy_ridge_lands_near_optimum(rng):
    A, b, fun, x_star = _ridge_problem(rng, lam=0.1)

    def gb(x, idx):
        return A[idx].T @ (A[idx] @ x - b[idx]) / idx.size + 0.1 * x

    res = sgd(gb, np.zeros(x_star.size), b.size, method="adam", learning_rate=0.01,
              n_epochs=200, batch_size=50, decay=0.05, random_state=1)
    assert np.max(np.abs(res.x - x_star)) < 0.02


def test_sgd_reproducible_and_validates(rng):
    A, b, _ = _interpolating_least_squares(rng)
    gb = lambda x, idx: A[idx].T @ (A[idx] @ x - b[idx]) / idx.size  # noqa: E731
    r1 = sgd(gb, np.zeros(5), b.size, n_epochs=3, random_state=7)
    r2 = sgd(gb, np.zeros(5), b.size, n_epochs=3, random_state=7)
    r3 = sgd(gb, np.zeros(5), b.size, n_epochs=3, random_state=8)
    assert np.array_equal(r1.x, r2.x) and not np.array_equal(r1.x, r3.x)
    with pytest.raises(ValueError, match="method"):
        sgd(gb, np.zeros(5), b.size, method="rmsprop")
    with pytest.raises(ValueError, match="learning_rate"):
        sgd(gb, np.zeros(5), b.size, learning_rate=0.0)
    with pytest.raises(FloatingPointError, match="diverged"), np.errstate(all="ignore"):
        sgd(gb, np.zeros(5), b.size, learning_rate=1e3, n_epochs=50, random_state=0)
