"""HLSM: gradients, solver behaviour, recovery of simulated truth, reproducibility, bad input."""
import warnings

import numba
import numpy as np
import pytest
from numba import njit

from fastgrad import ConvergenceWarning, hlsm
from fastgrad._gradcheck import numerical_gradient
from fastgrad.kernels import hlsm_nll_grad


# ----------------------------------------------------------------------------- reference

def numpy_nll_and_grad(Y, b, eps, alpha, directed):
    """Independent NumPy implementation: full (K, n, n) arrays, explicit pair masks."""
    K, n, d = eps.shape
    z = b[None] + eps
    diff = z[:, :, None, :] - z[:, None, :, :]            # z_i - z_j
    eta = alpha[:, None, None] - (diff ** 2).sum(-1)
    obs = ~np.isnan(Y)
    obs &= ~np.eye(n, dtype=bool)[None]
    if not directed:
        obs &= np.tril(np.ones((n, n), dtype=bool), -1)[None]   # pairs j < i
    y = np.nan_to_num(Y)
    nll = np.sum(np.where(obs, np.logaddexp(0.0, eta) - y * eta, 0.0))
    r = np.where(obs, 1.0 / (1.0 + np.exp(-eta)) - y, 0.0)      # d nll / d eta per ordered pair
    # eta_ij depends on z_i through -||z_i - z_j||^2: d/dz_i = -2 (z_i - z_j), d/dz_j = +2 (z_i - z_j)
    gz = -2.0 * (r[..., None] * diff).sum(axis=2) + 2.0 * (r[..., None] * diff).sum(axis=1)
    return nll, gz.sum(0), gz, r.sum(axis=(1, 2))


