"""Tests of SVD++ (fastgrad.mf.fit_svdpp): gradient, the epoch kernel against a NumPy
Surprise-style loop, the implicit item sets, accuracy against truth and Surprise, I/O, errors."""
import math

import numba
import numpy as np
import pytest

from fastgrad import mf
from fastgrad.kernels import (svdpp_implicit_csr, svdpp_implicit_sums, svdpp_rating_loss_grad,
                              svdpp_sgd_epoch_blocked, svdpp_user_runs)


def _loss_np(r, mu, bu, bi, p, q, Y, N, reg, reg_bias):
    z = Y[N].sum(0) / math.sqrt(len(N))
    e = r - (mu + bu + bi + q @ (p + z))
    return e * e + reg * (p @ p + q @ q + (Y[N] ** 2).sum()) + reg_bias * (bu * bu + bi * bi)


def test_rating_gradient_matches_finite_differences_and_numpy(rng):
    k, ni = 4, 9
    p, q = rng.normal(0, 0.5, k), rng.normal(0, 0.5, k)
    Y = rng.normal(0, 0.5, (ni, k))
    N = np.array([0, 2, 3, 7], dtype=np.int64)
    r, mu, bu, bi, reg, rb = 4.0, 3.2, 0.3, -0.2, 0.05, 0.07
    gp, gq, gy = np.empty(k), np.empty(k), np.empty((len(N), k))
    f, dbu, dbi = svdpp_rating_loss_grad(r, mu, bu, bi, p, q, Y, N, reg, rb, gp, gq, gy)
    assert f == pytest.approx(_loss_np(r, mu, bu, bi, p, q, Y, N, reg, rb), rel=1e-13)
    h = 1e-6

    def fd(fun, x):
        g = np.empty_like(x)
        for idx in np.ndindex(x.shape):
            x0 = x[idx]
            x[idx] = x0 + h
            fp = fun()
            x[idx] = x0 - h
            fm = fun()
            x[idx] = x0
            g[idx] = (fp - fm) / (2 * h)
        return g

    loss = lambda: _loss_np(r, mu, bu, bi, p, q, Y, N, reg, rb)  # noqa: E731
    np.testing.assert_allclose(gp, fd(loss, p), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gq, fd(loss, q), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gy, fd(loss, Y)[N], rtol=1e-6, atol=1e-8)
    assert fd(loss, Y)[[1, 4, 5, 6, 8]] == pytest.approx(0.0, abs=1e-9)   # items outside N(u)
    b = np.array([bu])
    dbu_fd = fd(lambda: _loss_np(r, mu, b[0], bi, p, q, Y, N, reg, rb), b)[0]
    assert dbu == pytest.approx(dbu_fd, rel=1e-6)
    # independent closed form
    z = Y[N].sum(0) / 2.0
    e = r - (mu + bu + bi + q @ (p + z))
    np.testing.assert_allclose(gq, -2 * e * (p + z) + 2 * reg * q, rtol=1e-12)
    np.testing.assert_allclose(gy, -2 * e * q / 2.0 + 2 * reg * Y[N], rtol=1e-12)
    assert dbi == pytest.approx(-2 * e + 2 * rb * bi, rel=1e-12)


def _surprise_loop(uu, ii, rr, N, mu, bu, bi, P, Q, Y, lr, reg, rb):
    """scikit-surprise SVDpp's per-rating steps (its cython loop, written in NumPy)."""
    for u, i, r in zip(uu, ii, rr):
        s = math.sqrt(len(N[u]))
        z = Y[N[u]].sum(0) / s
        e = r - (mu + bu[u] + bi[i] + Q[i] @ (P[u] + z))
        bu[u] += lr * (e - rb * bu[u])
        bi[i] += lr * (e - rb * bi[i])
        pu, qi = P[u].copy(), Q[i].copy()
        P[u] += lr * (e * qi - reg * pu)
        Q[i] += lr * (e * (pu + z) - reg * qi)
        Y[N[u]] += lr * (e * qi / s - reg * Y[N[u]])


