"""Fast HLSM paths: vectorisable exp/log1p, fast kernels, sparse and case-control likelihoods."""
import numba
import numpy as np
import pytest
from numba import njit

from fastgrad import hlsm
from fastgrad.kernels import (fast_exp, fast_log1p_unit, fast_softplus_sigmoid, hlsm_nll,
                              hlsm_nll_fast, hlsm_nll_grad, hlsm_nll_grad_fast)

ULP = 2.220446049250313e-16
# The kernels call the fast functions inside loops compiled with these flags:
# test them in exactly that setting (reassociation must not undo the range reduction).
_FM = {"reassoc", "contract"}


@njit(fastmath=_FM, error_model="numpy")
def _exp_loop(x, out):
    for i in range(x.size):
        out[i] = fast_exp(x[i])


@njit(fastmath=_FM, error_model="numpy")
def _log1p_loop(x, out):
    for i in range(x.size):
        out[i] = fast_log1p_unit(x[i])


@njit(fastmath=_FM, error_model="numpy")
def _sps_loop(x, sp, s):
    for i in range(x.size):
        sp[i], s[i] = fast_softplus_sigmoid(x[i])


def _exp_inputs(rng):
    special = [0.0, -0.0, 1e-300, -1e-300, 0.5 * np.log(2), -0.5 * np.log(2), 709.78, 709.782712893384,
               709.7827128933841, 709.79, 709.8, 710.0, 1e300, -708.39, -708.4, -744.44, -745.13,
               -745.1332191019411, -745.14, -746.0, -1e300]
    return np.concatenate([rng.uniform(-746.0, 710.0, 400_000), rng.uniform(-2.0, 2.0, 100_000),
                           np.linspace(-746.0, 710.0, 200_001), np.array(special)])


def test_fast_exp_matches_numpy_over_whole_range(rng):
    x = _exp_inputs(rng)
    out = np.empty_like(x)
    _exp_loop(x, out)
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    normal = np.isfinite(ref) & (ref >= np.finfo(np.float64).tiny)
    assert normal.sum() > 500_000
    rel = np.abs(out[normal] - ref[normal]) / ref[normal]
    assert rel.max() <= 2 * ULP
    sub = ~normal & np.isfinite(ref)  # subnormal or zero results: absolute error of one subnormal step
    assert np.abs(out[sub] - ref[sub]).max() <= 5e-324
    assert np.array_equal(out[np.isinf(ref)], ref[np.isinf(ref)])
    # the scalar function called from Python agrees with the vectorised loop
    for v in (-700.0, -1.5, 0.0, 3.25, 700.0, 709.7):
        assert abs(fast_exp(v) - np.exp(v)) <= 2 * ULP * np.exp(v)


def test_fast_exp_special_values():
    x = np.array([np.inf, -np.inf, np.nan, 1000.0, -1000.0, 0.0])
    out = np.empty_like(x)
    _exp_loop(x, out)
    assert out[0] == np.inf and out[1] == 0.0 and np.isnan(out[2])
    assert out[3] == np.inf and out[4] == 0.0 and out[5] == 1.0
    assert fast_exp(np.inf) == np.inf and np.isnan(fast_exp(np.nan))


def test_fast_log1p_unit_accuracy(rng):
    e = np.concatenate([rng.uniform(0, 1, 300_000), 10.0 ** rng.uniform(-320, 0, 200_000),
                        [0.0, 5e-324, 1e-17, np.sqrt(2) - 1, np.nextafter(np.sqrt(2) - 1, 1), 1.0]])
    out = np.empty_like(e)
    _log1p_loop(e, out)
    ref = np.log1p(e)
    pos = ref > 0
    assert (np.abs(out[pos] - ref[pos]) / ref[pos]).max() <= 4 * ULP
    assert out[~pos].max() == 0.0


