"""Every public hlsm function on data with missing dyads: directed and undirected, dense and sparse.

References are independent: the likelihood and gradient written with NumPy
broadcasting over the observed dyads only, finite differences, and the
group-lasso optimality condition for lam_max.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from fastgrad import hlsm

N, K = 24, 2
pytestmark = pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")


def _data(directed, seed=0, missing=0.15):
    Y, truth = hlsm.simulate(N, K, missing=missing, directed=directed, random_state=seed)
    assert np.isnan(Y).any()
    return Y, truth


def _sparse(Y):
    """scipy.sparse layers storing ties as 1 and missing dyads as NaN (zeros not stored)."""
    out = []
    for A in Y:
        r, c = np.nonzero((A == 1) | np.isnan(A))
        out.append(sp.csr_matrix((A[r, c], (r, c)), shape=A.shape))
    return out


def _forms(Y):
    return {"dense": Y, "sparse": _sparse(Y)}


def numpy_nll_grad(Y, b, eps, alpha, directed, res=None):
    """NumPy reference over observed off-diagonal dyads (NaN = missing); with ``res``, its
    sociality (or sender/receiver) effects are added to eta."""
    z = b[None] + eps
    n = z.shape[1]
    diff = z[:, :, None, :] - z[:, None, :, :]
    eta = alpha[:, None, None] - np.einsum("kijc,kijc->kij", diff, diff)
    if res is not None and getattr(res, "sociality", None) is not None:
        eta = eta + res.sociality[:, :, None] + res.sociality[:, None, :]
    elif res is not None and getattr(res, "sender", None) is not None:
        eta = eta + res.sender[:, :, None] + res.receiver[:, None, :]
    obs = ~np.isnan(Y) & ~np.eye(n, dtype=bool)[None]
    y = np.nan_to_num(Y)
    w = 1.0 if directed else 0.5
    nll = w * np.sum(np.where(obs, np.logaddexp(0.0, eta) - y * eta, 0.0))
    r = np.where(obs, 1.0 / (1.0 + np.exp(-eta)) - y, 0.0)
    rr = r + r.transpose(0, 2, 1) if directed else r
    gz = -2.0 * np.einsum("kij,kijc->kic", rr, diff)
    return nll, gz.sum(axis=0), gz, w * r.sum(axis=(1, 2))


def _params(rng, d=2):
    return rng.standard_normal((N, d)), 0.3 * rng.standard_normal((K, N, d)), rng.standard_normal(K)


@pytest.mark.parametrize("directed", [False, True])
def test_encode_layers_missing(directed):
    Y, _ = _data(directed)
    enc = hlsm.encode_layers(Y, directed=directed)
    off = ~np.eye(N, dtype=bool)[None].repeat(K, 0)
    np.testing.assert_array_equal(enc[off] == -1, np.isnan(Y)[off])
    np.testing.assert_array_equal(enc[off & ~np.isnan(Y)], Y[off & ~np.isnan(Y)])
    np.testing.assert_array_equal(hlsm.encode_layers(_sparse(Y), directed=directed), enc)
    if not directed:
        Yb = Y.copy()
        i, j = np.argwhere(np.isnan(Y[0]) & off[0])[0]
        Yb[0, i, j] = 0.0  # the NaN pattern must be symmetric too
        with pytest.raises(ValueError, match="not symmetric"):
            hlsm.encode_layers(Yb)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_nll_and_grad_and_objective_missing(directed, form):
    Y, _ = _data(directed)
    b, eps, alpha = _params(np.random.default_rng(1))
    ref = numpy_nll_grad(Y, b, eps, alpha, directed)
    got = hlsm.nll_and_grad(_forms(Y)[form], b, eps, alpha, directed=directed)
    np.testing.assert_allclose(got[0], ref[0], rtol=1e-10)
    for g, r in zip(got[1:], ref[1:]):
        np.testing.assert_allclose(g, r, rtol=1e-8, atol=1e-9)
    # finite differences in one deviation and one intercept
    h = 1e-6
    e2 = eps.copy()
    e2[1, 3, 0] += h
    fd = (numpy_nll_grad(Y, b, e2, alpha, directed)[0] - ref[0]) / h
    np.testing.assert_allclose(got[2][1, 3, 0], fd, rtol=1e-4, atol=1e-5)
    a2 = alpha.copy()
    a2[0] += h
    fd = (numpy_nll_grad(Y, b, eps, a2, directed)[0] - ref[0]) / h
    np.testing.assert_allclose(got[3][0], fd, rtol=1e-4, atol=1e-5)
    lam = 0.7
    pen = lam * np.linalg.norm(eps, axis=-1).sum()
    np.testing.assert_allclose(hlsm.objective(_forms(Y)[form], b, eps, alpha, lam, directed=directed),
                               ref[0] + pen, rtol=1e-10)


@pytest.mark.parametrize("directed", [False, True])
def test_fit_and_predict_proba_missing(directed):
    Y, _ = _data(directed)
    res = hlsm.fit(Y, 2.0, directed=directed, random_state=0, max_iter=3000)
    ref = numpy_nll_grad(Y, res.b, res.eps, res.alpha, directed, res)
    np.testing.assert_allclose(res.nll, ref[0], rtol=1e-9)
    obs = ~np.isnan(Y) & ~np.eye(N, dtype=bool)[None]
    assert res.n_obs == int(obs.sum()) // (1 if directed else 2)
    P = res.predict_proba()
    assert P.shape == (K, N, N) and np.isfinite(P).all()
    k, i, j = np.nonzero(np.isnan(Y))
    np.testing.assert_allclose(res.predict_proba(pairs=(k, i, j)), P[k, i, j], rtol=1e-9, atol=1e-12)
    # sparse input with the same NaN dyads gives the same fit
    res_s = hlsm.fit(_sparse(Y), 2.0, directed=directed, random_state=0, max_iter=3000, sparse=True)
    np.testing.assert_allclose(res_s.objective, res.objective, rtol=1e-6)
    np.testing.assert_allclose(res_s.predict_proba(), P, atol=2e-3)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_lam_max_and_fit_path_missing(directed, form):
    Y, _ = _data(directed)
    data = _forms(Y)[form]
    kw = dict(directed=directed, random_state=0, max_iter=2000)
    if form == "sparse":
        kw["sparse"] = True
    lmax, shared = hlsm.lam_max(data, **kw)
    assert (shared.eps == 0).all()
    # lam_max is the largest deviation-gradient norm at the shared fit (NumPy gradient)
    _, _, gz, ga = numpy_nll_grad(Y, shared.b, shared.eps, shared.alpha, directed, shared)
    np.testing.assert_allclose(lmax, np.linalg.norm(gz, axis=-1).max(), rtol=1e-6)
    np.testing.assert_allclose(ga, 0.0, atol=1e-3 * N)  # intercepts at their optimum
    path = hlsm.fit_path(data, n_lams=3, adaptive=True, **kw)
    assert len(path.results) == 3 and np.all(np.diff(path.lams) < 0)
    assert any(r is path.best for r in path.results)
    for r in path.results:
        np.testing.assert_allclose(r.nll, numpy_nll_grad(Y, r.b, r.eps, r.alpha, directed, r)[0], rtol=1e-8)
    plain = hlsm.fit_path(data, n_lams=2, lam_min_ratio=0.3, **kw)
    assert (plain.results[0].eps == 0).all() and plain.results[1].deviating.any()


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_holdout_fit_cv_and_scores_missing(directed, form):
    Y, _ = _data(directed)
    data = _forms(Y)[form]
    Y_train, test = hlsm.holdout_pairs(data, 0.1, directed=directed, random_state=0)
    assert not np.isnan(Y[test.k, test.i, test.j]).any()   # missing pairs are never held out
    np.testing.assert_array_equal(test.y, Y[test.k, test.i, test.j])
    dense_train = np.stack([A.toarray() for A in Y_train]) if form == "sparse" else Y_train
    assert np.isnan(dense_train[test.k, test.i, test.j]).all()
    assert np.isnan(dense_train).sum() == np.isnan(Y).sum() + len(test) * (1 if directed else 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = hlsm.fit(Y_train, 2.0, directed=directed, random_state=0, max_iter=500)
        s = hlsm.score_pairs(res, test)
    assert 0.5 < s["auc"] <= 1 and s["n_pairs"] == len(test)
    k, i, j = np.nonzero(np.isnan(Y) & ~np.eye(N, dtype=bool)[None])
    with pytest.raises(ValueError, match="missing"):
        hlsm.score_pairs(res, (k[:3], i[:3], j[:3]), Y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cv = hlsm.fit_cv(data, dims=(1,), lams=[1e9, 1.0], n_folds=2, directed=directed, random_state=0,
                         max_iter=300)
    ck, ci, cj = cv.pairs
    assert not np.isnan(Y[ck, ci, cj]).any()
    n_obs = int((~np.isnan(Y) & ~np.eye(N, dtype=bool)[None]).sum()) // (1 if directed else 2)
    assert ck.size == n_obs
    assert np.isfinite(cv.scores["auc"]).all()