def make_data(rng, n=12, K=3, d=2, directed=False, missing=0.15):
    Y, _ = hlsm.simulate(n, K, dim=d, directed=directed, missing=missing,
                         random_state=int(rng.integers(1 << 30)))
    b = rng.standard_normal((n, d))
    eps = 0.5 * rng.standard_normal((K, n, d))
    alpha = rng.standard_normal(K)
    return Y, b, eps, alpha


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_gradient_matches_numpy_and_finite_differences(rng, directed, missing):
    Y, b, eps, alpha = make_data(rng, directed=directed, missing=missing)
    if missing:
        assert np.isnan(Y).any()
    nll, gb, ge, ga = hlsm.nll_and_grad(Y, b, eps, alpha, directed=directed)
    ref = numpy_nll_and_grad(Y, b, eps, alpha, directed)
    np.testing.assert_allclose(nll, ref[0], rtol=1e-12)
    np.testing.assert_allclose(gb, ref[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ge, ref[2], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ga, ref[3], rtol=1e-10, atol=1e-10)
    f = lambda b_: hlsm.nll_and_grad(Y, b_, eps, alpha, directed=directed)[0]  # noqa: E731
    np.testing.assert_allclose(numerical_gradient(f, b), gb, rtol=1e-6, atol=1e-6)
    f = lambda e_: hlsm.nll_and_grad(Y, b, e_, alpha, directed=directed)[0]  # noqa: E731
    np.testing.assert_allclose(numerical_gradient(f, eps), ge, rtol=1e-6, atol=1e-6)
    f = lambda a_: hlsm.nll_and_grad(Y, b, eps, a_, directed=directed)[0]  # noqa: E731
    np.testing.assert_allclose(numerical_gradient(f, alpha), ga, rtol=1e-6, atol=1e-6)


def test_objective_adds_group_penalty(rng):
    Y, b, eps, alpha = make_data(rng)
    nll = hlsm.nll_and_grad(Y, b, eps, alpha)[0]
    pen = np.sqrt((eps ** 2).sum(-1)).sum()
    np.testing.assert_allclose(hlsm.objective(Y, b, eps, alpha, 0.7), nll + 0.7 * pen, rtol=1e-12)


def test_extreme_positions_stay_finite():
    Y, _ = hlsm.simulate(10, 2, random_state=0)
    b = np.zeros((10, 2))
    eps = np.zeros((2, 10, 2))
    alpha = np.array([800.0, -800.0])   # exp(800) overflows in a naive formula
    b[0] = 1e3
    nll, gb, ge, ga = hlsm.nll_and_grad(Y, b, eps, alpha)
    assert np.isfinite(nll) and np.isfinite(gb).all() and np.isfinite(ge).all() and np.isfinite(ga).all()
    with np.errstate(over="ignore"):
        ref = numpy_nll_and_grad(Y, b, eps, alpha, False)
    np.testing.assert_allclose(nll, ref[0], rtol=1e-12)
    np.testing.assert_allclose(ga, ref[3], rtol=1e-12)


def test_user_njit_code_can_call_the_kernel(rng):
    Y, b, eps, alpha = make_data(rng, missing=0.0)
    Yenc = hlsm.encode_layers(Y)

    @njit
    def user_loss(Yenc, z, alpha):
        gz = np.empty_like(z)
        ga = np.empty_like(alpha)
        return hlsm_nll_grad(Yenc, Yenc, z, alpha, False, gz, ga), gz

    z = b[None] + eps
    nll, gz = user_loss(Yenc, z, alpha)
    ref = numpy_nll_and_grad(Y, b, eps, alpha, False)
    np.testing.assert_allclose(nll, ref[0], rtol=1e-12)
    np.testing.assert_allclose(gz, ref[2], rtol=1e-10, atol=1e-12)


def test_thread_count_does_not_change_results(rng):
    Y, b, eps, alpha = make_data(rng, n=60, K=2)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = hlsm.nll_and_grad(Y, b, eps, alpha)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = hlsm.nll_and_grad(Y, b, eps, alpha)
    finally:
        numba.set_num_threads(old)
    for a, c in zip(one, many):
        np.testing.assert_array_equal(a, c)   # fixed-order reductions: bitwise equal


# ----------------------------------------------------------------------------- fitting

@pytest.fixture(scope="module")
def sim150():
    return hlsm.simulate(150, 3, deviation_scale=2.0, random_state=0)


def test_history_never_increases_and_converges():
    Y, _ = hlsm.simulate(60, 3, alpha=[2.0] * 3, random_state=3)
    for lam in (0.0, 3.0):
        res = hlsm.fit(Y, lam, random_state=0)
        assert res.converged
        assert np.all(np.diff(res.history) <= 0.0)
        assert res.history[-1] == pytest.approx(res.objective, rel=1e-9)


def test_large_lam_gives_one_shared_configuration():
    Y, _ = hlsm.simulate(60, 3, random_state=4)
    lmax, shared = hlsm.lam_max(Y, random_state=0, sociality=None)
    assert not shared.deviating.any()
    res = hlsm.fit(Y, 1.01 * lmax, random_state=0, sociality=None)
    assert np.all(res.eps == 0.0)            # exactly zero, not merely small
    below = hlsm.fit(Y, 0.7 * lmax, init=shared, sociality=None)
    assert below.deviating.any()             # below lam_max some deviation becomes active
    # the group-lasso optimality condition at eps = 0 for lam >= lam_max
    ge = hlsm.nll_and_grad(Y, res.b, res.eps, res.alpha)[2]
    assert np.linalg.norm(ge, axis=-1).max() <= 1.01 * lmax * (1 + 1e-3)


def test_recovers_simulated_truth(sim150):
    Y, truth = sim150
    path = hlsm.fit_path(Y, adaptive=True, random_state=0, sociality=None)  # the model of the simulation
    res = path.best
    dev, true_dev = res.deviating, truth.deviating
    tp = int((dev & true_dev).sum())
    fp = int((dev & ~true_dev).sum())
    # 50 deviating (node, layer) groups among 450; reached at writing: tp 50, fp 2
    assert tp >= 46 and fp <= 5, (tp, fp)
    # positions up to a rigid motion: RMS error ~0.13 on N(0, 1) positions at writing
    assert hlsm.procrustes_error(res.b, truth.b) < 0.25
    for k in range(3):
        assert hlsm.procrustes_error(res.z[k], truth.z[k]) < 0.6
    P, Pt = res.predict_proba(), truth.probabilities()
    off = ~np.eye(150, dtype=bool)
    assert np.sqrt(np.mean((P - Pt)[:, off] ** 2)) < 0.06   # 0.044 at writing
    # the non-deviating layers get no deviation at all for the selected lam
    assert dev[1:].sum() <= 2
    assert np.all(np.diff(path.lams) < 0)


def test_plain_group_lasso_zero_for_true_zero_nodes(sim150):
    """For a large enough lam the nodes with true eps = 0 get eps exactly 0 while deviators remain."""
    Y, truth = sim150
    lmax, shared = hlsm.lam_max(Y, random_state=0, sociality=None)
    res = hlsm.fit(Y, 0.5 * lmax, init=shared, sociality=None)
    dev = res.deviating
    assert int((dev & ~truth.deviating).sum()) == 0
    assert int((dev & truth.deviating).sum()) >= 3


def test_random_state_reproduces_fit_exactly():
    Y, _ = hlsm.simulate(40, 2, random_state=5)
    a = hlsm.fit(Y, 2.0, init="random", random_state=11)
    b = hlsm.fit(Y, 2.0, init="random", random_state=11)
    np.testing.assert_array_equal(a.b, b.b)
    np.testing.assert_array_equal(a.eps, b.eps)
    np.testing.assert_array_equal(a.history, b.history)
    c = hlsm.fit(Y, 2.0, init="random", random_state=12)
    assert not np.array_equal(a.b, c.b)


def test_directed_and_missing_fit_runs_on_krackhardt():
    from fastgrad import datasets
    data = datasets.load_krackhardt()
    Y = data.Y.copy()
    Y[0, 1, 2] = np.nan
    res = hlsm.fit(Y, 3.0, directed=True, random_state=0)
    assert res.converged and np.isfinite(res.objective)
    assert res.n_obs == 3 * 21 * 20 - 1
    P = res.predict_proba()
    assert P.shape == (3, 21, 21) and np.all((P >= 0) & (P <= 1))


def test_callback_can_stop_and_max_iter_warns():
    Y, _ = hlsm.simulate(30, 2, random_state=6)
    seen = []

    def cb(it, state):
        seen.append(it)
        assert set(state) == {"b", "eps", "alpha"}
        return it >= 3

    res = hlsm.fit(Y, 1.0, callback=cb, random_state=0)
    assert seen == [1, 2, 3] and res.n_iter == 3 and not res.converged
    with pytest.warns(ConvergenceWarning):
        hlsm.fit(Y, 1.0, max_iter=2, random_state=0)


def test_sparse_and_list_input_equal_dense():
    import scipy.sparse as sp
    Y, _ = hlsm.simulate(30, 2, random_state=7)
    dense = hlsm.fit(Y, 1.0, random_state=0)
    sparse = hlsm.fit([sp.csr_matrix(A) for A in Y], 1.0, random_state=0)
    np.testing.assert_array_equal(dense.eps, sparse.eps)


def test_summary_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from fastgrad import datasets
    data = datasets.load_florentine()
    res = hlsm.fit(data, 3.0, random_state=0)
    text = res.summary()
    assert "marriage" in text and "business" in text and "alpha" in text
    fig = res.plot(Y=data, labels=True, path=tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert len([a for a in fig.axes if a.get_visible()]) == 2
    n_text = sum(len(a.texts) for a in fig.axes)
    assert n_text > 0 or not res.deviating.any()
    for off in (False, None):  # no node labels at all
        fig = res.plot(Y=data, labels=off)
        assert sum(len(a.texts) for a in fig.axes) == 0


# ----------------------------------------------------------------------------- bad input

def good(n=6, K=2):
    Y, _ = hlsm.simulate(n, K, random_state=1)
    return Y


@pytest.mark.parametrize("Y, match", [
    (np.zeros((5, 5)), "shape \\(K, n, n\\)"),
    (np.zeros((2, 5, 4)), "square"),
    ([np.zeros((5, 5)), np.zeros((6, 6))], "same shape"),
    (np.zeros((1, 2, 2)), "at least 3 nodes"),
])
def test_bad_shapes(Y, match):
    with pytest.raises(ValueError, match=match):
        hlsm.fit(Y, 1.0)


def test_bad_entries():
    Y = good()
    Y2 = Y.copy()
    Y2[0, 1, 2] = Y2[0, 2, 1] = 2.0
    with pytest.raises(ValueError, match="other than 0, 1"):
        hlsm.fit(Y2, 1.0)
    Y3 = Y.copy()
    Y3[0, 1, 2] = 1 - Y3[0, 2, 1]
    with pytest.raises(ValueError, match="not symmetric"):
        hlsm.fit(Y3, 1.0)
    hlsm.encode_layers(Y3, directed=True)   # fine when directed
    Y4 = Y.copy()
    Y4[1] = np.nan
    with pytest.raises(ValueError, match="no observed dyads"):
        hlsm.fit(Y4, 1.0)
    Y5 = Y.copy()
    Y5[1] = 0
    with pytest.raises(ValueError, match="no ties"):
        hlsm.fit(Y5, 1.0)
    with pytest.raises(TypeError, match="numeric"):
        hlsm.fit(np.array([[["a"] * 3] * 3]), 1.0)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(lam=-1.0), ValueError, "lam must be >= 0"),
    (dict(lam=float("nan")), ValueError, "lam must be finite"),
    (dict(lam=1.0, dim=0), ValueError, "dim must be >= 1"),
    (dict(lam=1.0, dim=6), ValueError, "dim must be smaller"),
    (dict(lam=1.0, dim=1.5), TypeError, "dim must be an integer"),
    (dict(lam=1.0, init="spectral"), ValueError, "init must be"),
    (dict(lam=1.0, random_state="x"), TypeError, "random_state"),
    (dict(lam=1.0, directed="yes"), TypeError, "directed must be a bool"),
    (dict(lam=1.0, weights=np.ones(3)), ValueError, "weights must have shape"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        hlsm.fit(good(), **kwargs)


def test_nonfinite_parameters_rejected():
    Y = good()
    b, eps, alpha = np.zeros((6, 2)), np.zeros((2, 6, 2)), np.zeros(2)
    for name in ("b", "eps", "alpha"):
        args = dict(b=b.copy(), eps=eps.copy(), alpha=alpha.copy())
        args[name].flat[0] = np.nan
        with pytest.raises(ValueError, match=f"{name} contains NaN"):
            hlsm.nll_and_grad(Y, **args)
    with pytest.raises(ValueError, match="eps must have shape"):
        hlsm.nll_and_grad(Y, b, np.zeros((2, 6, 3)), alpha)
    with pytest.raises(ValueError, match="alpha must have shape"):
        hlsm.nll_and_grad(Y, b, eps, np.zeros(3))


def test_no_warnings_on_normal_fit():
    Y, _ = hlsm.simulate(40, 2, random_state=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hlsm.fit(Y, 1.0, random_state=0)
