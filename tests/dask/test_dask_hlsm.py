"""HLSM with row blocks on Dask workers (fastgrad.dask.fit_hlsm) against the local fit."""
import warnings

import numpy as np
import pytest
from numba import njit

pytest.importorskip("distributed")

import fastgrad  # noqa: E402
from fastgrad import hlsm  # noqa: E402
from fastgrad._threads import threads_for  # noqa: E402
# the worker killers (the cluster fixtures are in conftest.py)
from test_dask_mf import dying_once, kill_worker_at  # noqa: E402


@pytest.fixture(scope="module")
def net():
    Y, _ = hlsm.simulate(60, 3, missing=0.05, random_state=1)
    return Y


def _params(rng, K, n, d=2):
    return rng.normal(size=(n, d)), 0.3 * rng.normal(size=(K, n, d)), rng.normal(size=K)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("effects", [False, True])
def test_row_blocks_sum_to_the_full_likelihood(directed, effects, rng):
    from fastgrad.dask._hlsm import hlsm_nll_grad_rows, row_blocks
    K, n = 2, 50
    Y, _ = hlsm.simulate(n, K, missing=0.1, directed=directed, random_state=3)
    Yenc = hlsm.encode_layers(Y, directed=directed)
    b, eps, alpha = _params(rng, K, n)
    so = 0.5 * rng.normal(size=(K, n)) if effects else np.zeros((K, n))
    ro = (0.5 * rng.normal(size=(K, n)) if directed else so) if effects else np.zeros((K, n))
    kw = {}
    if effects:
        kw = dict(sender=so, receiver=ro) if directed else dict(sociality=so)
    ref = hlsm.nll_and_grad(Y, b, eps, alpha, directed=directed, **kw)  # the local kernels
    nll, ge, ga = ref[0], ref[2], ref[3]
    z = b[None] + eps
    bounds = row_blocks(n, 3, directed)
    assert bounds[0] == 0 and bounds[-1] == n and len(bounds) == 4
    tot, G, GA, GS, GR = 0.0, np.zeros_like(z), np.zeros(K), np.zeros((K, n)), np.zeros((K, n))
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        g, a, gs, gr = np.empty_like(z), np.empty(K), np.empty((K, n)), np.empty((K, n))
        Yr = np.ascontiguousarray(Yenc[:, lo:hi])
        part = hlsm_nll_grad_rows(Yr, lo, z, alpha, so, ro, directed, True, g, a, gs, gr)
        assert part == pytest.approx(hlsm_nll_grad_rows(Yr, lo, z, alpha, so, ro, directed, False, g, a, gs, gr),
                                     rel=1e-14)
        tot, G, GA, GS, GR = tot + part, G + g, GA + a, GS + gs, GR + gr
    assert tot == pytest.approx(nll, rel=1e-12)
    np.testing.assert_allclose(G, ge, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(GA, ga, rtol=1e-12)
    if effects and directed:
        np.testing.assert_allclose(GS, ref[4]["sender"], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(GR, ref[4]["receiver"], rtol=1e-10, atol=1e-10)
    elif effects:
        np.testing.assert_allclose(GS + GR, ref[4]["sociality"], rtol=1e-10, atol=1e-10)
    # and against central differences of the row kernel itself (one block), in z and in the effects
    lo, hi = bounds[1], bounds[2]
    Yr = np.ascontiguousarray(Yenc[:, lo:hi])
    g, a, gs, gr = np.empty_like(z), np.empty(K), np.empty((K, n)), np.empty((K, n))
    hlsm_nll_grad_rows(Yr, lo, z, alpha, so, ro, directed, True, g, a, gs, gr)

    def f(x):
        zz = x[:z.size].reshape(z.shape)
        s2, r2 = x[z.size:z.size + K * n].reshape(K, n), x[z.size + K * n:].reshape(K, n)
        return hlsm_nll_grad_rows(Yr, lo, zz, alpha, s2, r2, directed, False, np.empty_like(z), np.empty(K),
                                  np.empty((K, n)), np.empty((K, n)))
    x0 = np.concatenate([z.ravel(), so.ravel(), ro.ravel()])
    analytic = np.concatenate([g.ravel(), gs.ravel(), gr.ravel()])
    with threads_for(0):            # tiny kernel calls: no parallel launches
        ok, err, _ = fastgrad.gradcheck(f, x0, lambda x: analytic, rtol=1e-5, atol=1e-6)
    assert ok, err


def test_row_kernel_callable_from_user_njit(rng):
    from fastgrad.dask._hlsm import hlsm_nll_grad_rows
    Y, _ = hlsm.simulate(20, 1, random_state=0)
    Yenc = hlsm.encode_layers(Y)
    b, eps, alpha = _params(rng, 1, 20)
    z = b[None] + eps

    @njit
    def user(Yenc, z, alpha):
        g = np.empty_like(z)
        a = np.empty_like(alpha)
        K, n = z.shape[0], z.shape[1]
        zero = np.zeros((K, n))
        return hlsm_nll_grad_rows(Yenc, 0, z, alpha, zero, zero, False, True, g, a, np.empty((K, n)),
                                  np.empty((K, n)))

    assert user(Yenc, z, alpha) == pytest.approx(hlsm.nll_and_grad(Y, b, eps, alpha)[0], rel=1e-12)


def test_fit_equals_local_fit_at_convergence(live, net):
    from fastgrad.dask import fit_hlsm
    kw = dict(random_state=0, tol=1e-6, gtol=1e-3)
    local = hlsm.fit(net, 3.0, **kw, sociality=None)
    stats = {}
    dist = fit_hlsm(live, net, 3.0, stats=stats, **kw, sociality=None)
    assert local.converged and dist.converged
    assert dist.objective == pytest.approx(local.objective, rel=1e-9)
    np.testing.assert_allclose(dist.z, local.z, atol=1e-6)
    np.testing.assert_allclose(dist.alpha, local.alpha, atol=1e-6)
    np.testing.assert_array_equal(dist.deviating, local.deviating)
    assert stats["grad_calls"] >= dist.n_iter and stats["recoveries"] == 0
    assert stats["bytes_scattered"] > hlsm.encode_layers(net).nbytes      # Y sent once ...
    z_bytes = net.shape[0] * net.shape[1] * 2 * 8
    assert stats["bytes_out"] < 2 * 2 * z_bytes * stats["calls"]           # ... then positions only


@pytest.mark.parametrize("directed", [False, True])
def test_default_model_with_node_effects_fits_on_dask(live, directed):
    from fastgrad.dask import fit_hlsm
    Y, _ = hlsm.simulate(40, 2, directed=directed, missing=0.05, random_state=5)
    kw = dict(directed=directed, random_state=0, tol=1e-7, gtol=1e-4, max_iter=3000)
    local = hlsm.fit(Y, 2.0, **kw)                 # default sociality="layer"
    dist = fit_hlsm(live, Y, 2.0, **kw)
    assert local.converged and dist.converged
    assert dist.objective == pytest.approx(local.objective, rel=1e-8)
    np.testing.assert_allclose(dist.z, local.z, atol=1e-4)
    if directed:
        np.testing.assert_allclose(dist.sender, local.sender, atol=1e-4)
    else:
        np.testing.assert_allclose(dist.sociality, local.sociality, atol=1e-4)
    with pytest.raises(ValueError, match="covariates are not available with a Dask client"):
        fit_hlsm(live, Y, 2.0, directed=directed, covariates=hlsm.dyad_covariates(np.arange(40.0)))


def test_directed_fit_and_row_blocks_on_distinct_workers(live):
    from fastgrad.dask import fit_hlsm
    from fastgrad.dask._hlsm import DaskHLSMEvaluator
    Y, _ = hlsm.simulate(40, 2, directed=True, random_state=2)
    kw = dict(directed=True, random_state=0, max_iter=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgrad.ConvergenceWarning)
        local = hlsm.fit(Y, 2.0, **kw, sociality=None)
        dist = fit_hlsm(live, Y, 2.0, **kw, sociality=None)
    assert dist.n_iter == local.n_iter == 40
    assert dist.objective == pytest.approx(local.objective, rel=1e-10)
    np.testing.assert_allclose(dist.z, local.z, atol=1e-8)
    ev = DaskHLSMEvaluator(live, hlsm.encode_layers(Y, directed=True), True)
    nll = ev.nll(local.z, local.alpha)                        # the first call scatters the blocks
    assert nll == pytest.approx(local.nll, rel=1e-12)
    holders = live.who_has([f for _, futs in ev.blocks for f in futs])
    assert len(ev.blocks) == 2 and len({w for ws in holders.values() for w in ws}) == 2


def test_row_blocks_in_pieces_give_the_same_gradient(live, net, rng, monkeypatch):
    from fastgrad.dask import _hlsm
    Yenc = hlsm.encode_layers(net)
    b, eps, alpha = _params(rng, 3, 60)
    nll, _, ge, ga = hlsm.nll_and_grad(net, b, eps, alpha)
    monkeypatch.setattr(_hlsm, "_PIECE_BYTES", 3 * 60 * 7)    # 7 rows per piece
    stats = {}
    ev = _hlsm.DaskHLSMEvaluator(live, Yenc, False, stats=stats)
    got = ev.nll_grad(b[None] + eps, alpha)
    assert sum(len(futs) for _, futs in ev.blocks) >= 8 and len(ev.blocks) == 2
    assert got[0] == pytest.approx(nll, rel=1e-12)
    np.testing.assert_allclose(got[1], ge, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got[2], ga, rtol=1e-12)
    # one partial result per worker comes back, whatever the number of pieces
    assert stats["bytes_in"] < 2 * (ge.nbytes + 1000)
    ev.close()


def test_worker_killed_mid_fit_is_recovered(fresh, net):
    from fastgrad.dask import fit_hlsm
    kw = dict(random_state=0, max_iter=30)
    stats = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgrad.ConvergenceWarning)
        local = hlsm.fit(net, 3.0, **kw, sociality=None)
        dist = fit_hlsm(fresh, net, 3.0, stats=stats, callback=kill_worker_at(fresh, 10), **kw, sociality=None)
    assert stats["recoveries"] >= 1
    assert dist.n_iter == local.n_iter
    assert dist.objective == pytest.approx(local.objective, rel=1e-10)
    np.testing.assert_allclose(dist.z, local.z, atol=1e-8)


def test_worker_killed_inside_an_evaluation_is_recovered(fresh, net, tmp_path, monkeypatch):
    """A likelihood task of iteration 6 kills its own worker: the evaluation is repeated."""
    import os

    from fastgrad.dask import _hlsm, fit_hlsm
    flag = str(tmp_path / "kill")
    monkeypatch.setattr(_hlsm, "_part_nll_grad", dying_once(_hlsm._part_nll_grad, flag))
    kw = dict(random_state=0, max_iter=15)
    stats = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgrad.ConvergenceWarning)
        local = hlsm.fit(net, 3.0, **kw, sociality=None)
        dist = fit_hlsm(fresh, net, 3.0, stats=stats, callback=lambda it, st: it == 5 and open(flag, "w").close(),
                        **kw, sociality=None)
    assert not os.path.exists(flag) and stats["recoveries"] >= 1
    assert dist.objective == pytest.approx(local.objective, rel=1e-10)
    np.testing.assert_allclose(dist.z, local.z, atol=1e-8)


def test_worker_killed_without_retries_raises_clear_error(fresh, net):
    from fastgrad.dask import WorkerLostError, fit_hlsm
    with pytest.raises(WorkerLostError, match="no model is returned"):
        fit_hlsm(fresh, net, 3.0, random_state=0, max_iter=30, max_retries=0, callback=kill_worker_at(fresh, 5), sociality=None)


def test_bad_input(live, net):
    import scipy.sparse as sp

    from fastgrad.dask import fit_hlsm
    with pytest.raises(TypeError, match="client"):
        fit_hlsm(object(), net, 1.0, sociality=None)
    bad = net.copy()
    bad[0, 1, 2] = bad[0, 2, 1] = 2.0
    with pytest.raises(ValueError, match="entries other than 0, 1 or NaN"):
        fit_hlsm(live, bad, 1.0, sociality=None)
    layers = [sp.csr_matrix(np.nan_to_num(A)) for A in net]
    with pytest.raises(ValueError, match="dense layers"):
        fit_hlsm(live, layers, 1.0, sparse=True, sociality=None)
    with pytest.raises(ValueError, match="max_retries"):
        fit_hlsm(live, net, 1.0, max_retries=-1, sociality=None)
