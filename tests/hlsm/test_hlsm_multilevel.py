"""Multilevel start of hlsm.fit: node placement kernel and the sample-then-place initialisation."""
import numba
import numpy as np
import pytest
from numba import njit
from scipy.optimize import minimize

from fastgrad import gradcheck, hlsm
from fastgrad.hlsm import _multilevel as _hlsm_multilevel
from fastgrad.hlsm import _problem

OPTS = hlsm.SolverOptions()
from fastgrad.hlsm._sparse import encode_sparse
from fastgrad.kernels.hlsm_place import hlsm_place_nodes, hlsm_place_objective
from test_hlsm_fast import _sparse_layers  # tests/hlsm/ is on sys.path (no __init__.py)


def _f_numpy(u, anchors, alpha, m, cols, cnts):
    """Independent formula: m * sum_kj softplus(alpha_k - D_j) + sum_j c_j D_j."""
    D = ((u[None, :] - anchors) ** 2).sum(axis=1)
    return m * np.logaddexp(0.0, alpha[:, None] - D[None, :]).sum() + (cnts * D[cols]).sum()


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    anchors = rng.standard_normal((40, 3)) * 1.5
    alpha = np.array([1.0, -0.5, 2.0])
    cols = np.array([2, 5, 11, 30], dtype=np.int64)
    cnts = np.array([1.0, 2.0, 3.0, 1.0])
    return anchors, alpha, cols, cnts


