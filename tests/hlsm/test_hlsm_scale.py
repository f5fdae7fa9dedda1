"""HLSM at scale: per-node preconditioning and sparse input for every front-end function."""
import numpy as np
import pytest

from fastgrad import hlsm
from fastgrad.hlsm import _problem
from test_hlsm_fast import _sparse_layers  # tests/hlsm/ is on sys.path (no __init__.py)


def _kkt_residual(Y, res, lam, directed):
    """Max violation of the group-lasso optimality conditions (independent of the solver's scaling)."""
    _, gb, ge, ga = hlsm.nll_and_grad(Y, res.b, res.eps, res.alpha, directed=directed)
    norms = np.linalg.norm(res.eps, axis=-1)
    nz = norms > 0
    viol = np.zeros(ge.shape[:2])
    viol[nz] = np.linalg.norm(ge[nz] + lam * res.eps[nz] / norms[nz, None], axis=-1)
    viol[~nz] = np.maximum(np.linalg.norm(ge[~nz], axis=-1) - lam, 0.0)
    return max(viol.max(), np.abs(gb).max(), np.abs(ga).max())


@pytest.mark.parametrize("directed", [False, True])
def test_node_preconditioning_reaches_the_same_optimum(directed):
    # hubs and near-isolated nodes: a wide degree range is where per-node scaling acts
    Y, _ = hlsm.simulate(70, 2, directed=directed, missing=0.03, deviation_scale=2.0, random_state=11)
    lam = 2.0
    res = {}
    for pre in (False, True):
        res[pre] = hlsm.fit(Y, lam, directed=directed, random_state=0, tol=1e-12, gtol=1e-7, max_iter=20000,
                            sociality=None, solver_options={"node_precondition": pre})
        assert res[pre].converged
    r0, r1 = res[False], res[True]
    # the reported objective is the real penalised objective (penalty on unscaled eps)
    assert r1.objective == pytest.approx(hlsm.objective(Y, r1.b, r1.eps, r1.alpha, lam, directed=directed),
                                         rel=1e-12)
    assert r1.objective == pytest.approx(r0.objective, rel=1e-8)
    # layer positions and intercepts are identified (with K = 2 the split of z into b and eps
    # is not: any b between z_1 and z_2 costs the same penalty)
    assert hlsm.procrustes_error(r1.z.reshape(-1, 2), r0.z.reshape(-1, 2)) < 1e-3
    np.testing.assert_allclose(r1.alpha, r0.alpha, atol=1e-4)
    assert _kkt_residual(Y, r1, lam, directed) < 1e-2
    assert np.all(np.diff(r1.history) <= 1e-9 * abs(r1.history[0]))


def test_node_scales_follow_degrees():
    Y, _ = hlsm.simulate(50, 2, random_state=3)
    Yenc = hlsm.Layers(Y)
    s_b, s_e = _problem._node_scales(Yenc, False, smooth=0.05)
    deg = np.nansum(Y, axis=2)
    c = 0.05 * (deg.mean(axis=1, keepdims=True) + 1)
    ref = np.sqrt((deg + c) / (deg + c).mean(axis=1, keepdims=True))
    np.testing.assert_allclose(s_e, ref, rtol=1e-12)
    hb = (deg + c).sum(axis=0)
    np.testing.assert_allclose(s_b, np.sqrt(hb / hb.mean()), rtol=1e-12)
    # sparse encoding: same scales (directed: in + out ties in both encodings)
    from fastgrad.hlsm._sparse import encode_sparse
    for directed in (False, True):
        Yd, _ = hlsm.simulate(40, 2, directed=directed, random_state=5)
        a = _problem._node_scales(hlsm.Layers(Yd, directed=directed), directed)
        b = _problem._node_scales(encode_sparse(_sparse_layers(Yd), directed=directed), directed)
        for u, v in zip(a, b):
            np.testing.assert_allclose(u, v, rtol=1e-12)


def _no_dense(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("dense (K, n, n) encoding built for sparse input")
    from fastgrad.hlsm import _dense
    monkeypatch.setattr(_dense.DenseLayers, "from_encoded", boom)


@pytest.mark.parametrize("directed", [False, True])
def test_nll_and_grad_and_objective_accept_sparse(monkeypatch, directed):
    Y, truth = hlsm.simulate(60, 2, directed=directed, missing=0.05, random_state=8)
    f0, gb0, ge0, ga0 = hlsm.nll_and_grad(Y, truth.b, truth.eps, truth.alpha, directed=directed)
    o0 = hlsm.objective(Y, truth.b, truth.eps, truth.alpha, 1.5, directed=directed)
    layers = _sparse_layers(Y)
    _no_dense(monkeypatch)
    f1, gb1, ge1, ga1 = hlsm.nll_and_grad(layers, truth.b, truth.eps, truth.alpha, directed=directed)
    o1 = hlsm.objective(layers, truth.b, truth.eps, truth.alpha, 1.5, directed=directed)
    assert f1 == pytest.approx(f0, rel=1e-12)
    assert o1 == pytest.approx(o0, rel=1e-12)
    for u, v in ((gb1, gb0), (ge1, ge0), (ga1, ga0)):
        np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-9 * np.abs(v).max())


def test_lam_max_and_fit_path_accept_sparse(monkeypatch):
    Y, _ = hlsm.simulate(60, 2, random_state=9)
    lmax0, shared0 = hlsm.lam_max(Y, random_state=0, sociality=None)
    path0 = hlsm.fit_path(Y, n_lams=3, random_state=0, sociality=None)
    layers = _sparse_layers(Y)
    _no_dense(monkeypatch)
    lmax1, shared1 = hlsm.lam_max(layers, random_state=0, sociality=None)
    path1 = hlsm.fit_path(layers, n_lams=3, random_state=0, sociality=None)
    assert lmax1 == pytest.approx(lmax0, rel=1e-6)
    assert shared1.nll == pytest.approx(shared0.nll, rel=1e-9)
    np.testing.assert_allclose(path1.lams, path0.lams, rtol=1e-6)
    for r0, r1 in zip(path0.results, path1.results):
        assert r1.nll == pytest.approx(r0.nll, rel=1e-7)
        assert np.array_equal(r1.deviating, r0.deviating)
    np.testing.assert_allclose(path1.bic, path0.bic, rtol=1e-7)