def test_serial_epoch_is_surprises_loop_with_implicit_items(rng):
    nu, ni, k, n = 6, 10, 3, 30
    cells = rng.choice(nu * ni, n, replace=False)
    uu, ii, rr = (cells // ni).astype(np.int32), (cells % ni).astype(np.int32), rng.uniform(1, 5, n)
    # implicit-only pairs: items that join N(u) without a rating (item 9 has no rating at all)
    extra_u = np.array([0, 0, 3, 5], dtype=np.int32)
    extra_i = np.array([9, int(ii[uu == 1][0]), 9, 4], dtype=np.int32)
    keep = ~np.isin(extra_u * ni + extra_i, cells)
    eu, ei = extra_u[keep], extra_i[keep]
    indptr, indices, _, _, inv = svdpp_implicit_csr(np.concatenate([uu, eu]), np.concatenate([ii, ei]),
                                                    nu, ni)
    N = [indices[indptr[u]:indptr[u + 1]] for u in range(nu)]
    assert 9 in N[0] and 9 in N[3]
    for u in range(nu):
        assert set(N[u]) == set(ii[uu == u]) | set(ei[eu == u])
    mu, lr, reg, rb = 3.0, 0.05, 0.1, 0.03
    P, Q, Y = (rng.normal(0, 0.3, (m, k)) for m in (nu, ni, ni))
    bu, bi = rng.normal(0, 0.1, nu), rng.normal(0, 0.1, ni)
    ref = [x.copy() for x in (bu, bi, P, Q, Y)]
    u2, i2, r2 = uu.copy(), ii.copy(), rr.copy()
    block_ptr = np.array([0, n], dtype=np.int64)
    run_ptr, cell_run_ptr = svdpp_user_runs(u2, i2, r2, block_ptr, 1, np.array([0, nu]))
    assert np.all(np.diff(u2) >= 0)                                  # grouped by user
    D, A = np.empty((1, ni)), np.empty((1, ni, k))
    for epoch in range(3):
        sse = svdpp_sgd_epoch_blocked(u2, i2, r2, block_ptr, run_ptr, cell_run_ptr, 1,
                                      np.zeros(1, dtype=np.int64), -1, mu, bu, bi, P, Q, Y,
                                      indptr, indices, inv, D, A, lr, reg, rb)
        _surprise_loop(u2, i2, r2, N, mu, *ref, lr, reg, rb)
    for got, want in zip((bu, bi, P, Q, Y), ref):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)
    assert np.isfinite(sse)
    Z = np.empty((nu, k))
    svdpp_implicit_sums(indptr, indices, Y, Z)
    np.testing.assert_allclose(Z, [Y[N[u]].sum(0) / math.sqrt(len(N[u])) for u in range(nu)])


@pytest.fixture(scope="module")
def sim():
    u, i, r, truth = mf.simulate(300, 200, 30_000, n_factors=3, noise=0.3, random_state=0)
    test = np.arange(r.size) >= 27_000
    return u, i, r, test, truth


def test_reaches_noise_level_on_low_rank_data(sim):
    u, i, r, test, truth = sim
    m = mf.fit_svdpp(u[~test], i[~test], r[~test], n_epochs=40, random_state=0, n_threads=1)
    rmse = m.rmse(u[test], i[test], r[test])
    assert rmse < 1.12 * truth["noise"]
    assert m.rmse(u[~test], i[~test], r[~test]) < rmse
    # far better than the bias-only fit, i.e. the factors carry the signal
    base = mf.fit(u[~test], i[~test], r[~test], n_factors=1, init_std=0.0, random_state=0)
    assert rmse < 0.75 * base.rmse(u[test], i[test], r[test])