def test_fast_softplus_sigmoid(rng):
    x = np.concatenate([rng.uniform(-50, 50, 100_000), rng.uniform(-800, 800, 10_000),
                        [np.inf, -np.inf, 0.0, -1e308, 1e308]])
    sp, s = np.empty_like(x), np.empty_like(x)
    _sps_loop(x, sp, s)
    with np.errstate(over="ignore"):
        ref_sp = np.logaddexp(0.0, x)
    ref_s = np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))
    assert not np.isnan(sp).any() and not np.isnan(s).any()
    fin = np.isfinite(ref_sp) & (ref_sp > 1e-300)
    assert (np.abs(sp[fin] - ref_sp[fin]) / ref_sp[fin]).max() <= 8 * ULP
    assert np.array_equal(sp[~fin], ref_sp[~fin]) or np.allclose(sp[~fin], ref_sp[~fin], rtol=0, atol=1e-300)
    big = ref_s > 1e-300
    assert (np.abs(s[big] - ref_s[big]) / ref_s[big]).max() <= 8 * ULP


# ----------------------------------------------------------------------------- kernels

def _problem(n, K, d, directed, missing, seed):
    Y, truth = hlsm.simulate(n, K, dim=d, directed=directed, missing=missing, random_state=seed)
    Yenc = hlsm.encode_layers(Y, directed=directed)
    YT = np.ascontiguousarray(Yenc.transpose(0, 2, 1)) if directed else Yenc
    rng = np.random.default_rng(seed + 1)
    z = np.ascontiguousarray(truth.z + 0.3 * rng.standard_normal(truth.z.shape))
    return Y, Yenc, YT, z, truth.alpha.copy()


def _numpy_nll_grad(Y, z, alpha, directed):
    """Independent NumPy formula on a float (K, n, n) array with NaN = missing."""
    K, n, d = z.shape
    diff = z[:, :, None, :] - z[:, None, :, :]
    eta = alpha[:, None, None] - (diff ** 2).sum(-1)
    obs = ~np.isnan(Y) & ~np.eye(n, dtype=bool)[None]
    if not directed:
        obs &= np.tril(np.ones((n, n), dtype=bool), -1)[None]
    y = np.where(obs, np.nan_to_num(Y), 0.0)
    nll = np.where(obs, np.logaddexp(0.0, eta) - y * eta, 0.0).sum()
    r = np.where(obs, 1.0 / (1.0 + np.exp(-eta)) - y, 0.0)
    ga = r.sum(axis=(1, 2))
    # d eta_ij / d z_i = -2 (z_i - z_j), d eta_ij / d z_j = +2 (z_i - z_j)
    gz = -2.0 * (r[..., None] * diff).sum(2) + 2.0 * (r[..., None] * diff).sum(1)
    return nll, gz, ga


@pytest.mark.parametrize("n,directed,missing,d", [(70, False, 0.0, 2), (70, False, 0.1, 2), (70, True, 0.1, 2),
                                                  (70, False, 0.1, 1), (70, True, 0.0, 3), (70, False, 0.1, 3),
                                                  (530, False, 0.1, 2), (530, True, 0.1, 3)])
