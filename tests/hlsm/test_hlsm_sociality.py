"""HLSM node effects (sociality, sender/receiver) and dyad covariates: gradients, recovery, prediction."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastgrad import hlsm
from fastgrad._gradcheck import numerical_gradient


# ----------------------------------------------------------------------------- NumPy reference

def numpy_ext(Y, z, alpha, so, ro, X, beta, directed):
    """Independent NumPy likelihood: full (K, n, n) arrays, explicit pair masks.

    eta_ijk = alpha_k + so_ik + ro_jk + sum_q beta_kq X_qij - ||z_ik - z_jk||^2.
    Returns nll and gradients in z, alpha, so, ro (separately), beta.
    """
    K, n, d = z.shape
    diff = z[:, :, None, :] - z[:, None, :, :]
    eta = (alpha[:, None, None] - (diff ** 2).sum(-1) + so[:, :, None] + ro[:, None, :]
           + np.einsum("kq,qij->kij", beta, X))
    obs = ~np.isnan(Y) & ~np.eye(n, dtype=bool)[None]
    if not directed:
        obs &= np.tril(np.ones((n, n), dtype=bool), -1)[None]
    y = np.nan_to_num(Y)
    nll = np.sum(np.where(obs, np.logaddexp(0.0, eta) - y * eta, 0.0))
    r = np.where(obs, 1.0 / (1.0 + np.exp(-eta)) - y, 0.0)
    gz = -2.0 * (r[..., None] * diff).sum(axis=2) + 2.0 * (r[..., None] * diff).sum(axis=1)
    return nll, gz, r.sum(axis=(1, 2)), r.sum(axis=2), r.sum(axis=1), np.einsum("kij,qij->kq", r, X)


def make(rng, directed, missing, n=11, K=3, d=2, p=2):
    Y, _ = hlsm.simulate(n, K, dim=d, directed=directed, missing=missing, random_state=int(rng.integers(1 << 30)))
    b = rng.standard_normal((n, d))
    eps = 0.5 * rng.standard_normal((K, n, d))
    alpha = rng.standard_normal(K)
    s, r = rng.standard_normal((K, n)), rng.standard_normal((K, n))
    X = rng.standard_normal((p, n, n))
    if not directed:
        X = X + X.transpose(0, 2, 1)
    for q in range(p):
        np.fill_diagonal(X[q], 0.0)
    beta = rng.standard_normal((K, p))
    return Y, b, eps, alpha, s, r, X, beta


def effects(directed, s, r):
    return dict(sender=s, receiver=r) if directed else dict(sociality=s)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("missing", [0.0, 0.25])
def test_gradient_matches_numpy_and_finite_differences(rng, directed, missing):
    Y, b, eps, alpha, s, r, X, beta = make(rng, directed, missing)
    r_ = r if directed else s
    eff = effects(directed, s, r)
    nll, gb, ge, ga, ext = hlsm.nll_and_grad(Y, b, eps, alpha, directed=directed, covariates=X, beta=beta, **eff)
    ref = numpy_ext(Y, b[None] + eps, alpha, s, r_, X, beta, directed)
    np.testing.assert_allclose(nll, ref[0], rtol=1e-12)
    np.testing.assert_allclose(ge, ref[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, ref[1].sum(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ga, ref[2], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ext["beta"], ref[5], rtol=1e-10, atol=1e-10)
    if directed:
        np.testing.assert_allclose(ext["sender"], ref[3], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ext["receiver"], ref[4], rtol=1e-10, atol=1e-10)
    else:  # g enters as sender and receiver
        np.testing.assert_allclose(ext["sociality"], ref[3] + ref[4], rtol=1e-10, atol=1e-10)

    def f(**kw):
        args = dict(b=b, eps=eps, alpha=alpha, beta=beta, **eff)
        args.update(kw)
        bb, ee, aa = args.pop("b"), args.pop("eps"), args.pop("alpha")
        return hlsm.nll_and_grad(Y, bb, ee, aa, directed=directed, covariates=X, **args)[0]
    np.testing.assert_allclose(numerical_gradient(lambda v: f(eps=v), eps), ge, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(numerical_gradient(lambda v: f(beta=v), beta), ext["beta"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(numerical_gradient(lambda v: f(alpha=v), alpha), ga, rtol=1e-6, atol=1e-6)
    if directed:
        np.testing.assert_allclose(numerical_gradient(lambda v: f(sender=v), s), ext["sender"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(numerical_gradient(lambda v: f(receiver=v), r), ext["receiver"],
                                   rtol=1e-6, atol=1e-6)
    else:
        np.testing.assert_allclose(numerical_gradient(lambda v: f(sociality=v), s), ext["sociality"],
                                   rtol=1e-6, atol=1e-6)


def _sparse_layers(Y):
    return [sp.csr_matrix(np.where(np.isnan(Y[k]), np.nan, Y[k])) for k in range(Y.shape[0])]


@pytest.mark.parametrize("directed", [False, True])
def test_sparse_equals_dense_and_case_control_gradient(rng, directed):
    from fastgrad.hlsm._sparse import case_control_layers, encode_sparse, nll_grad_sparse_ext
    Y, b, eps, alpha, s, r, _, _ = make(rng, directed, 0.2, n=14)
    eff = effects(directed, s, r)
    dense = hlsm.nll_and_grad(Y, b, eps, alpha, directed=directed, **eff)
    sparse = hlsm.nll_and_grad(_sparse_layers(Y), b, eps, alpha, directed=directed, **eff)
    np.testing.assert_allclose(sparse[0], dense[0], rtol=1e-12)
    for a, c in zip(sparse[1:4], dense[1:4]):
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-10)
    for key in dense[4]:
        np.testing.assert_allclose(sparse[4][key], dense[4][key], rtol=1e-10, atol=1e-10)
    # case-control likelihood with node effects: its gradient equals finite differences of its value
    C = case_control_layers(encode_sparse(_sparse_layers(Y), directed=directed), 4, random_state=0)
    z = b[None] + eps
    rr = r if directed else s
    nll, gz, ga, gs, gr = nll_grad_sparse_ext(C, z, alpha, s, rr)
    val = lambda z_, a_, s_, r_: nll_grad_sparse_ext(C, z_, a_, s_, r_ if directed else s_, with_grad=False)[0]  # noqa
    np.testing.assert_allclose(numerical_gradient(lambda v: val(v, alpha, s, rr), z), gz, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(numerical_gradient(lambda v: val(z, v, s, rr), alpha), ga, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(numerical_gradient(lambda v: val(z, alpha, v, rr), s),
                               gs if directed else gs, rtol=1e-6, atol=1e-6)
    if directed:
        np.testing.assert_allclose(numerical_gradient(lambda v: val(z, alpha, s, v), r), gr, rtol=1e-6, atol=1e-6)
    # with many controls the case-control value approaches the exact one
    C_big = case_control_layers(encode_sparse(_sparse_layers(Y), directed=directed), 4000, random_state=1)
    exact = nll_grad_sparse_ext(encode_sparse(_sparse_layers(Y), directed=directed), z, alpha, s, rr,
                                with_grad=False)[0]
    assert abs(val(z, alpha, s, rr) - exact) > abs(nll_grad_sparse_ext(C_big, z, alpha, s, rr,
                                                                        with_grad=False)[0] - exact)


# ----------------------------------------------------------------------------- fitting

@pytest.fixture(scope="module")
def sim_effects():
    rng = np.random.default_rng(5)
    n, K = 80, 3
    X = hlsm.dyad_covariates(rng.integers(0, 2, n), kind="same")
    beta = np.array([[1.0], [-0.5], [0.0]])
    Y, truth = hlsm.simulate(n, K, sociality=0.8, covariates=X, beta=beta, random_state=3,
                             alpha=[1.0, 1.5, 2.0])
    return Y, truth, X


def test_fit_recovers_sociality_covariates_and_deviations(sim_effects):
    Y, truth, X = sim_effects
    res = hlsm.fit(Y, 10.0, covariates=X, random_state=0)
    assert res.sociality_mode == "layer" and res.sociality.shape == (3, 80)
    err_g = np.sqrt(np.mean((res.sociality - truth.sociality) ** 2))
    err_beta = np.abs(res.beta - truth.beta).max()
    # measured at writing: sociality RMS error 0.46 (true sd 0.8; 79 dyads per effect, and
    # part of a node's degree is explained by a central position instead), beta error 0.15
    assert err_g < 0.55, err_g
    assert err_beta < 0.25, err_beta
    assert np.corrcoef(res.sociality.ravel(), truth.sociality.ravel())[0, 1] > 0.8
    dev = res.deviating
    tp, fp = int((dev & truth.deviating).sum()), int((dev & ~truth.deviating).sum())
    assert tp >= 16 and fp <= 12, (tp, fp)   # 27 true deviating groups (layer 0); at writing tp 19, fp 8
    assert hlsm.procrustes_error(res.b, truth.b) < 0.35   # 0.26 at writing
    # held-out quality proxy: fitted probabilities close to the truth
    P, Pt = res.predict_proba(), truth.probabilities()
    off = ~np.eye(80, dtype=bool)
    rms = np.sqrt(np.mean((P - Pt)[:, off] ** 2))
    plain = hlsm.fit(Y, 10.0, random_state=0, sociality=None).predict_proba()
    assert rms < 0.1 and rms < np.sqrt(np.mean((plain - Pt)[:, off] ** 2))


def test_directed_fit_recovers_sender_receiver():
    Y, truth = hlsm.simulate(60, 2, directed=True, sociality=0.8, deviating_layers=(), random_state=2)
    res = hlsm.fit(Y, 1e3, directed=True, random_state=0)
    assert res.sociality is None and res.sender.shape == (2, 60)
    for est, tru in ((res.sender, truth.sender), (res.receiver, truth.receiver)):
        err = np.sqrt(np.mean((est - tru) ** 2))
        assert err < 0.55, err   # measured at writing: 0.47 (sender), 0.37 (receiver); true sd 0.8
        assert np.corrcoef(est.ravel(), tru.ravel())[0, 1] > 0.75


def test_effects_are_centred_by_the_ridge_and_shared_mode():
    Y, truth = hlsm.simulate(40, 3, sociality=0.5, random_state=1)
    res = hlsm.fit(Y, 5.0, random_state=0)
    # the ridge puts each layer's mean effect into alpha
    assert np.abs(res.sociality.mean(axis=1)).max() < 1e-4
    sh = hlsm.fit(Y, 5.0, random_state=0, sociality="shared")
    assert np.all(sh.sociality == sh.sociality[0])
    none = hlsm.fit(Y, 5.0, random_state=0, sociality=None)
    assert none.sociality is None and res.df > none.df


def test_sociality_none_is_the_old_model_exactly():
    from fastgrad import datasets
    old = 1445.3100147655  # the model without node effects before they existed (commit bc7507a)
    # by the solver of then (proximal gradient alone) ...
    plain = hlsm.fit(datasets.load_aucs(), 10.0, random_state=0, sociality=None,
                     solver_options={"quasi_newton": False})
    assert plain.objective == pytest.approx(old, rel=1e-9)
    # ... and by today's L-BFGS rounds: the same optimum, reached a little more closely
    res = hlsm.fit(datasets.load_aucs(), 10.0, random_state=0, sociality=None)
    assert res.objective == pytest.approx(old, rel=1e-8) and res.objective <= old
    assert res.sociality is None and res.beta is None


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("as_sparse", [False, True])
def test_hidden_pair_never_influences_the_fit(directed, as_sparse):
    Y, _ = hlsm.simulate(25, 2, directed=directed, random_state=4)
    Y0, Y1 = Y.copy(), Y.copy()
    k, i, j = 1, 3, 7
    for A, v in ((Y0, 0.0), (Y1, 1.0)):     # the hidden dyad's value differs before hiding
        A[k, i, j] = v
        if not directed:
            A[k, j, i] = v
    fits = []
    for A in (Y0, Y1):
        A = A.copy()
        A[k, i, j] = np.nan
        if not directed:
            A[k, j, i] = np.nan
        data = _sparse_layers(A) if as_sparse else A
        fits.append(hlsm.fit(data, 2.0, directed=directed, random_state=0, sparse=as_sparse))
    a, b = fits
    assert np.array_equal(a.z, b.z) and np.array_equal(a.alpha, b.alpha)
    eff = (a.sender, b.sender) if directed else (a.sociality, b.sociality)
    assert np.array_equal(*eff)


@pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")
def test_predict_proba_pairs_includes_effects_and_covariates(sim_effects):
    Y, truth, X = sim_effects
    res = hlsm.fit(Y, 1e3, covariates=X, random_state=0, max_iter=50)
    P = res.predict_proba()
    rng = np.random.default_rng(0)
    k, i, j = rng.integers(0, 3, 50), rng.integers(0, 80, 50), rng.integers(0, 80, 50)
    np.testing.assert_allclose(res.predict_proba((k, i, j)), P[k, i, j], rtol=1e-12, atol=1e-15)
    # an independent formula
    z = res.z
    eta = (res.alpha[k] + res.sociality[k, i] + res.sociality[k, j] + res.beta[k, 0] * X[0, i, j]
           - ((z[k, i] - z[k, j]) ** 2).sum(-1))
    expect = np.where(i == j, 0.0, 1.0 / (1.0 + np.exp(-eta)))
    np.testing.assert_allclose(res.predict_proba((k, i, j)), expect, rtol=1e-10, atol=1e-15)
    assert res.predict_proba((np.array([], int),) * 3).shape == (0,)


def test_dyad_covariates_kinds():
    a = np.array([1.0, 4.0, 2.0])
    np.testing.assert_array_equal(hlsm.dyad_covariates(a)[0], [[0, 3, 1], [3, 0, 2], [1, 2, 0]])
    np.testing.assert_array_equal(hlsm.dyad_covariates(a, kind="sum")[0], [[0, 5, 3], [5, 0, 6], [3, 6, 0]])
    X = hlsm.dyad_covariates(np.c_[a, [0, 1, 0]], kind=["absdiff", "same"])
    assert X.shape == (2, 3, 3) and X[1, 0, 2] == 1 and X[1, 0, 1] == 0
    with pytest.raises(ValueError, match="kind"):
        hlsm.dyad_covariates(a, kind="product")
    with pytest.raises(TypeError, match="numeric"):
        hlsm.dyad_covariates(["x", "y", "z"], kind="sum")
    with pytest.raises(ValueError, match="kinds"):
        hlsm.dyad_covariates(np.c_[a, a], kind=["same"])


@pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")
def test_bad_input_is_refused_clearly():
    Y, _ = hlsm.simulate(12, 2, random_state=0)
    with pytest.raises(ValueError, match="sociality"):
        hlsm.fit(Y, 1.0, sociality="node")
    with pytest.raises(ValueError, match="sociality_ridge"):
        hlsm.fit(Y, 1.0, sociality_ridge=-1.0)
    with pytest.raises(ValueError, match="covariates"):
        hlsm.fit(Y, 1.0, covariates=np.zeros((1, 11, 11)))
    asym = np.random.default_rng(0).random((1, 12, 12))
    with pytest.raises(ValueError, match="symmetric"):
        hlsm.fit(Y, 1.0, covariates=asym)
    with pytest.raises(ValueError, match="NaN"):
        hlsm.fit(Y, 1.0, covariates=np.full((1, 12, 12), np.nan))
    with pytest.raises(TypeError, match="numeric"):
        hlsm.fit(Y, 1.0, covariates=np.full((1, 12, 12), "a"))
    with pytest.raises(ValueError, match="dense"):
        hlsm.fit(_sparse_layers(Y), 1.0, sparse=True, covariates=np.zeros((1, 12, 12)))
    res = hlsm.fit(Y, 1.0, random_state=0, max_iter=5)
    with pytest.raises(TypeError, match="pairs"):
        res.predict_proba([0, 1])
    with pytest.raises(ValueError, match="outside"):
        res.predict_proba((np.array([0]), np.array([12]), np.array([0])))
    with pytest.raises(TypeError, match="integer"):
        res.predict_proba((np.array([0.0]), np.array([1]), np.array([0])))
    with pytest.raises(ValueError, match="sender"):
        hlsm.nll_and_grad(Y, res.b, res.eps, res.alpha, sender=res.sociality, receiver=res.sociality)
    with pytest.raises(ValueError, match="together"):
        hlsm.nll_and_grad(Y, res.b, res.eps, res.alpha, covariates=np.zeros((1, 12, 12)))


@pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")
def test_plot_sizes_nodes_by_effects(tmp_path):
    pytest.importorskip("matplotlib")
    Y, _ = hlsm.simulate(20, 2, sociality=1.0, random_state=0)
    res = hlsm.fit(Y, 3.0, random_state=0, max_iter=50)
    fig = res.plot(path=tmp_path / "p.png")
    sizes = fig.axes[0].collections[1].get_sizes()   # the hollow markers of every node
    np.testing.assert_allclose(sizes, np.clip(22 * np.exp(res.sociality[0]), 4, 200))
    assert (tmp_path / "p.png").stat().st_size > 0
    with pytest.raises(ValueError, match="size_by"):
        res.plot(size_by="sender")
    none = hlsm.fit(Y, 3.0, random_state=0, max_iter=50, sociality=None)
    none.plot(size_by=None)