def test_predictions_use_each_users_full_item_set(sim):
    u, i, r, test, _ = sim
    tr = ~test
    m = mf.fit_svdpp(u[tr], i[tr], r[tr], n_epochs=3, random_state=1, n_threads=1,
                     implicit=(u[test], i[test]))
    rows_u, rows_i = m.user_index(u), m.item_index(i)
    for w in (0, 17, 250):
        nset = set(rows_i[rows_u == w].tolist())                 # train AND test items of w
        got = m.implicit_indices[m.implicit_indptr[w]:m.implicit_indptr[w + 1]]
        assert set(got.tolist()) == nset
    t = np.flatnonzero(test)[:50]
    uw, iw = rows_u[t], rows_i[t]
    pred = np.empty(t.size)
    for k, (a, b) in enumerate(zip(uw, iw)):
        N = m.implicit_indices[m.implicit_indptr[a]:m.implicit_indptr[a + 1]]
        z = m.Y[N].sum(0) / math.sqrt(len(N))
        pred[k] = m.mu + m.user_bias[a] + m.item_bias[b] + m.Q[b] @ (m.P[a] + z)
    np.testing.assert_allclose(m.predict(u[t], i[t]), pred, rtol=1e-12)
    m0 = mf.fit_svdpp(u[tr], i[tr], r[tr], n_epochs=3, random_state=1, n_threads=1)
    assert np.abs(m0.predict(u[t], i[t]) - m.predict(u[t], i[t])).max() > 1e-3


def test_implicit_only_users_and_items_get_rows():
    u = np.array([0, 0, 1, 1, 2, 2])
    i = np.array([10, 11, 10, 12, 11, 12])
    r = np.array([4.0, 3.0, 5.0, 2.0, 3.0, 4.0])
    m = mf.fit_svdpp(u, i, r, n_epochs=5, random_state=0, n_threads=1,
                     implicit=([7, 7, 0], [10, 99, 99]))
    assert m.n_users == 4 and m.n_items == 4
    w, j = m.user_index([7])[0], m.item_index([99])[0]
    assert np.all(m.P[w] == 0) and m.user_bias[w] == 0 and np.all(m.Q[j] == 0)
    z = m.Y[m.item_index([10, 99])].sum(0) / math.sqrt(2)
    assert m.predict([7], [11])[0] == pytest.approx(m.mu + m.item_bias[m.item_index([11])[0]]
                                                     + m.Q[m.item_index([11])[0]] @ z)


def test_parallel_fit_is_deterministic_and_thread_independent(sim):
    u, i, r, test, truth = sim
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 threads")
    a = mf.fit_svdpp(u, i, r, n_epochs=4, random_state=3, n_threads=2)
    b = mf.fit_svdpp(u, i, r, n_epochs=4, random_state=3, n_threads=2)
    c = mf.fit_svdpp(u, i, r, n_epochs=4, random_state=3, n_threads=1, n_blocks=2)
    assert a.params["n_blocks"] == 2
    for x in ("P", "Q", "Y", "user_bias", "item_bias"):
        np.testing.assert_array_equal(getattr(a, x), getattr(b, x))
        np.testing.assert_allclose(getattr(a, x), getattr(c, x), rtol=1e-9, atol=1e-12)
    s = mf.fit_svdpp(u, i, r, n_epochs=4, random_state=3, n_threads=1)
    assert abs(a.rmse(u, i, r) - s.rmse(u, i, r)) < 0.01


def test_matches_scikit_surprise_svdpp():
    surprise = pytest.importorskip("surprise")
    import pandas as pd
    from fastgrad.datasets import make_ratings
    u, i, r = make_ratings(200, 300, 8000, random_state=0)
    test = np.random.default_rng(1).random(r.size) < 0.2
    tr = ~test
    data = surprise.Dataset.load_from_df(pd.DataFrame({"u": u[tr], "i": i[tr], "r": r[tr]}),
                                         surprise.Reader(rating_scale=(1, 5)))
    algo = surprise.SVDpp(n_epochs=8, random_state=0)
    algo.fit(data.build_full_trainset())
    want = surprise.accuracy.rmse(algo.test(list(zip(u[test], i[test], r[test]))), verbose=False)
    m = mf.fit_svdpp(u[tr], i[tr], r[tr], n_epochs=8, rating_scale=(1, 5), random_state=0,
                     n_threads=1)
    assert abs(m.rmse(u[test], i[test], r[test]) - want) < 0.01


