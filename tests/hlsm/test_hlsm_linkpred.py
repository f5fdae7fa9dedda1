"""Issue 12: the prior on the shared positions (exact gradient) and fit_cv's held-out link
prediction on the bundled networks against the extremes and the model without sociality."""
import warnings

import numpy as np
import pytest

import fastgrad
from fastgrad import datasets, hlsm
from fastgrad.hlsm import _problem
from fastgrad.hlsm._layers import as_layers

pytestmark = pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("mode", ["layer", None])
def test_position_ridge_gradient_finite_differences(directed, mode):
    """The solver's objective with the ridge: finite differences and an independent NumPy value."""
    Y, _ = hlsm.simulate(12, 2, directed=directed, missing=0.1, random_state=0)
    Yenc = as_layers(Y, directed=directed)
    K, n, d = 2, 12, 2
    ex = _problem._Extras(mode, 0.7, directed, K, n, None, position_ridge=1.9)
    prob = _problem._ExtProblem(Yenc, directed, d, 0.0, ex, 1.3, 0.8, scale_effects=0.6)
    x = np.random.default_rng(1).standard_normal(prob.scale.size) * 0.5
    ok, err, _ = fastgrad.gradcheck(prob.fun, x, rtol=1e-6, atol=1e-6)
    assert ok, err
    b, eps, alpha, v, _ = prob.unpack_all(x)
    so, ro = ex.offsets(v)
    eff = {} if mode is None else (dict(sender=so, receiver=ro) if directed else dict(sociality=so))
    nll = hlsm.nll_and_grad(Y, b, eps, alpha, directed=directed, **eff)[0]
    ref = nll + 0.5 * 0.7 * float(v @ v) + 0.5 * 1.9 * float((b * b).sum())
    np.testing.assert_allclose(prob.fun_value(x), ref, rtol=1e-12)


def test_position_ridge_fit_is_stationary_and_shrinks():
    """The shared fit with the ridge: grad_b nll + ridge * b = 0 at the optimum, the objective
    includes the ridge, and the positions shrink with it."""
    Y, _ = hlsm.simulate(25, 2, random_state=3)
    ridge = 3.0
    _, res = hlsm.lam_max(Y, random_state=0, sociality=None, position_ridge=ridge, tol=1e-12, gtol=1e-8)
    nll, gb, _, _ = hlsm.nll_and_grad(Y, res.b, res.eps, res.alpha)
    np.testing.assert_allclose(gb + ridge * res.b, 0.0, atol=1e-4 * np.abs(gb).max())
    np.testing.assert_allclose(res.objective, nll + 0.5 * ridge * (res.b ** 2).sum(), rtol=1e-10)
    assert res.position_ridge == ridge
    _, free = hlsm.lam_max(Y, random_state=0, sociality=None)
    assert (res.b ** 2).sum() < (free.b ** 2).sum()
    with pytest.raises(ValueError, match="position_ridge"):
        hlsm.fit(Y, 1.0, position_ridge=-1.0)
    with pytest.raises(ValueError, match="position_ridge"):
        hlsm.fit_cv(Y, position_ridge=-1.0)


@pytest.mark.parametrize("name", ["aucs", "florentine", "krackhardt"])
def test_fit_cv_link_prediction_beats_extremes_and_no_sociality(name):
    """One split of benchmarks/hlsm_linkpred.py: fit_cv's held-out AUC is at least that of the
    independent model (fit_cv's dim and prior) and of fit_cv without sociality, and within
    0.005 of the shared model's."""
    data = datasets.load_dataset(name)
    Y_train, test = hlsm.holdout_pairs(data.Y, 0.1, directed=data.directed, random_state=0)
    kw = dict(directed=data.directed, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = hlsm.fit_cv(Y_train, **kw)
        ridge = hlsm.fit_cv.__kwdefaults__["position_ridge"]
        _, shared = hlsm.lam_max(Y_train, dim=cv.dim, position_ridge=ridge, **kw)
        ind = hlsm.fit(Y_train, 0.0, dim=cv.dim, position_ridge=ridge, tol=1e-5, gtol=None, max_iter=500, **kw)
        none = hlsm.fit_cv(Y_train, sociality=None, **kw)
    auc = {m: hlsm.score_pairs(r, test)["auc"] for m, r in
           (("fit_cv", cv.best), ("shared", shared), ("independent", ind), ("none", none.best))}
    for other in ("independent", "none"):
        assert auc["fit_cv"] >= auc[other] - 1e-9, auc
    # the shared model is in fit_cv's grid (lam_ratio 1): where it is the best model, as on
    # aucs, cross-validation picks a neighbour on some splits (aucs, holdout_pairs seeds 1-3:
    # the shared model's AUC higher by 0.0025, 0.0002, 0.0047; seed 0, here: lower by 0.0037)
    assert auc["fit_cv"] >= auc["shared"] - 0.005, auc


def test_problem_prox_equals_group_l2():
    """The solver's block soft-thresholding (prox._group_l2, unchecked) is prox.group_l2 (weights with 0 and inf)."""
    from fastgrad.prox import group_l2
    Y, _ = hlsm.simulate(10, 3, random_state=0)
    Yenc = as_layers(Y, directed=False)
    rng = np.random.default_rng(2)
    w = rng.uniform(0.5, 2.0, (3, 10))
    w[0, :3] = np.inf
    w[1, :3] = 0.0
    s_e = rng.uniform(0.5, 2.0, (3, 10))
    prob = _problem._Problem(Yenc, False, 2, 0.8, 1.0, 1.0, w, (np.ones(10), s_e))
    x = rng.standard_normal(prob.scale.size)
    x[prob.se][:4] = 0.0
    for t in (0.01, 0.3, 5.0):
        out = prob.prox(x, t)
        eps = x[prob.se].reshape(3, 10, 2)
        ref = group_l2(eps, t * 0.8 * w / s_e)
        np.testing.assert_array_equal(out[prob.se], ref.ravel())
        np.testing.assert_array_equal(out[~np.isin(np.arange(x.size), np.arange(x.size)[prob.se])],
                                      x[~np.isin(np.arange(x.size), np.arange(x.size)[prob.se])])


def test_fit_cv_default_is_documented_and_recorded():
    """The default a user gets from fit_cv: the prior on the positions, 3 folds, recorded on the refit."""
    from fastgrad.hlsm import _cv
    assert hlsm.fit_cv.__kwdefaults__["position_ridge"] == _cv.POSITION_RIDGE > 0
    assert hlsm.fit_cv.__kwdefaults__["n_folds"] == 3
    assert "position_ridge : float, default=2.0" in hlsm.fit_cv.__doc__
    Y, _ = hlsm.simulate(20, 2, random_state=0)
    cv = hlsm.fit_cv(Y, dims=1, random_state=0)
    assert cv.best.position_ridge == _cv.POSITION_RIDGE and cv.n_folds == 3
    assert hlsm.fit(Y, 1.0, random_state=0).position_ridge == 0.0