def test_fast_kernel_equals_reference(n, directed, missing, d):
    # n = 530 spans three tiles of 256 (the last one ragged)
    Y, Yenc, YT, z, alpha = _problem(n, 3, d, directed, missing, seed=d + 10 * directed)
    g1, a1 = np.empty_like(z), np.empty(3)
    g2, a2 = np.empty_like(z), np.empty(3)
    f1 = hlsm_nll_grad(Yenc, YT, z, alpha, directed, g1, a1)
    f2 = hlsm_nll_grad_fast(Yenc, YT, z, alpha, directed, g2, a2)
    f3, g3, a3 = _numpy_nll_grad(Y, z, alpha, directed)
    assert f2 == pytest.approx(f1, rel=1e-13)
    assert f2 == pytest.approx(f3, rel=1e-12)
    scale = np.abs(g1).max()
    assert np.abs(g2 - g1).max() <= 1e-12 * scale
    assert np.abs(g2 - g3).max() <= 1e-11 * scale
    np.testing.assert_allclose(a2, a1, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(a2, a3, rtol=1e-11, atol=1e-9)
    assert hlsm_nll_fast(Yenc, z, alpha, directed) == pytest.approx(f1, rel=1e-13)
    assert hlsm_nll_fast(Yenc, z, alpha, directed) == pytest.approx(hlsm_nll(Yenc, z, alpha, directed), rel=1e-13)


def test_fast_kernel_ignores_diagonal_values():
    _, Yenc, YT, z, alpha = _problem(40, 2, 2, False, 0.0, seed=3)
    Y2 = Yenc.copy()
    for k in range(2):
        np.fill_diagonal(Y2[k], 1)
    g1, a1, g2, a2 = np.empty_like(z), np.empty(2), np.empty_like(z), np.empty(2)
    assert hlsm_nll_grad_fast(Yenc, Yenc, z, alpha, False, g1, a1) == hlsm_nll_grad_fast(Y2, Y2, z, alpha, False,
                                                                                         g2, a2)
    assert np.array_equal(g1, g2) and np.array_equal(a1, a2)


@pytest.mark.parametrize("directed", [False, True])
def test_fast_kernel_thread_count_invariant(directed):
    _, Yenc, YT, z, alpha = _problem(300, 3, 2, directed, 0.05, seed=5)
    old = numba.get_num_threads()
    out = []
    try:
        for th in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(th)
            g, a = np.empty_like(z), np.empty(3)
            f = hlsm_nll_grad_fast(Yenc, YT, z, alpha, directed, g, a)
            out.append((f, g, a, hlsm_nll_fast(Yenc, z, alpha, directed)))
    finally:
        numba.set_num_threads(old)
    (f1, g1, a1, v1), (f2, g2, a2, v2) = out[0], out[-1]
    # each node's sums are computed by one thread in a fixed order: bit-identical
    assert f1 == f2 and v1 == v2 and np.array_equal(g1, g2) and np.array_equal(a1, a2)


def test_fast_kernel_extreme_eta_is_finite():
    _, Yenc, YT, z, alpha = _problem(30, 2, 2, True, 0.0, seed=7)
    for zscale, a in ((1e6, np.array([1e8, -1e8])), (1e-9, np.array([700.0, -800.0])),
                      (1e150, np.array([0.0, 0.0]))):
        zz = np.ascontiguousarray(z * zscale)
        g, ga = np.empty_like(zz), np.empty(2)
        f = hlsm_nll_grad_fast(Yenc, YT, zz, a, True, g, ga)
        f_ref = hlsm_nll_grad(Yenc, YT, zz, a, True, np.empty_like(zz), np.empty(2))
        assert np.isfinite(f) and np.isfinite(g).all() and np.isfinite(ga).all()
        assert f == pytest.approx(f_ref, rel=1e-12)
        assert np.isfinite(hlsm_nll_fast(Yenc, zz, a, True))


def test_user_njit_can_call_fast_kernels():
    _, Yenc, YT, z, alpha = _problem(25, 2, 2, False, 0.0, seed=9)

    @njit
    def user(Y, z, alpha):
        g = np.empty_like(z)
        ga = np.empty(alpha.shape[0])
        return hlsm_nll_grad_fast(Y, Y, z, alpha, False, g, ga) - hlsm_nll_fast(Y, z, alpha, False) + fast_exp(0.0)

    assert user(Yenc, z, alpha) == pytest.approx(1.0, abs=1e-9)


def test_front_end_uses_fast_path_consistently():
    Y, Yenc, YT, z, alpha = _problem(50, 2, 2, False, 0.1, seed=11)
    b = z.mean(axis=0)
    eps = z - b
    nll, gb, ge, ga = hlsm.nll_and_grad(Y, b, eps, alpha)
    f3, g3, a3 = _numpy_nll_grad(Y, z, alpha, False)
    assert nll == pytest.approx(f3, rel=1e-12)
    np.testing.assert_allclose(ge, g3, rtol=1e-10, atol=1e-10 * np.abs(g3).max())
    np.testing.assert_allclose(gb, g3.sum(0), rtol=1e-10, atol=1e-10 * np.abs(g3).max())


# ----------------------------------------------------------------------------- sparse path

def _sparse_layers(Y):
    """scipy.sparse layers of a dense (K, n, n) float array (NaN = missing, stored as NaN)."""
    import scipy.sparse as sp
    out = []
    for k in range(Y.shape[0]):
        A = np.where(np.isnan(Y[k]), 0.0, Y[k])
        r, c = np.nonzero(np.isnan(Y[k]))
        out.append(sp.csr_matrix(A) + sp.csr_matrix((np.full(r.size, np.nan), (r, c)), shape=A.shape))
    return out


@pytest.mark.parametrize("directed,missing,d", [(False, 0.0, 2), (False, 0.08, 2), (True, 0.08, 2),
                                                (True, 0.0, 3), (False, 0.08, 1)])
def test_sparse_likelihood_equals_dense(directed, missing, d):
    from fastgrad.hlsm._sparse import encode_sparse, nll_grad_sparse, nll_sparse
    Y, _, _, z, alpha = _problem(90, 3, d, directed, missing, seed=20 + d)
    S = encode_sparse(_sparse_layers(Y), directed=directed)
    f, gz, ga = nll_grad_sparse(S, z, alpha)
    f3, g3, a3 = _numpy_nll_grad(Y, z, alpha, directed)  # independent dense formula
    assert f == pytest.approx(f3, rel=1e-12)
    np.testing.assert_allclose(gz, g3, rtol=0, atol=1e-11 * np.abs(g3).max())
    np.testing.assert_allclose(ga, a3, rtol=1e-11, atol=1e-9)
    assert nll_sparse(S, z, alpha) == pytest.approx(f3, rel=1e-12)
    per = nll_sparse(S, z, alpha, per_layer=True)
    for k in range(3):
        fk, _, _ = _numpy_nll_grad(Y[k:k + 1], z[k:k + 1], alpha[k:k + 1], directed)
        assert per[k] == pytest.approx(fk, rel=1e-12)
    assert S.n_obs == hlsm.Layers(Y, directed=directed).n_obs


@pytest.mark.parametrize("directed", [False, True])
def test_sparse_fit_equals_dense_fit(directed):
    Y, _ = hlsm.simulate(80, 3, directed=directed, missing=0.05, random_state=4)
    r1 = hlsm.fit(Y, 3.0, directed=directed, random_state=0, sparse=False)
    r2 = hlsm.fit(_sparse_layers(Y), 3.0, directed=directed, random_state=0, sparse=True)
    assert r2.n_iter == r1.n_iter and r2.converged == r1.converged and r2.n_obs == r1.n_obs
    assert r2.nll == pytest.approx(r1.nll, rel=1e-9)
    np.testing.assert_allclose(r2.b, r1.b, atol=1e-7)
    np.testing.assert_allclose(r2.eps, r1.eps, atol=1e-7)
    np.testing.assert_allclose(r2.layer_nll, r1.layer_nll, rtol=1e-9)
    assert np.array_equal(r2.deviating, r1.deviating)


@pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")
def test_sparse_auto_and_edge_list():
    from fastgrad.hlsm._layers import use_sparse
    from fastgrad.hlsm._sparse import layers_from_edges
    Y, _ = hlsm.simulate(60, 2, random_state=6)
    layers = _sparse_layers(Y)
    assert not use_sparse(layers, "auto")  # small n: the dense path
    assert use_sparse(layers, True) and not use_sparse(Y, "auto")
    with pytest.raises(ValueError, match="sparse=True"):
        hlsm.fit(Y, 1.0, sparse=True)
    with pytest.raises(ValueError, match="sparse"):
        hlsm.fit(layers, 1.0, sparse="yes")
    k, i, j = np.nonzero(Y == 1)
    from_edges = layers_from_edges(k, i, j, n=60, K=2)
    r1 = hlsm.fit(layers, 2.0, random_state=1, sparse=True, max_iter=50)
    r2 = hlsm.fit(from_edges, 2.0, random_state=1, sparse=True, max_iter=50)
    assert r1.nll == r2.nll and np.array_equal(r1.b, r2.b)
    with pytest.raises(ValueError, match="outside"):
        layers_from_edges(k, i, j + 60, n=60, K=2)


def test_sparse_input_validation():
    import scipy.sparse as sp

    from fastgrad.hlsm._sparse import encode_sparse
    Y, _ = hlsm.simulate(30, 2, random_state=2)
    layers = _sparse_layers(Y)
    bad = layers[0].copy()
    bad[0, 1] = 2.0
    with pytest.raises(ValueError, match="other than 0, 1"):
        encode_sparse([bad, layers[1]])
    asym = sp.csr_matrix(np.triu(np.nan_to_num(Y[0]), 1))
    with pytest.raises(ValueError, match="not symmetric"):
        encode_sparse([asym, layers[1]])
    encode_sparse([asym, layers[1]], directed=True)
    with pytest.raises(ValueError, match="no ties"):
        encode_sparse([sp.csr_matrix((30, 30)), layers[1]])
    with pytest.raises(ValueError, match="same shape"):
        encode_sparse([layers[0], sp.csr_matrix((31, 31))])


@pytest.mark.parametrize("n, p", [(1, 0.0), (2, 0.0), (7, 0.3), (61, 0.05), (150, 0.008)])
def test_hop_distances_match_scipy_shortest_path(n, p):
    """The dense start's NumPy BFS gives scipy's unweighted shortest paths, components and
    self-loops included, and batching the sources does not change them."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import shortest_path
    from fastgrad.hlsm._base import hop_distances
    rng = np.random.default_rng(n)
    A = rng.random((n, n)) < p
    A = A | A.T
    np.fill_diagonal(A, rng.random(n) < 0.5)
    ref = shortest_path(sp.csr_matrix(A.astype(np.float64)), method="D", directed=False, unweighted=True)
    np.fill_diagonal(ref, 0.0)
    D = hop_distances(A)
    np.testing.assert_array_equal(D, ref)
    np.testing.assert_array_equal(hop_distances(A, work=1), ref)     # one source per batch
    if n == 150:
        assert np.isinf(ref).any() and ref[np.isfinite(ref)].max() >= 4   # several components, long paths


def test_pivot_mds_initialisation_recovers_geometry(monkeypatch):
    from fastgrad.hlsm import _sparse as _hlsm_sparse
    from fastgrad.hlsm._sparse import encode_sparse, init_mds_sparse
    Y, truth = hlsm.simulate(400, 2, frac_deviating=0.0, alpha=np.array([2.0, 2.0]), random_state=8)
    layers = _sparse_layers(Y)
    S = encode_sparse(layers)
    exact, _ = init_mds_sparse(S, 2, np.random.default_rng(0))
    r_exact = hlsm.fit(layers, 1e6, random_state=0, sparse=True, max_iter=2000)
    monkeypatch.setattr(_hlsm_sparse, "EXACT_MDS_MAX_N", 100)  # force pivot MDS
    pivot, alpha = init_mds_sparse(S, 2, np.random.default_rng(0), n_pivots=40)
    assert np.isfinite(alpha).all()

    def rel_err(X, T):
        T = T - T.mean(0)
        X = (X - X.mean(0)) * np.sqrt((T ** 2).sum() / ((X - X.mean(0)) ** 2).sum())
        return hlsm.procrustes_error(X, T) / np.sqrt((T ** 2).sum(1).mean())
    # pivot MDS approximates classical MDS of the geodesics: both give the truth's shape (up to scale)
    err_pivot, err_exact = rel_err(pivot, truth.b), rel_err(exact, truth.b)
    assert err_pivot < 0.45 and err_exact < 0.4  # measured 0.33 and 0.27
    assert rel_err(pivot, exact) < 0.4  # measured 0.28
    # the fit from the pivot start reaches the likelihood of the fit from the exact start
    r_pivot = hlsm.fit(layers, 1e6, random_state=0, sparse=True, max_iter=2000)
    assert r_pivot.nll == pytest.approx(r_exact.nll, rel=1e-6)
    assert rel_err(r_pivot.b, r_exact.b) < 1e-3  # measured 2e-5
    assert rel_err(r_pivot.b, truth.b) < 0.15  # measured 0.057


def test_safeguarded_intercept_newton_converges_from_far():
    from fastgrad.hlsm._base import newton_intercept
    rng = np.random.default_rng(0)
    d2 = rng.uniform(0, 400, 20000)
    a_true = 3.0
    y = (rng.random(d2.size) < 1 / (1 + np.exp(-(a_true - d2)))).astype(float)
    a = newton_intercept(y, d2, 200.0)  # plain Newton from here diverges to -1e17
    p = 1 / (1 + np.exp(-(a - d2)))
    assert abs((p - y).sum()) < 1e-6 * max(1.0, y.sum())


# ----------------------------------------------------------------------------- case-control

@pytest.mark.parametrize("directed", [False, True])
def test_case_control_likelihood_is_unbiased(directed):
    from fastgrad.hlsm._sparse import case_control_layers, encode_sparse, nll_grad_sparse, nll_sparse
    Y, truth = hlsm.simulate(150, 2, directed=directed, missing=0.02, random_state=3)
    S = encode_sparse(_sparse_layers(Y), directed=directed)
    z, a = np.ascontiguousarray(truth.z), truth.alpha
    exact = nll_sparse(S, z, a)
    est = np.array([nll_sparse(case_control_layers(S, 15, random_state=s), z, a) for s in range(40)])
    assert abs(est.mean() - exact) < 4 * est.std() / np.sqrt(est.size)
    # with every non-tie drawn many times the estimate is close, and gradients agree with finite differences
    C = case_control_layers(S, 2000, random_state=0)
    f, gz, ga = nll_grad_sparse(C, z, a)
    assert f == pytest.approx(exact, rel=0.01)
    h = 1e-6
    for idx in [(0, 3, 0), (1, 77, 1)]:
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        num = (nll_sparse(C, zp, a) - nll_sparse(C, zm, a)) / (2 * h)
        assert gz[idx] == pytest.approx(num, rel=1e-5, abs=1e-6)


@pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")
def test_case_control_fit_approaches_exact_fit_as_controls_grow():
    from fastgrad.hlsm._sparse import case_control_layers, encode_sparse, nll_sparse
    Y, _ = hlsm.simulate(200, 2, missing=0.02, random_state=3)
    S = encode_sparse(_sparse_layers(Y))
    exact = hlsm.fit(S, 3.0, random_state=0, sparse=True, sociality=None)
    errs = []
    for m in (4, 32, 256):
        e = []
        for seed in range(2):
            r = hlsm.fit(case_control_layers(S, m, random_state=seed), 3.0, random_state=0, sparse=True,
                         sociality=None)
            e.append((hlsm.procrustes_error(r.b, exact.b), np.abs(r.alpha - exact.alpha).max(),
                      nll_sparse(S, r.z, r.alpha) - exact.nll))
        errs.append(np.mean(e, axis=0))
    errs = np.array(errs)  # measured: position error 0.42, 0.12, 0.04; excess nll 6e3, 2.7e2, 22
    assert (np.diff(errs, axis=0) < 0).all()
    assert errs[-1, 0] < 0.25 * errs[0, 0] and errs[-1, 2] < 0.02 * errs[0, 2]
    assert errs[-1, 0] < 0.1 and errs[-1, 1] < 0.1