def test_unknown_ids_save_load_and_validation(tmp_path, sim):
    u, i, r, test, _ = sim
    m = mf.fit_svdpp(u[~test], i[~test], r[~test], n_epochs=3, random_state=0, n_threads=1,
                     validation=(u[test], i[test], r[test]), rating_scale=(-10, 10))
    assert m.val_rmse.shape == (3,) and m.val_rmse[-1] == pytest.approx(m.rmse(u[test], i[test], r[test]))
    k = m.item_index([i[0]])[0]
    w = m.user_index([u[0]])[0]
    assert m.predict([-5], [i[0]])[0] == pytest.approx(m.mu + m.item_bias[k])
    assert m.predict([u[0]], [-5])[0] == pytest.approx(m.mu + m.user_bias[w])
    path = tmp_path / "svdpp.npz"
    m.save(path)
    back = mf.load(path)
    assert isinstance(back, mf.SVDppModel)
    np.testing.assert_array_equal(back.predict(u[:100], i[:100]), m.predict(u[:100], i[:100]))
    assert back.rmse(u[test], i[test], r[test]) == m.rmse(u[test], i[test], r[test])
    assert m.loss(u[:500], i[:500], r[:500]) > m.rmse(u[:500], i[:500], r[:500]) ** 2
    with pytest.raises(NotImplementedError, match="partial_fit"):
        m.partial_fit(u[:5], i[:5], r[:5])


def test_bad_input():
    u, i, r = [0, 1, 1], [0, 0, 1], [3.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="lr \\* reg"):
        mf.fit_svdpp(u, i, r, lr=10.0, reg=0.2)
    with pytest.raises(TypeError, match="implicit"):
        mf.fit_svdpp(u, i, r, implicit=[1, 2, 3])
    with pytest.raises(ValueError, match="implicit"):
        mf.fit_svdpp(u, i, r, implicit=([1, 2], [3]))
    with pytest.raises(ValueError, match="n_factors"):
        mf.fit_svdpp(u, i, r, n_factors=0)
    with pytest.raises(ValueError, match="ratings"):
        mf.fit_svdpp(u, i, [3.0, np.nan, 4.0])
    with pytest.raises(ValueError, match="empty"):
        mf.fit_svdpp([], [], [])
    with pytest.raises(ValueError, match="diverged"):
        mf.fit_svdpp(np.arange(50) % 5, np.arange(50) % 7, np.full(50, 1e200), n_threads=1)


def test_cli_model_svdpp(tmp_path, capsys, ratings_file):
    from fastgrad.__main__ import main
    path = ratings_file("u.data", "\t")
    out = tmp_path / "out"
    code = main(["mf", str(path), "--model", "svdpp", "--n-epochs", "3", "--threads", "1",
                 "--test-size", "0.2", "--out", str(out), "--seed", "3"])
    assert code == 0
    text = capsys.readouterr().out
    assert len([ln for ln in text.splitlines() if ln.startswith("epoch")]) == 3
    model = mf.load(out / "mf_model.npz")
    assert isinstance(model, mf.SVDppModel) and model.n_factors == 20 and model.params["lr"] == 0.007
    rmse = float(text.split("[svdpp] test RMSE ")[1].split()[0])
    assert rmse == pytest.approx(model.val_rmse[-1], abs=1e-4)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_implicit_csr_against_numpy(dtype):
    # distinct pairs, sorted by user then item; by item, users increasing; |N(u)|^-1/2 (0 if
    # empty): with duplicate pairs, users and items without any pair, in arbitrary order
    rng = np.random.default_rng(11)
    nu, ni, n = 40, 30, 600
    users = rng.integers(0, nu - 3, n).astype(dtype)          # the last 3 users have no pair
    items = rng.integers(1, ni, n).astype(dtype)               # item 0 has none
    indptr, indices, item_ptr, item_users, inv = svdpp_implicit_csr(users, items, nu, ni)
    code = np.unique(users.astype(np.int64) * ni + items)
    pu, pi = code // ni, code % ni
    assert code.size < n                                      # duplicates were there
    np.testing.assert_array_equal(indptr, np.concatenate([[0], np.cumsum(np.bincount(pu, minlength=nu))]))
    np.testing.assert_array_equal(indices, pi)
    by_item = np.lexsort((pu, pi))
    np.testing.assert_array_equal(item_ptr, np.concatenate([[0], np.cumsum(np.bincount(pi, minlength=ni))]))
    np.testing.assert_array_equal(item_users, pu[by_item])
    cnt = np.bincount(pu, minlength=nu)
    np.testing.assert_allclose(inv, np.where(cnt > 0, 1 / np.sqrt(np.maximum(cnt, 1)), 0.0), rtol=1e-15)
