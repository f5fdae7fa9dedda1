"""The L-BFGS rounds of hlsm.fit at lam > 0 reach proximal gradient's optimum in far fewer
iterations, small lam (many non-zero groups) converges where proximal gradient alone stalls,
and a resumed proximal-gradient solve stops on its first run's scale."""
import warnings

import numpy as np
import pytest

from fastgrad import datasets, hlsm
from fastgrad.solvers import proximal_gradient
from test_hlsm_scale import _kkt_residual  # tests/hlsm/ is on sys.path (no __init__.py)


def _lasso(rng, n=80, p=30, lam=0.1):
    X = rng.standard_normal((n, p)) @ np.diag(np.linspace(1.0, 10.0, p))  # ill-conditioned
    y = X[:, :3] @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(n)

    def fun(b):
        r = X @ b - y
        return 0.5 * float(r @ r) / n, X.T @ r / n

    def prox(v, t):
        return np.sign(v) * np.maximum(np.abs(v) - t * lam, 0.0)

    return X, y, lam, fun, prox, (lambda b: lam * float(np.abs(b).sum()))


def test_resumed_solve_uses_the_given_gradient_mapping_scale(rng):
    X, y, lam, fun, prox, pen = _lasso(rng)
    first = proximal_gradient(fun, np.zeros(X.shape[1]), prox=prox, penalty=pen, max_iter=5,
                              warn=False)
    ref = first.info["gmap_ref"]
    assert ref >= 1.0
    kw = dict(prox=prox, penalty=pen, max_iter=20000, tol=0.0, gtol=1e-6)
    resumed = proximal_gradient(fun, first.x, gmap_ref=ref, step=first.info["step"], **kw)
    alone = proximal_gradient(fun, first.x, **kw)
    assert resumed.info["gmap_ref"] == ref
    assert alone.info["gmap_ref"] < ref          # its own first step is smaller ...
    assert resumed.n_iter < alone.n_iter          # ... and so its test stricter
    # both at the lasso optimum: the KKT conditions, computed here with NumPy
    for sol in (resumed, alone):
        g = X.T @ (X @ sol.x - y) / X.shape[0]
        on = sol.x != 0
        assert np.all(np.abs(g[~on]) <= lam * (1 + 1e-6))
        np.testing.assert_allclose(g[on], -lam * np.sign(sol.x[on]), atol=1e-5 * ref)
    with pytest.raises(ValueError, match="gmap_ref"):
        proximal_gradient(fun, first.x, gmap_ref=0.0, **kw)


@pytest.mark.parametrize("lam", [10.0, 30.0])
def test_lbfgs_rounds_reach_the_proximal_gradient_optimum_at_positive_lam(lam):
    data = datasets.load_aucs()
    rounds = hlsm.fit(data, lam, random_state=0)
    # the reference: proximal gradient alone, run to a much tighter tolerance
    plain = hlsm.fit(data, lam, random_state=0, tol=1e-12, gtol=1e-9, max_iter=20000,
                     solver_options={"quasi_newton": False})
    # and proximal gradient alone at the default tolerance, as the fit ran before the rounds
    before = hlsm.fit(data, lam, random_state=0, solver_options={"quasi_newton": False})
    assert rounds.converged and plain.converged and before.converged
    assert rounds.stages["quasi-Newton"]["n_iter"] > 0
    assert rounds.n_iter < 0.25 * before.n_iter
    # the same optimum: objective (at least as close as before), the same zero deviations,
    # positions up to rotation
    assert rounds.objective == pytest.approx(plain.objective, rel=1e-7, abs=0)
    assert rounds.objective - plain.objective <= before.objective - plain.objective + 1e-9
    np.testing.assert_array_equal(rounds.deviating, plain.deviating)
    scale = np.sqrt((plain.b ** 2).sum(1).mean())
    assert hlsm.procrustes_error(rounds.b, plain.b) < 1e-3 * scale
    np.testing.assert_allclose(rounds.alpha, plain.alpha, atol=1e-3)  # a flat direction: 2.5e-4 at lam=10


def test_many_nonzero_groups_leave_proximal_gradient_alone():
    # lam = 3 on aucs: 64 of 305 deviations non-zero (over max_active_share) and proximal
    # gradient converges within prox_iter_many_active: no L-BFGS, and the fit is that of
    # proximal gradient without rounds, iteration for iteration
    data = datasets.load_aucs()
    rounds = hlsm.fit(data, 3.0, random_state=0)
    plain = hlsm.fit(data, 3.0, random_state=0, solver_options={"quasi_newton": False})
    assert rounds.stages["quasi-Newton"]["n_iter"] == 0
    assert rounds.n_iter == plain.n_iter
    assert rounds.objective == pytest.approx(plain.objective, rel=1e-12)


def test_small_lam_converges_by_smoothed_rounds_where_proximal_gradient_stalls():
    # Florentine families, lam = 0.3: about half the deviations non-zero, some tiny; proximal
    # gradient alone (as the fit ran before the smoothed rounds) stops at max_iter far from
    # stationary, the rounds on the Huber-smoothed penalty reach a lower, stationary point
    data = datasets.load_florentine()
    lam, kw = 0.3, dict(dim=2, random_state=0, sociality=None)
    fit = hlsm.fit(data, lam, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = hlsm.fit(data, lam, solver_options={"quasi_newton": False}, **kw)
    assert not alone.converged and alone.n_iter == 5000
    assert fit.converged and fit.stages["quasi-Newton"]["smoothed rounds"] > 0
    assert fit.deviating.mean() > 0.1  # over max_active_share
    assert fit.objective < alone.objective - 0.5
    # the optimality conditions, with the gradient of hlsm.nll_and_grad in the model's coordinates
    assert _kkt_residual(data.Y, fit, lam, data.directed) < 2e-3 < 0.1 < _kkt_residual(data.Y, alone, lam,
                                                                                      data.directed)


def test_fit_cv_fits_by_proximal_gradient_unless_told():
    Y, _ = hlsm.simulate(30, 2, frac_deviating=0.1, random_state=2)
    cv = hlsm.fit_cv(Y, dims=(2,), random_state=0)
    assert "quasi-Newton" not in cv.best.stages
    asked = hlsm.fit_cv(Y, dims=(2,), random_state=0, solver_options={"quasi_newton": True})
    assert "quasi-Newton" in asked.best.stages