@pytest.mark.parametrize("m", [1.0, 2.0])
def test_place_objective_value_gradient_hessian(problem, m):
    anchors, alpha, cols, cnts = problem
    g, H = np.empty(3), np.empty((3, 3))

    def fg(u):
        return hlsm_place_objective(u, anchors, alpha, m, cols, cnts, g, H), g.copy()

    u = np.array([0.3, -0.7, 0.2])
    f, _ = fg(u)
    assert f == pytest.approx(_f_numpy(u, anchors, alpha, m, cols, cnts), rel=1e-13)
    ok, err, _ = gradcheck(fg, u, rtol=1e-6, atol=1e-6)
    assert ok, err
    fg(u)
    H0 = H.copy()
    h = 1e-5
    Hn = np.empty((3, 3))
    for c in range(3):
        e = np.zeros(3)
        e[c] = h
        Hn[:, c] = (fg(u + e)[1] - fg(u - e)[1]) / (2 * h)
    np.testing.assert_allclose(H0, Hn, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(H0, H0.T, rtol=1e-14)


def test_place_nodes_matches_scipy_and_threads(problem):
    anchors, alpha, _, _ = problem
    rng = np.random.default_rng(1)
    nn = 30
    ptr = np.zeros(nn + 1, dtype=np.int64)
    cols_l, cnt_l = [], []
    for i in range(nn):
        c = np.sort(rng.choice(40, size=rng.integers(0, 6), replace=False))
        cols_l.append(c)
        cnt_l.append(rng.integers(1, 4, size=c.size).astype(np.float64))
        ptr[i + 1] = ptr[i] + c.size
    cols, cnts = np.concatenate(cols_l).astype(np.int64), np.concatenate(cnt_l)
    u0 = np.array([anchors[c].mean(axis=0) if c.size else np.full(3, 7.0) for c in cols_l])
    outs = []
    old = numba.get_num_threads()
    try:
        for th in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(th)
            out = np.empty_like(u0)
            hlsm_place_nodes(u0, anchors, alpha, 1.0, ptr, cols, cnts, 50, out)
            outs.append(out)
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(outs[0], outs[1])
    out = outs[0]
    for i in range(nn):
        c, w = cols_l[i], cnt_l[i]
        if not c.size:
            np.testing.assert_array_equal(out[i], u0[i])  # no finite minimiser: left where it was
            continue
        f = lambda u: _f_numpy(u, anchors, alpha, 1.0, c, w)  # noqa: E731
        ref = minimize(f, u0[i], method="BFGS", options={"gtol": 1e-9})
        # Newton from the same start reaches a stationary point at least as good as BFGS's
        assert f(out[i]) <= ref.fun + 1e-9 * abs(ref.fun)
        g = np.empty(3)
        hlsm_place_objective(out[i], anchors, alpha, 1.0, c, w, g, np.empty((3, 3)))
        assert np.linalg.norm(g) < 1e-6 * (1 + abs(ref.fun))


def test_place_nodes_callable_from_user_njit(problem):
    anchors, alpha, cols, cnts = problem

    @njit
    def user(u0):
        out = np.empty_like(u0)
        hlsm_place_nodes(u0, anchors, alpha, 1.0, np.array([0, 4], dtype=np.int64), cols, cnts, 30, out)
        return out

    out = user(anchors[cols].mean(axis=0)[None, :].copy())
    assert np.isfinite(out).all()


def test_sample_size_rule():
    Y, _ = hlsm.simulate(600, 3, random_state=0)
    Yenc = hlsm.Layers(Y)
    m = _hlsm_multilevel.sample_size(Yenc, False, OPTS)
    deg = (Yenc.Y == 1).sum(axis=(0, 2)).mean()  # ties summed over layers
    assert m == max(200, int(np.ceil(600 * OPTS.multilevel_degree / deg)))
    # a sparse graph (a few ties per node) cannot carry a sample: no multilevel start
    Ys, _ = hlsm.simulate(300, 2, alpha=[-4.0, -4.0], random_state=0)
    assert _hlsm_multilevel.sample_size(hlsm.Layers(Ys), False, OPTS) == 0


@pytest.mark.parametrize("directed", [False, True])
def test_multilevel_start_recovers_truth_and_fit_optimum(directed):
    Y, truth = hlsm.simulate(500, 3, directed=directed, missing=0.02, random_state=4)
    Yenc = hlsm.Layers(Y, directed=directed)
    rng = np.random.default_rng(0)
    start = _hlsm_multilevel.init_multilevel(Yenc, directed, 2, rng, OPTS)
    assert start is not None
    b, alpha = start
    # the start alone is already close to the truth (a fit of 200 nodes plus placement;
    # positions spread ~1, the MLE itself sits ~0.1-0.2 from the truth)
    assert hlsm.procrustes_error(b, truth.b) < 0.3
    # node sampling keeps the intercepts: those of the sample fit are near those of the
    # shared configuration fitted on all nodes (from the MDS start)
    b_all, a_all, _ = _problem.fit_shared(Yenc, directed, *Yenc.init_mds(2, rng), rng, OPTS, tol=1e-12)
    np.testing.assert_allclose(alpha, a_all, atol=0.1)
    assert hlsm.procrustes_error(b, b_all) < 0.2
    # and the fit from it reaches the optimum found from the MDS start
    kw = dict(directed=directed, random_state=0, tol=1e-11, gtol=1e-6, max_iter=20000)
    r_ml = hlsm.fit(Y, 8.0, init="multilevel", **kw, sociality=None)
    r_mds = hlsm.fit(Y, 8.0, init="mds", **kw, sociality=None)
    assert r_ml.converged and r_mds.converged
    assert r_ml.objective == pytest.approx(r_mds.objective, rel=1e-8)
    assert hlsm.procrustes_error(r_ml.z.reshape(-1, 2), r_mds.z.reshape(-1, 2)) < 1e-3


def test_multilevel_start_dense_equals_sparse_input():
    Y, _ = hlsm.simulate(400, 2, missing=0.02, random_state=2)
    dense = hlsm.Layers(Y)
    sparse = encode_sparse(_sparse_layers(Y))
    b1, a1 = _hlsm_multilevel.init_multilevel(dense, False, 2, np.random.default_rng(5), OPTS)
    b2, a2 = _hlsm_multilevel.init_multilevel(sparse, False, 2, np.random.default_rng(5), OPTS)
    np.testing.assert_allclose(b1, b2, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a1, a2, rtol=1e-9)


def test_auto_init_switch(monkeypatch):
    Y, _ = hlsm.simulate(300, 2, random_state=1)
    calls = []
    real = _hlsm_multilevel.init_multilevel

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(_hlsm_multilevel, "init_multilevel", spy)
    hlsm.fit(Y, 5.0, random_state=0, max_iter=5, sociality=None)
    assert calls == []  # below MULTILEVEL_MIN_N: MDS
    r_auto = hlsm.fit(Y, 5.0, random_state=0, max_iter=5, sociality=None,
                      solver_options={"multilevel_min_n": 100})
    assert calls and calls[0][1] == 300
    r_ml = hlsm.fit(Y, 5.0, random_state=0, max_iter=5, init="multilevel", sociality=None)
    np.testing.assert_array_equal(r_auto.z, r_ml.z)  # same seed, same start
    with pytest.raises(ValueError, match="init"):
        hlsm.fit(Y, 5.0, init="pivot", sociality=None)


def test_multilevel_falls_back_to_mds_on_sparse_graph():
    Y, _ = hlsm.simulate(300, 2, alpha=[-4.0, -4.0], random_state=0)
    r1 = hlsm.fit(Y, 5.0, random_state=3, max_iter=20, init="multilevel", sociality=None)
    r2 = hlsm.fit(Y, 5.0, random_state=3, max_iter=20, init="mds", sociality=None)
    np.testing.assert_array_equal(r1.z, r2.z)


def test_smoothed_objective_gradient_and_bound():
    Y, _ = hlsm.simulate(40, 3, random_state=2)
    Yenc = hlsm.Layers(Y)
    lam, mu = 3.0, 0.05
    w = np.ones((3, 40))
    w[1, :5] = np.inf  # fixed at zero
    w[2, 5:9] = 2.5
    s_b, s_e = _problem._node_scales(Yenc, False, 0.05)
    prob = _problem._Problem(Yenc, False, 2, lam, 1.7, 3.0, w, (s_b, s_e))
    rng = np.random.default_rng(0)
    b = rng.standard_normal((40, 2))
    eps = rng.standard_normal((3, 40, 2)) * np.where(rng.random((3, 40, 1)) < 0.5, 0.3, 0.01)
    eps[1, :5] = 0.0
    alpha = np.array([0.5, 1.0, 1.5])
    x = prob.pack(b, eps, alpha)
    f = prob.smoothed(mu)
    fx, gx = f(x)
    # value: nll + lam * sum w * huber, checked against the exact objective and the Huber formula
    r = np.linalg.norm(eps, axis=-1)
    hub = np.where(r >= mu, r - mu / 2, r * r / (2 * mu))
    wf = np.where(np.isinf(w), 0.0, w)
    nll = hlsm.objective(Y, b, eps, alpha, 0.0)
    assert fx == pytest.approx(nll + lam * (wf * hub).sum(), rel=1e-12)
    exact = nll + lam * (wf * r).sum()  # the group-lasso penalty with these weights
    assert 0 <= exact - fx <= lam * wf.sum() * mu / 2 + 1e-9
    # gradient against central differences, in the solver's coordinates (fixed groups excluded)
    free = np.ones(x.size, dtype=bool)
    free[prob.se] = np.repeat(~np.isinf(w).ravel(), 2)
    xi = x[free]

    def fg(v):
        z = x.copy()
        z[free] = v
        val, g = f(z)
        return val, g[free]

    ok, err, _ = gradcheck(fg, xi, rtol=1e-5, atol=1e-5)
    assert ok, err
    assert np.all(gx[~free] == 0.0)


@pytest.mark.parametrize("stage_dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-7)])
def test_fit_shared_equals_penalised_fit_above_lam_max(stage_dtype, rtol):
    opts = hlsm.SolverOptions(stage_dtype=stage_dtype)
    Y, _ = hlsm.simulate(80, 3, random_state=6)
    Yenc = hlsm.Layers(Y)
    rng = np.random.default_rng(0)
    b0, a0 = Yenc.init_mds(2, rng)
    b, alpha, sol = _problem.fit_shared(Yenc, False, b0, a0, rng, opts, tol=1e-13, max_iter=5000)
    big = hlsm.fit(Y, 1e6, random_state=0, tol=1e-13, gtol=1e-8, max_iter=20000, sociality=None)
    assert big.deviating.sum() == 0
    assert sol.objective == pytest.approx(big.objective, rel=rtol)
    z = np.repeat(b[None], 3, axis=0)
    assert hlsm.procrustes_error(z.reshape(-1, 2), big.z.reshape(-1, 2)) < 1e-3
    np.testing.assert_allclose(alpha, big.alpha, atol=1e-4)


@pytest.mark.parametrize("stage_dtype", [np.float64, np.float32])
def test_staged_fit_reaches_the_proximal_gradient_optimum(stage_dtype):
    # multilevel start + L-BFGS stages (float32 or float64 passes) + float64 proximal gradient
    # end at the optimum of proximal gradient alone from the same start
    Y, truth = hlsm.simulate(400, 3, missing=0.01, random_state=9)
    lam = 6.0
    kw = dict(init="multilevel", random_state=0, tol=1e-12, gtol=1e-6, max_iter=20000, sociality=None)
    staged = hlsm.fit(Y, lam, **kw, solver_options={"stage_dtype": stage_dtype})
    plain = hlsm.fit(Y, lam, **kw, solver_options={"stage_dtype": stage_dtype, "smooth_stage": False})
    assert staged.converged and plain.converged
    assert staged.objective == pytest.approx(plain.objective, rel=1e-9)
    np.testing.assert_array_equal(staged.deviating, plain.deviating)
    assert hlsm.procrustes_error(staged.z.reshape(-1, 2), plain.z.reshape(-1, 2)) < 1e-3
    assert staged.n_iter < plain.n_iter  # proximal gradient only settles the support
    # the deviating layer is found
    dev = staged.deviating.sum(axis=1)
    assert dev[0] > max(dev[1], dev[2])
