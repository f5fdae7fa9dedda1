"""Tests of biased matrix factorisation: kernels, fit, fold-in, I/O, loader and CLI."""
import numba
import numpy as np
import pytest
from numba import njit

import fastgrad
from fastgrad import mf
from fastgrad.mf._model import _numba_threads
from fastgrad.kernels import (mf_block_layout, mf_block_schedule, mf_error_sums, mf_normal_rows, mf_partition,
                              mf_penalty, mf_predict, mf_rating_loss_grad, mf_sgd_epoch,
                              mf_sgd_epoch_blocked, mf_sgd_epoch_masked, mf_sgd_step, mf_shuffle,
                              mf_shuffle_blocks, mf_stratum_blocks)

MAX_THREADS = numba.config.NUMBA_NUM_THREADS


def _params(rng, nu=7, ni=5, k=4):
    return (rng.normal(0, 0.3, nu), rng.normal(0, 0.3, ni),
            rng.normal(0, 0.5, (nu, k)), rng.normal(0, 0.5, (ni, k)))


def _small_data(rng, nu=7, ni=5, n=25):
    cells = rng.choice(nu * ni, n, replace=False)
    return cells // ni, cells % ni, rng.uniform(1, 5, n)


@pytest.fixture(scope="module")
def sim(simulated_split):
    """A low-rank simulated set with a fixed train/test split."""
    return simulated_split(300, 200, 30_000, 3, 0.3, 0, 27_000)


# ============================================================================ kernels
def test_rating_gradient_matches_central_differences(rng):
    """f = e^2 + reg(|p|^2+|q|^2) + reg_bias(bu^2+bi^2); its exact gradient (factor 2 included)."""
    k, r, mu, reg, reg_bias = 4, 4.0, 3.2, 0.07, 0.03
    x0 = rng.normal(0, 0.5, 2 + 2 * k)

    def loss(x):
        bu, bi, p, q = x[0], x[1], x[2:2 + k], x[2 + k:]
        e = r - (mu + bu + bi + p @ q)
        return e * e + reg * (p @ p + q @ q) + reg_bias * (bu * bu + bi * bi)

    gp, gq = np.empty(k), np.empty(k)
    f, gbu, gbi = mf_rating_loss_grad(r, mu, x0[0], x0[1], x0[2:2 + k], x0[2 + k:], reg, reg_bias, gp, gq)
    assert f == pytest.approx(loss(x0), rel=1e-12)
    analytic = np.concatenate([[gbu, gbi], gp, gq])
    ok, max_err, numeric = fastgrad.gradcheck(loss, x0, lambda x: analytic, rtol=1e-6, atol=1e-8)
    assert ok, max_err
    # the factor-2 convention: the analytic gradient is twice the "surprise" direction
    e = r - (mu + x0[0] + x0[1] + x0[2:2 + k] @ x0[2 + k:])
    assert gbu == pytest.approx(-2 * (e - reg_bias * x0[0]))


def test_sgd_step_descends_with_half_gradient_and_matches_numpy(rng):
    bu, bi, P, Q = _params(rng)
    u, i, r, mu, lr, reg, reg_bias = 3, 2, 4.5, 3.0, 0.05, 0.1, 0.2
    # NumPy reference of the DESIGN update rule (p_u uses q_i, q_i uses the OLD p_u)
    e = r - (mu + bu[u] + bi[i] + P[u] @ Q[i])
    ref_bu = bu[u] + lr * (e - reg_bias * bu[u])
    ref_bi = bi[i] + lr * (e - reg_bias * bi[i])
    ref_p = P[u] + lr * (e * Q[i] - reg * P[u])
    ref_q = Q[i] + lr * (e * P[u] - reg * Q[i])
    # ... which is theta - (lr/2) * exact gradient
    gp, gq = np.empty(P.shape[1]), np.empty(P.shape[1])
    f0, gbu, gbi = mf_rating_loss_grad(r, mu, bu[u], bi[i], P[u].copy(), Q[i].copy(), reg, reg_bias, gp, gq)
    np.testing.assert_allclose(ref_p, P[u] - lr / 2 * gp, rtol=1e-13)
    np.testing.assert_allclose(ref_q, Q[i] - lr / 2 * gq, rtol=1e-13)
    assert ref_bu == pytest.approx(bu[u] - lr / 2 * gbu, rel=1e-13)
    P0, Q0, bu0, bi0 = P.copy(), Q.copy(), bu.copy(), bi.copy()
    e2 = mf_sgd_step(u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias)
    assert e2 == pytest.approx(e * e, rel=1e-12)
    np.testing.assert_allclose(P[u], ref_p, rtol=1e-12)
    np.testing.assert_allclose(Q[i], ref_q, rtol=1e-12)
    assert bu[u] == pytest.approx(ref_bu, rel=1e-12) and bi[i] == pytest.approx(ref_bi, rel=1e-12)
    # other rows untouched; and a small step lowers this rating's loss
    mask = np.arange(len(bu)) != u
    np.testing.assert_array_equal(P[mask], P0[mask])
    np.testing.assert_array_equal(bu[mask], bu0[mask])
    others = np.arange(len(bi)) != i
    np.testing.assert_array_equal(Q[others], Q0[others])
    np.testing.assert_array_equal(bi[others], bi0[others])
    f1, _, _ = mf_rating_loss_grad(r, mu, bu[u], bi[i], P[u].copy(), Q[i].copy(), reg, reg_bias, gp, gq)
    assert f1 < f0


def test_epoch_matches_python_loop(rng, python_epoch):
    users, items, r = _small_data(rng)
    bu, bi, P, Q = _params(rng)
    ref = [a.copy() for a in (bu, bi, P, Q)]
    mu, lr, reg, rb = r.mean(), 0.03, 0.05, 0.01
    sse_ref = python_epoch(users, items, r, mu, *ref, lr, reg, rb)
    sse = mf_sgd_epoch(users, items, r, mu, bu, bi, P, Q, lr, reg, rb)
    assert sse == pytest.approx(sse_ref, rel=1e-12)
    for got, want in zip((bu, bi, P, Q), ref):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [3, 100])
def test_epoch_is_single_steps_in_order(dtype, k):
    # With 6 users and 5 items many neighbours share a row. An epoch must be exactly the
    # single steps (mf_sgd_step) in order, bit for bit, in both dtypes. Its running sum of
    # squared errors may fuse each e * e into a multiply-add (the steps return e * e
    # rounded), so the sums agree to rounding only.
    rng = np.random.default_rng(3)
    n = 400
    users, items = rng.integers(0, 6, n), rng.integers(0, 5, n)
    r = rng.uniform(1, 5, n)
    bu, bi = rng.normal(0, 0.3, 6).astype(dtype), rng.normal(0, 0.3, 5).astype(dtype)
    P, Q = rng.normal(0, 0.3, (6, k)).astype(dtype), rng.normal(0, 0.3, (5, k)).astype(dtype)
    ref = [a.copy() for a in (bu, bi, P, Q)]
    sse_ref = 0.0
    for t in range(n):
        sse_ref += mf_sgd_step(users[t], items[t], r[t], 3.0, *ref, 0.01, 0.05, 0.02)
    sse = mf_sgd_epoch(users, items, r, 3.0, bu, bi, P, Q, 0.01, 0.05, 0.02)
    assert sse == pytest.approx(sse_ref, rel=1e-14, abs=0)
    for got, want in zip((bu, bi, P, Q), ref):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("layout", ["same", "overlap", "reversed", "disjoint_views"])
def test_epoch_with_p_and_q_sharing_memory_is_single_steps_in_order(layout):
    # Users may pass factor arrays that share memory (views of one buffer). An epoch must
    # still be the single steps in order: bit for bit if P and Q do not overlap, up to
    # rounding if they do (the compiled epoch and the single steps may then contract
    # different multiply-adds).
    rng = np.random.default_rng(4)
    n, k = 300, 16
    views = {"same": lambda b: (b[:6], b[:6]),
             "overlap": lambda b: (b[:6], b[3:9]),           # Q's rows 0..2 are P's rows 3..5
             "reversed": lambda b: (b[5::-1], b[3:9]),       # negative stride, overlapping
             "disjoint_views": lambda b: (b[:6], b[6:])}     # one buffer, no shared byte
    buf = rng.normal(0, 0.3, (12, k))
    ref_buf = buf.copy()
    P, Q = views[layout](buf)
    Pr, Qr = views[layout](ref_buf)
    users, items = rng.integers(0, 6, n), rng.integers(0, 6, n)
    r = rng.uniform(1, 5, n)
    bu, bi = np.zeros(6), np.zeros(6)
    bur, bir = bu.copy(), bi.copy()
    sse_ref = sum(mf_sgd_step(users[t], items[t], r[t], 3.0, bur, bir, Pr, Qr, 0.01, 0.05, 0.02)
                  for t in range(n))
    sse = mf_sgd_epoch(users, items, r, 3.0, bu, bi, P, Q, 0.01, 0.05, 0.02)
    if layout == "disjoint_views":
        assert sse == sse_ref
        assert np.array_equal(buf, ref_buf) and np.array_equal(bu, bur) and np.array_equal(bi, bir)
    else:
        assert sse == pytest.approx(sse_ref, rel=1e-12)
        for got, want in ((buf, ref_buf), (bu, bur), (bi, bir)):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_blocked_epoch_with_one_block_equals_serial(rng):
    users, items, r = _small_data(rng)
    a = _params(rng)
    b = [x.copy() for x in a]
    s1 = mf_sgd_epoch(users, items, r, 3.0, *a, 0.02, 0.03, 0.04)
    s2 = mf_sgd_epoch_blocked(users, items, r, np.array([0, r.size]), 1, np.zeros(1, np.int64),
                              -1, 3.0, *b, 0.02, 0.03, 0.04)
    assert s1 == s2
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_blocked_epoch_shuffles_cells_like_shuffle_blocks(rng):
    users, items, r = _small_data(rng, 12, 10, 80)
    ub = mf_partition(np.bincount(users, minlength=12), 3, np.arange(12))
    ib = mf_partition(np.bincount(items, minlength=10), 3, np.arange(10))
    ptr, perm = mf_block_schedule(users, items, ub, ib, 3)
    strata = np.array([2, 0, 1])
    data1 = [users[perm], items[perm], r[perm]]
    data2 = [x.copy() for x in data1]
    a = _params(rng, 12, 10)
    b = [x.copy() for x in a]
    s1 = mf_sgd_epoch_blocked(*data1, ptr, 3, strata, 99, 3.0, *a, 0.02, 0.03, 0.04)
    mf_shuffle_blocks(*data2, ptr, 99)
    s2 = mf_sgd_epoch_blocked(*data2, ptr, 3, strata, -1, 3.0, *b, 0.02, 0.03, 0.04)
    assert s1 == s2
    for x, y in zip(a + tuple(data1), b + data2):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("B, strata", [(2, [1, 0]), (3, [2, 0, 1]), (3, [1, 1, 0, 2, 1]),
                                       (5, [4, 0, 3, 1, 2]), (5, [3])])
def test_blocked_epoch_equals_its_cells_one_after_another(rng, B, strata):
    """The parallel epoch is the cells of each stratum run serially, stratum after stratum
    (any stratum sequence, repeats included), bit for bit, on any number of threads."""
    nu, ni = 31, 23
    users, items, r = _small_data(rng, nu, ni, 400)
    ub = mf_partition(np.bincount(users, minlength=nu), B, rng.permutation(nu))
    ib = mf_partition(np.bincount(items, minlength=ni), B, rng.permutation(ni))
    ptr, perm = mf_block_schedule(users, items, ub, ib, B)
    du, di, dr = users[perm], items[perm], r[perm]
    start = _params(rng, nu, ni)
    want = [x.copy() for x in start]
    cell_sse = {}
    for s in strata:
        for w in range(B):
            c = mf_stratum_blocks(s, w, B)
            lo, hi = ptr[c], ptr[c + 1]
            cell_sse[c] = mf_sgd_epoch(du[lo:hi], di[lo:hi], dr[lo:hi], 3.0, *want, 0.02, 0.03, 0.04)
    want_sse = sum(cell_sse[c] for c in sorted(cell_sse))
    runs = []
    for n_threads in (1, 2, 1, 2):
        got = [x.copy() for x in start]
        with _numba_threads(n_threads):
            sse = mf_sgd_epoch_blocked(du, di, dr, ptr, B, np.array(strata, dtype=np.int64), -1, 3.0,
                                       *got, 0.02, 0.03, 0.04)
        # the running sums may differ in the last bit (an e*e fused into an add, or not)
        assert sse == pytest.approx(want_sse, rel=1e-14)
        for x, y in zip(got, want):
            np.testing.assert_array_equal(x, y)
        runs.append(sse)
    assert len(set(runs)) == 1                   # the same bits on 1 and 2 threads


@pytest.mark.parametrize("B", [2, 3, 5])
def test_schedule_strata_never_share_rows(rng, B):
    """The property that makes parallel SGD race-free, asserted on the real schedule."""
    nu, ni, n = 40, 30, 600
    users, items, _ = _small_data(rng, nu, ni, n)
    ub = mf_partition(np.bincount(users, minlength=nu), B, rng.permutation(nu))
    ib = mf_partition(np.bincount(items, minlength=ni), B, rng.permutation(ni))
    assert set(ub) == set(range(B)) and set(ib) == set(range(B))
    # balanced by rating counts: snake dealing keeps block loads within one max row count
    loads = np.bincount(ub, weights=np.bincount(users, minlength=nu), minlength=B)
    assert loads.max() - loads.min() <= np.bincount(users).max()
    ptr, perm = mf_block_schedule(users, items, ub, ib, B)
    assert ptr[0] == 0 and ptr[-1] == n and np.all(np.diff(ptr) >= 0)
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))          # every rating once
    seen = np.zeros(n, int)
    for s in range(B):
        cells = [mf_stratum_blocks(s, b, B) for b in range(B)]
        user_sets, item_sets = [], []
        for c in cells:
            idx = perm[ptr[c]:ptr[c + 1]]
            seen[idx] += 1
            assert np.all(ub[users[idx]] == c // B) and np.all(ib[items[idx]] == c % B)
            user_sets.append(set(users[idx]))
            item_sets.append(set(items[idx]))
        # the B cells of a stratum (run concurrently) share no user row and no item row
        for x in range(B):
            for y in range(x + 1, B):
                assert not user_sets[x] & user_sets[y]
                assert not item_sets[x] & item_sets[y]
        assert sorted(c // B for c in cells) == list(range(B))
        assert sorted(c % B for c in cells) == list(range(B))
    np.testing.assert_array_equal(seen, 1)                                # one epoch = B strata
    # within-cell order is stable (original order), and block shuffles stay inside cells
    for c in range(B * B):
        assert np.all(np.diff(perm[ptr[c]:ptr[c + 1]]) > 0)
    uu, ii, rr = users[perm].copy(), items[perm].copy(), np.arange(n, dtype=float)[perm]
    mf_shuffle_blocks(uu, ii, rr, ptr, 7)
    for c in range(B * B):
        sl = slice(ptr[c], ptr[c + 1])
        assert sorted(rr[sl]) == sorted(perm[sl].astype(float))


@pytest.mark.parametrize("B", [2, 3, 8])
def test_block_layout_is_schedule_on_relabelled_rows(rng, B):
    """mf_block_layout == mf_block_schedule's grouping + rows relabelled by a stable sort of blocks."""
    nu, ni, n = 50, 70, 900
    users, items, r = _small_data(rng, nu, ni, n)
    users, items = users.astype(np.int32), items.astype(np.int32)
    ub = mf_partition(np.bincount(users, minlength=nu), B, rng.permutation(nu))
    ib = mf_partition(np.bincount(items, minlength=ni), B, rng.permutation(ni))
    ptr, perm = mf_block_schedule(users, items, ub, ib, B)
    uo, io = np.argsort(ub, kind="stable"), np.argsort(ib, kind="stable")
    new_u, new_i = np.argsort(uo), np.argsort(io)
    got = mf_block_layout(users, items, r, ub, ib, B)
    want = (ptr, new_u[users[perm]], new_i[items[perm]], r[perm], uo, io, new_u, new_i)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    # every block's rows are contiguous in the working frame
    assert np.all(np.diff(ub[got[4]]) >= 0) and np.all(np.diff(ib[got[5]]) >= 0)


def test_block_layout_in_parallel_chunks_equals_a_stable_numpy_sort():
    """Large enough for several chunks of the parallel counting sort: the layout is a stable
    sort by cell (NumPy reference), the same on 1 and 2 threads."""
    rng = np.random.default_rng(3)
    nu, ni, n, B = 500, 400, 300_000, 5
    users = rng.integers(0, nu, n).astype(np.int32)
    items = rng.integers(0, ni, n).astype(np.int32)
    r = rng.uniform(1, 5, n)
    ub, ib = rng.integers(0, B, nu), rng.integers(0, B, ni)
    perm = np.argsort(ub[users] * B + ib[items], kind="stable")
    uo, io = np.argsort(ub, kind="stable"), np.argsort(ib, kind="stable")
    new_u, new_i = np.argsort(uo), np.argsort(io)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(ub[users] * B + ib[items], minlength=B * B))])
    want = (ptr, new_u[users[perm]], new_i[items[perm]], r[perm], uo, io, new_u, new_i)
    saved = numba.get_num_threads()
    try:
        for nt in sorted({1, min(2, MAX_THREADS)}):
            numba.set_num_threads(nt)
            got = mf_block_layout(users, items, r, ub, ib, B)
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
    finally:
        numba.set_num_threads(saved)


def test_shuffle_is_a_seeded_permutation(rng):
    n = 1000
    a = np.arange(n)
    b, r = a.copy(), a.astype(float)
    mf_shuffle(a, b, r, 123)
    np.testing.assert_array_equal(np.sort(a), np.arange(n))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, r)
    assert not np.array_equal(a, np.arange(n))
    a2, b2, r2 = np.arange(n), np.arange(n), np.arange(n, dtype=float)
    mf_shuffle(a2, b2, r2, 123)
    np.testing.assert_array_equal(a, a2)


def test_normal_rows_are_standard_normal_and_thread_independent():
    stats = pytest.importorskip("scipy.stats")
    out = np.empty((4000, 250))
    mf_normal_rows(out, 2024, 0, 0.0, 1.0)
    z = out.ravel()
    n = z.size
    # moments within 4 standard errors, and the whole distribution by Kolmogorov-Smirnov
    assert abs(z.mean()) < 4 / np.sqrt(n) and abs(z.std() - 1) < 4 / np.sqrt(2 * n)
    assert abs(stats.skew(z)) < 4 * np.sqrt(6 / n) and abs(stats.kurtosis(z)) < 4 * np.sqrt(24 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # tail beyond the ziggurat's base (r = 3.654) and far tail, against the normal's
    for t in (3.6541528853610088, 4.2):
        expected = n * 2 * stats.norm.sf(t)
        assert abs(np.sum(np.abs(z) > t) - expected) < 5 * np.sqrt(expected)
    # rows are independent of each other (neighbouring rows are not correlated)
    assert abs(np.corrcoef(out[:-1].ravel(), out[1:].ravel())[0, 1]) < 4 / np.sqrt(n)
    # N(mean, std^2); same numbers for any thread count; rows can be drawn in pieces
    a = np.empty((37, 9))
    mf_normal_rows(a, 7, 0, 0.5, 0.1)
    piece = np.empty((20, 9))
    mf_normal_rows(piece, 7, 10, 0.5, 0.1)
    np.testing.assert_array_equal(piece, a[10:30])
    with mf._model._numba_threads(1):
        b = np.empty((37, 9))
        mf_normal_rows(b, 7, 0, 0.5, 0.1)
    np.testing.assert_array_equal(a, b)
    c = np.empty((37, 9))
    mf_normal_rows(c, 8, 0, 0.5, 0.1)
    assert not np.array_equal(a, c)
    mf_normal_rows(c, 8, 0, 0.5, 0.0)
    assert np.all(c == 0.5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normal_rows_at_streams_equal_the_rows_they_name(rng, dtype):
    """Rows drawn straight into a permuted, padded copy equal the plain draw's rows."""
    from fastgrad.kernels import mf_normal_rows_at
    full = np.empty((50, 9), dtype=dtype)
    mf_normal_rows(full, 11, 0, 0.0, 0.2)
    streams = rng.permutation(50)[:31]
    padded = np.zeros((31, 16), dtype=dtype)
    for n_threads in (1, 2):
        padded[:, :9] = -1.0
        with _numba_threads(n_threads):
            mf_normal_rows_at(padded[:, :9], 11, streams, 0.0, 0.2)
        np.testing.assert_array_equal(padded[:, :9], full[streams])
        assert np.all(padded[:, 9:] == 0)                  # the pad is not touched


def test_fit_draws_its_start_in_the_working_frame(rng):
    """n_epochs=0 returns the start: the factors of the plain draw, whatever the frame."""
    u, i, r, _ = mf.simulate(n_users=60, n_items=45, n_ratings=1500, n_factors=2, random_state=3)
    for kw in (dict(n_threads=1), dict(n_threads=2, n_blocks=3), dict(n_threads=2, n_blocks=4)):
        m = mf.fit(u, i, r, n_factors=5, n_epochs=0, init_std=0.3, random_state=9, **kw)
        seed = int(np.random.default_rng(9).integers(2**63 - 1))
        P = np.empty((m.n_users, 5))
        Q = np.empty((m.n_items, 5))
        mf_normal_rows(P, seed, 0, 0.0, 0.3)
        mf_normal_rows(Q, seed, m.n_users, 0.0, 0.3)
        np.testing.assert_array_equal(m.P, P)
        np.testing.assert_array_equal(m.Q, Q)
        assert not m.user_bias.any() and not m.item_bias.any()


def test_predict_and_error_kernels_against_numpy(rng):
    bu, bi, P, Q = _params(rng)
    users = np.array([0, 6, -1, 2, -1, 4])
    items = np.array([1, -1, 3, 4, -1, 0])
    r = rng.uniform(1, 5, users.size)
    mu = 3.1
    ref = np.full(users.size, mu)
    for t, (u, i) in enumerate(zip(users, items)):
        if u >= 0:
            ref[t] += bu[u]
        if i >= 0:
            ref[t] += bi[i]
        if u >= 0 and i >= 0:
            ref[t] += P[u] @ Q[i]
    out = np.empty(users.size)
    mf_predict(users, items, mu, bu, bi, P, Q, -np.inf, np.inf, out)
    np.testing.assert_allclose(out, ref, rtol=1e-13)
    mf_predict(users, items, mu, bu, bi, P, Q, 2.9, 3.3, out)
    np.testing.assert_allclose(out, np.clip(ref, 2.9, 3.3), rtol=1e-13)
    sse, sae = mf_error_sums(users, items, r, mu, bu, bi, P, Q, 2.9, 3.3)
    e = r - np.clip(ref, 2.9, 3.3)
    assert sse == pytest.approx(e @ e, rel=1e-12) and sae == pytest.approx(np.abs(e).sum(), rel=1e-12)
    cu, ci = rng.integers(0, 4, bu.size), rng.integers(0, 4, bi.size)
    ref_pen = cu @ (0.1 * (P ** 2).sum(1) + 0.3 * bu ** 2) + ci @ (0.1 * (Q ** 2).sum(1) + 0.3 * bi ** 2)
    assert mf_penalty(bu, bi, P, Q, cu, ci, 0.1, 0.3) == pytest.approx(ref_pen, rel=1e-12)


def test_kernels_callable_from_user_njit(rng):
    @njit
    def user_train(users, items, r, mu, bu, bi, P, Q, n_epochs, seed):
        out = np.empty(n_epochs)
        for ep in range(n_epochs):
            mf_shuffle(users, items, r, seed + ep)
            out[ep] = mf_sgd_epoch(users, items, r, mu, bu, bi, P, Q, 0.02, 0.02, 0.02)
        pred = np.empty(r.shape[0])
        mf_predict(users, items, mu, bu, bi, P, Q, -np.inf, np.inf, pred)
        sse, sae = mf_error_sums(users, items, r, mu, bu, bi, P, Q, -np.inf, np.inf)
        gp = np.empty(P.shape[1])
        gq = np.empty(P.shape[1])
        f, gbu, gbi = mf_rating_loss_grad(r[0], mu, bu[users[0]], bi[items[0]], P[users[0]],
                                          Q[items[0]], 0.02, 0.02, gp, gq)
        step = mf_sgd_step(users[0], items[0], r[0], mu, bu, bi, P, Q, 0.0, 0.0, 0.0)
        pen = mf_penalty(bu, bi, P, Q, np.ones(bu.shape[0], np.int64), np.ones(bi.shape[0], np.int64),
                         0.0, 0.0)
        return out, pred, sse, f, step + pen

    users, items, r = _small_data(rng)
    bu, bi, P, Q = _params(rng)
    out, pred, sse, f, step = user_train(users, items, r, r.mean(), bu, bi, P, Q, 30, 1)
    assert out[-1] < out[0]
    assert sse == pytest.approx(((r - pred) ** 2).sum(), rel=1e-12)
    assert step == pytest.approx((r[0] - pred[0]) ** 2, rel=1e-10)
    assert f >= step

    @njit
    def user_blocked(users, items, r, bu, bi, P, Q, user_free, item_free):
        ub = mf_partition(np.bincount(users), 2, np.arange(bu.shape[0]))
        ib = mf_partition(np.bincount(items), 2, np.arange(bi.shape[0]))
        ptr, perm = mf_block_schedule(users, items, ub, ib, 2)
        u2, i2, r2 = users[perm], items[perm], r[perm]
        mf_shuffle_blocks(u2, i2, r2, ptr, 3)
        s = mf_sgd_epoch_blocked(u2, i2, r2, ptr, 2, np.arange(2), 5, 3.0, bu, bi, P, Q, 0.01, 0.02, 0.02)
        s2, cnt = mf_sgd_epoch_masked(users, items, r, 3.0, bu, bi, P, Q, 0.01, 0.02, 0.02,
                                      user_free, item_free)
        return s, cnt

    uf = np.zeros(bu.size, np.bool_)
    uf[0] = True
    s, cnt = user_blocked(users, items, r, bu, bi, P, Q, uf, np.zeros(bi.size, np.bool_))
    assert np.isfinite(s) and cnt == np.sum(users == 0)


def test_masked_epoch_moves_only_free_rows(rng):
    users, items, r = _small_data(rng)
    bu, bi, P, Q = _params(rng)
    uf = np.zeros(bu.size, bool)
    uf[[1, 4]] = True
    itf = np.zeros(bi.size, bool)
    itf[2] = True
    before = [x.copy() for x in (bu, bi, P, Q)]
    _, cnt = mf_sgd_epoch_masked(users, items, r, 3.0, bu, bi, P, Q, 0.05, 0.02, 0.02, uf, itf)
    assert cnt == np.sum(uf[users] | itf[items])
    np.testing.assert_array_equal(P[~uf], before[2][~uf])
    np.testing.assert_array_equal(bu[~uf], before[0][~uf])
    np.testing.assert_array_equal(Q[~itf], before[3][~itf])
    np.testing.assert_array_equal(bi[~itf], before[1][~itf])
    assert not np.array_equal(P[uf], before[2][uf]) and not np.array_equal(Q[itf], before[3][itf])


# ============================================================================ fit
def test_low_rank_simulation_reaches_noise_level(sim):
    u, i, r, test, truth = sim
    model = mf.fit(u[~test], i[~test], r[~test], n_factors=5, n_epochs=80, lr=0.01, reg=0.05,
                   random_state=1, validation=(u[test], i[test], r[test]))
    # a model that predicts the truth exactly would score the noise level 0.3
    assert model.val_rmse[-1] < 1.12 * truth["noise"]
    assert model.val_rmse[-1] < 0.6 * model.val_rmse[0]
    assert model.rmse(u[test], i[test], r[test]) == pytest.approx(model.val_rmse[-1], rel=1e-12)
    # baseline: mean + biases only is far worse
    assert model.val_rmse[-1] < 0.7 * np.std(r[test])


def test_objective_history_and_exact_metrics(sim):
    u, i, r, test, _ = sim
    m = mf.fit(u[~test], i[~test], r[~test], n_factors=4, n_epochs=8, lr=0.01, random_state=3,
               train_metrics="exact", n_threads=1)
    ut, it, rt = u[~test], i[~test], r[~test]
    # NumPy reference of the mean per-rating loss at the end
    ur, ir = m.user_index(ut), m.item_index(it)
    pred = m.mu + m.user_bias[ur] + m.item_bias[ir] + np.einsum("ij,ij->i", m.P[ur], m.Q[ir])
    e = rt - pred
    f = e ** 2 + m.params["reg"] * ((m.P[ur] ** 2).sum(1) + (m.Q[ir] ** 2).sum(1)) \
        + m.params["reg_bias"] * (m.user_bias[ur] ** 2 + m.item_bias[ir] ** 2)
    assert m.objective == pytest.approx(f.mean(), rel=1e-10)
    assert m.history[-1] == pytest.approx(f.mean(), rel=1e-10)      # exact metrics
    assert m.train_rmse[-1] == pytest.approx(np.sqrt(np.mean(e ** 2)), rel=1e-10)
    assert m.loss(ut, it, rt) == pytest.approx(f.mean(), rel=1e-10)
    assert m.n_iter == 8 and m.history.shape == (8,) and m.val_rmse.size == 0
    assert np.all(np.diff(m.history) < 0)
    assert m.mu == pytest.approx(rt.mean())


@pytest.mark.slow
def test_matches_scikit_surprise_svd():
    surprise = pytest.importorskip("surprise")
    pd = pytest.importorskip("pandas")
    u, i, r, _ = mf.simulate(n_users=943, n_items=1682, n_ratings=100_000, n_factors=10,
                             noise=0.6, random_state=5)
    r = np.clip(np.round(r * 2) / 2, 1, 5)           # half-star ratings on 1..5 like MovieLens
    test = np.random.default_rng(0).random(r.size) < 0.1
    reader = surprise.Reader(rating_scale=(1, 5))
    data = surprise.Dataset.load_from_df(pd.DataFrame({"u": u[~test], "i": i[~test], "r": r[~test]}),
                                         reader)
    algo = surprise.SVD(random_state=0)                # defaults: 100 factors, 20 epochs, ...
    algo.fit(data.build_full_trainset())
    preds = algo.test(list(zip(u[test], i[test], r[test])))
    rmse_surprise = surprise.accuracy.rmse(preds, verbose=False)
    model = mf.fit(u[~test], i[~test], r[~test], rating_scale=(1, 5), random_state=0)
    rmse_ours = model.rmse(u[test], i[test], r[test])
    assert abs(rmse_ours - rmse_surprise) < 0.01, (rmse_ours, rmse_surprise)


def test_parallel_and_serial_paths_agree(sim):
    u, i, r, test, _ = sim
    kw = dict(n_factors=5, n_epochs=30, lr=0.01, reg=0.05, random_state=2,
              validation=(u[test], i[test], r[test]))
    serial = mf.fit(u[~test], i[~test], r[~test], n_threads=1, **kw)
    parallel = mf.fit(u[~test], i[~test], r[~test], n_threads=min(2, MAX_THREADS), n_blocks=4, **kw)
    assert serial.params["n_blocks"] == 1 and parallel.params["n_blocks"] == 4
    assert abs(serial.val_rmse[-1] - parallel.val_rmse[-1]) < 0.005
    assert not np.array_equal(serial.P, parallel.P)       # really two different paths


def _reference_fit(u, i, r, *, n_blocks, random_state, n_epochs, lr=0.005, lr_decay=1.0,
                   n_factors=8, reg=0.02, reg_bias=0.02, init_std=0.1, validation=None,
                   scale=(-np.inf, np.inf), modify=None, shuffle="once"):
    """The SGD schedule of mf.fit driven from Python in the ORIGINAL row frame (no relabelling,
    no working copies), with fit's documented order of random draws: the init seed, then
    (B > 1) the user and item tie-break permutations, then per epoch the shuffle seed and
    (B > 1) the stratum order. ``modify(epoch, bu, bi, P, Q)`` changes the parameters in place
    after an epoch (what a callback may do). Returns the parameters after every epoch."""
    gen = np.random.default_rng(random_state)
    uu = np.unique(u, return_inverse=True)[1].astype(np.int32)
    ii = np.unique(i, return_inverse=True)[1].astype(np.int32)
    nu, ni, n, B = uu.max() + 1, ii.max() + 1, r.size, n_blocks
    seed = int(gen.integers(2**63 - 1))
    P, Q = np.empty((nu, n_factors)), np.empty((ni, n_factors))
    mf_normal_rows(P, seed, 0, 0.0, init_std)
    mf_normal_rows(Q, seed, nu, 0.0, init_std)
    bu, bi, mu = np.zeros(nu), np.zeros(ni), r.mean()
    cu, ci = np.bincount(uu, minlength=nu), np.bincount(ii, minlength=ni)
    if B > 1:
        ub = mf_partition(cu, B, gen.permutation(nu))
        ib = mf_partition(ci, B, gen.permutation(ni))
        ptr, perm = mf_block_schedule(uu, ii, ub, ib, B)
        du, di, dr = uu[perm], ii[perm], r[perm]
    else:
        du, di, dr = uu.copy(), ii.copy(), r.copy()
    out = dict(history=[], train_rmse=[], val_rmse=[], params=[])
    for ep in range(n_epochs):
        lr_e = lr * lr_decay ** ep
        seed = int(gen.integers(2**63 - 1))
        if shuffle == "once" and ep > 0:
            seed = -1                   # the order of the first epoch's shuffle is kept
        if B > 1:
            sse = mf_sgd_epoch_blocked(du, di, dr, ptr, B, gen.permutation(B), seed, mu, bu, bi, P, Q,
                                       lr_e, reg, reg_bias)
        else:
            if seed >= 0:
                mf_shuffle(du, di, dr, seed)
            sse = mf_sgd_epoch(du, di, dr, mu, bu, bi, P, Q, lr_e, reg, reg_bias)
        out["history"].append((sse + mf_penalty(bu, bi, P, Q, cu, ci, reg, reg_bias)) / n)
        out["train_rmse"].append(np.sqrt(sse / n))
        if validation is not None:
            vu, vi, vr = validation
            vsse, _ = mf_error_sums(vu, vi, vr, mu, bu, bi, P, Q, *scale)
            out["val_rmse"].append(np.sqrt(vsse / vr.size))
        if modify is not None:
            modify(ep + 1, bu, bi, P, Q)
        out["params"].append([x.copy() for x in (bu, bi, P, Q)])
    sse, _ = mf_error_sums(uu, ii, r, mu, bu, bi, P, Q, -np.inf, np.inf)
    out["objective"] = (sse + mf_penalty(bu, bi, P, Q, cu, ci, reg, reg_bias)) / n
    return out


def _assert_fit_equals_reference(m, ref, n_iter):
    for got, want in zip((m.user_bias, m.item_bias, m.P, m.Q), ref["params"][n_iter - 1]):
        np.testing.assert_array_equal(got, want)
    for key in ("history", "train_rmse", "val_rmse"):
        np.testing.assert_array_equal(getattr(m, key), np.asarray(ref[key][:m.n_iter]), err_msg=key)


@pytest.mark.parametrize("shuffle", ["once", "epoch"])
@pytest.mark.parametrize("n_blocks, n_threads", [(1, 1), (3, 2), (8, 2), (4, 1)])
def test_fit_is_bitwise_the_reference_schedule(sim, n_blocks, n_threads, shuffle):
    """mf.fit (relabelled working frame, metrics computed there) == the plain schedule, bit for bit."""
    u, i, r, test, _ = sim
    n_threads = min(n_threads, MAX_THREADS)
    tr = ~test
    vu, vi, vr = u[test], i[test], r[test]
    kw = dict(n_blocks=n_blocks, random_state=7, n_epochs=5, lr=0.01, lr_decay=0.8, shuffle=shuffle)
    m = mf.fit(u[tr], i[tr], r[tr], n_threads=n_threads, validation=(vu, vi, vr), rating_scale=(1, 5),
               n_factors=8, **kw)
    # simulate's ids are 0..m-1, all present in the training part: rows are the ids themselves
    assert np.array_equal(m.user_ids, np.arange(m.n_users)) and np.array_equal(m.item_ids, np.arange(m.n_items))
    ref = _reference_fit(u[tr], i[tr], r[tr], validation=(m.user_index(vu), m.item_index(vi), vr),
                         scale=(1.0, 5.0), **kw)
    _assert_fit_equals_reference(m, ref, 5)
    # the final objective is summed in the trainer's order of the ratings (block-ordered, or the
    # serial path's shuffled copy), the reference's in the original order: equal up to rounding
    assert m.objective == pytest.approx(ref["objective"], rel=1e-12)


def test_fit_callback_changes_and_early_stopping_restore_as_reference(sim):
    u, i, r, test, _ = sim
    tr = ~test
    kw = dict(n_blocks=4, random_state=3, n_epochs=6, lr=0.02, n_factors=8)

    def modify(ep, bu, bi, P, Q):          # a callback that edits the parameters in place
        if ep == 2:
            P[5] = 0.0
            bi[:3] += 0.25

    seen = []

    def callback(ep, state):
        seen.append(state["P"].copy())
        modify(ep, state["user_bias"], state["item_bias"], state["P"], state["Q"])

    m = mf.fit(u[tr], i[tr], r[tr], n_threads=min(2, MAX_THREADS), callback=callback, **kw)
    ref = _reference_fit(u[tr], i[tr], r[tr], modify=modify, **kw)
    _assert_fit_equals_reference(m, ref, 6)
    # the callback saw the parameters in the original frame, before its own change
    np.testing.assert_array_equal(seen[0], ref["params"][0][2])
    assert np.any(seen[1][5] != 0)
    # early stopping with restore_best: the parameters of the best epoch, in the original frame
    vu, vi, vr = u[test], i[test], r[test]
    kw = dict(n_blocks=3, random_state=0, n_epochs=40, lr=0.03, reg=0.0, reg_bias=0.0, n_factors=30)
    m = mf.fit(u[tr], i[tr], r[tr], n_threads=min(2, MAX_THREADS), validation=(vu, vi, vr),
               early_stopping=True, patience=2, **kw)
    assert m.converged and m.best_epoch < m.n_iter < 40
    ref = _reference_fit(u[tr], i[tr], r[tr], validation=(vu, vi, vr), **kw)
    for got, want in zip((m.user_bias, m.item_bias, m.P, m.Q), ref["params"][m.best_epoch - 1]):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(m.val_rmse, ref["val_rmse"][:m.n_iter])


def test_shuffle_once_keeps_the_first_order_and_predicts_as_well(sim):
    u, i, r, test, _ = sim
    tr = ~test
    kw = dict(n_factors=8, n_epochs=8, random_state=5, n_threads=1, n_blocks=3)
    once = mf.fit(u[tr], i[tr], r[tr], **kw)
    every = mf.fit(u[tr], i[tr], r[tr], shuffle="epoch", **kw)
    assert once.params["shuffle"] == "once" and every.params["shuffle"] == "epoch"
    assert not np.array_equal(once.P, every.P)        # a different schedule after the first epoch
    a, b = once.rmse(u[test], i[test], r[test]), every.rmse(u[test], i[test], r[test])
    assert abs(a - b) < 0.01 * b
    with pytest.raises(ValueError, match="shuffle"):
        mf.fit(u, i, r, shuffle="never")


def test_same_seed_same_threads_identical_fit(sim):
    u, i, r, test, _ = sim
    kw = dict(n_factors=8, n_epochs=4, random_state=11)
    for nt in sorted({1, min(2, MAX_THREADS)}):
        a = mf.fit(u, i, r, n_threads=nt, **kw)
        b = mf.fit(u, i, r, n_threads=nt, **kw)
        for x, y in ((a.P, b.P), (a.Q, b.Q), (a.user_bias, b.user_bias), (a.history, b.history)):
            np.testing.assert_array_equal(x, y)
    # the block schedule does not depend on the number of threads, only on n_blocks
    c = mf.fit(u, i, r, n_threads=1, n_blocks=4, **kw)
    d = mf.fit(u, i, r, n_threads=min(2, MAX_THREADS), n_blocks=4, **kw)
    np.testing.assert_array_equal(c.P, d.P)
    np.testing.assert_array_equal(c.Q, d.Q)
    e = mf.fit(u, i, r, n_threads=1, **dict(kw, random_state=12))
    assert not np.array_equal(a.P, e.P)


def test_bad_input_raises_clear_errors():
    u, i, r = np.array([0, 1, 2]), np.array([0, 1, 0]), np.array([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="ratings contains NaN"):
        mf.fit(u, i, np.array([1.0, np.nan, 3.0]))
    with pytest.raises(ValueError, match="ratings contains NaN or infinite"):
        mf.fit(u, i, np.array([1.0, np.inf, 3.0]))
    with pytest.raises(ValueError, match="inconsistent lengths"):
        mf.fit(u, i[:2], r)
    with pytest.raises(ValueError, match="empty"):
        mf.fit([], [], [])
    with pytest.raises(ValueError, match="n_factors"):
        mf.fit(u, i, r, n_factors=0)
    with pytest.raises(TypeError, match="n_factors"):
        mf.fit(u, i, r, n_factors=2.5)
    with pytest.raises(ValueError, match="lr"):
        mf.fit(u, i, r, lr=0.0)
    with pytest.raises(ValueError, match="lr"):
        mf.fit(u, i, r, lr=-1)
    with pytest.raises(ValueError, match="reg must be >= 0"):
        mf.fit(u, i, r, reg=-0.1)
    with pytest.raises(ValueError, match="reg_bias"):
        mf.fit(u, i, r, reg_bias=-0.1)
    with pytest.raises(ValueError, match="n_threads"):
        mf.fit(u, i, r, n_threads=MAX_THREADS + 1)
    with pytest.raises(ValueError, match="rating_scale"):
        mf.fit(u, i, r, rating_scale=(5, 1))
    with pytest.raises(ValueError, match="lr_decay"):
        mf.fit(u, i, r, lr_decay=1.5)
    with pytest.raises(ValueError, match="users contains NaN"):
        mf.fit(np.array([0.0, np.nan, 1.0]), i, r)
    with pytest.raises(ValueError, match="missing ids"):
        mf.fit(["a", None, "b"], i, r)
    with pytest.raises(TypeError, match="hashable"):
        mf.fit([[1], [2, 3], [4]], i, r)
    with pytest.raises(ValueError, match="1-dimensional"):
        mf.fit(np.zeros((3, 2)), i, r)
    with pytest.raises(TypeError, match="users, items and ratings"):
        mf.fit(u, i)
    with pytest.raises(ValueError, match="validation must not be empty"):
        mf.fit(u, i, r, validation=([], [], []))
    with pytest.raises(ValueError, match="diverged"):
        mf.fit(np.arange(50) % 5, np.arange(50) % 7, np.linspace(-1e3, 1e3, 50), lr=5.0,
               n_factors=3, n_epochs=50, n_threads=1)
    with pytest.raises(TypeError, match="callback"):
        mf.fit(u, i, r, callback=3)


def test_unknown_ids_fall_back_to_known_terms():
    u = ["ann", "bob", "ann", "cid", "bob"]
    i = ["x", "y", "y", "x", "z"]
    r = [4.0, 3.0, 5.0, 2.0, 1.0]
    m = mf.fit(u, i, r, n_factors=3, n_epochs=5, random_state=0, n_threads=1)
    ann, y = m.user_index(["ann"])[0], m.item_index(["y"])[0]
    assert list(m.user_index(["zed", "ann"])) == [-1, ann]
    p = m.predict(["ann", "zed", "zed", "ann"], ["y", "y", "nope", "nope"])
    np.testing.assert_allclose(p, [m.mu + m.user_bias[ann] + m.item_bias[y] + m.P[ann] @ m.Q[y],
                                   m.mu + m.item_bias[y], m.mu, m.mu + m.user_bias[ann]], rtol=1e-12)
    # numeric ids against a string index never match (and do not crash)
    assert m.predict([1], [2])[0] == pytest.approx(m.mu)
    # rmse with unknown ids uses the same fallback
    assert m.rmse(["zed"], ["nope"], [m.mu + 1.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="known users"):
        m.loss(["zed"], ["x"], [1.0])


def test_rating_scale_clips_predictions(sim):
    u, i, r, test, _ = sim
    m = mf.fit(u, i, r, n_factors=3, n_epochs=3, rating_scale=(3.0, 4.0), random_state=0)
    p = m.predict(u[:500], i[:500])
    assert p.min() >= 3.0 and p.max() <= 4.0
    raw = m.mu + m.user_bias[m.user_index(u[:500])] + m.item_bias[m.item_index(i[:500])] + np.einsum(
        "ij,ij->i", m.P[m.user_index(u[:500])], m.Q[m.item_index(i[:500])])
    np.testing.assert_allclose(p, np.clip(raw, 3.0, 4.0), rtol=1e-12)
    assert m.mae(u[:500], i[:500], r[:500]) == pytest.approx(np.abs(r[:500] - p).mean(), rel=1e-12)


def test_string_ids_give_same_fit_as_ints(sim):
    u, i, r, _, _ = sim
    kw = dict(n_factors=4, n_epochs=3, random_state=4, n_threads=1)
    a = mf.fit(u, i, r, **kw)
    b = mf.fit(np.char.add("u", np.char.zfill(u.astype(str), 4)), [f"i{k:04d}" for k in i], r, **kw)
    np.testing.assert_array_equal(a.P, b.P)
    np.testing.assert_array_equal(a.item_bias, b.item_bias)
    np.testing.assert_allclose(a.predict(u[:50], i[:50]),
                               b.predict([f"u{k:04d}" for k in u[:50]], [f"i{k:04d}" for k in i[:50]]))
    # mixed hashable ids (ints and strings) go through the dict path
    c = mf.fit([1, "a", 1, (2, 3)], ["x", "x", 2, 2], [1.0, 2.0, 3.0, 4.0], n_factors=2, n_epochs=2)
    assert c.n_users == 3 and c.n_items == 2
    assert list(c.user_index([(2, 3), "a", "b"])) == [2, 1, -1]


def test_dataframe_and_sparse_inputs(sim):
    pd = pytest.importorskip("pandas")
    sp = pytest.importorskip("scipy.sparse")
    u, i, r, _, _ = sim
    u, i, r = u[:3000], i[:3000], r[:3000]
    kw = dict(n_factors=3, n_epochs=3, random_state=9, n_threads=1)
    ref = mf.fit(u, i, r, **kw)
    df = pd.DataFrame({"uid": u, "mid": i, "stars": r})
    m = mf.fit(df, columns=("uid", "mid", "stars"), **kw)
    np.testing.assert_array_equal(m.P, ref.P)
    assert m.rmse(df) == pytest.approx(ref.rmse(u, i, r))
    np.testing.assert_allclose(m.predict(df), ref.predict(u, i))
    with pytest.raises(ValueError, match="no column"):
        mf.fit(df, **kw)
    # sparse: rows = users, cols = items, explicit entries = ratings (COO order = row-major)
    X = sp.csr_matrix((r, (u, i)), shape=(400, 250))
    coo = X.tocoo()
    ms = mf.fit(X, **kw)
    ma = mf.fit(coo.row, coo.col, coo.data, **kw)
    np.testing.assert_array_equal(ms.P, ma.P)
    assert ms.n_users == len(np.unique(u))       # empty rows are not users
    np.testing.assert_allclose(ms.predict(X), ma.predict(coo.row, coo.col))
    # an explicitly stored zero is a rating
    Z = sp.coo_matrix((np.array([0.0, 5.0]), (np.array([0, 1]), np.array([0, 1]))), shape=(3, 3))
    assert mf.fit(Z, n_factors=1, n_epochs=1).mu == pytest.approx(2.5)
    # validation as a DataFrame
    mv = mf.fit(u, i, r, validation=df, columns=("uid", "mid", "stars"), **kw)
    assert mv.val_rmse.shape == (3,)


def test_early_stopping_restores_best_and_warns(sim):
    u, i, r, test, _ = sim
    val = (u[test], i[test], r[test])
    # a large model with no penalty overfits: validation RMSE turns up, fit stops and restores the best
    m = mf.fit(u[~test], i[~test], r[~test], n_factors=60, n_epochs=200, lr=0.03, reg=0.0,
               reg_bias=0.0, random_state=0, validation=val, early_stopping=True, patience=3)
    assert m.converged and m.n_iter < 200
    assert m.best_epoch == int(np.argmin(m.val_rmse)) + 1 and m.best_epoch <= m.n_iter - 3
    assert m.rmse(*val) == pytest.approx(m.val_rmse.min(), rel=1e-12)
    with pytest.warns(fastgrad.ConvergenceWarning):
        m2 = mf.fit(u, i, r, n_factors=3, n_epochs=2, random_state=0, early_stopping=True)
    assert not m2.converged and m2.n_iter == 2


def test_lr_decay_and_callback(sim):
    u, i, r, _, _ = sim
    m = mf.fit(u, i, r, n_factors=3, n_epochs=5, lr=0.01, lr_decay=0.5, random_state=0)
    np.testing.assert_allclose(m.lr_history, 0.01 * 0.5 ** np.arange(5))
    m = mf.fit(u, i, r, n_factors=3, n_epochs=4, lr=0.01, lr_decay=lambda e, lr: lr / (1 + e),
               random_state=0)
    np.testing.assert_allclose(m.lr_history, 0.01 / (1 + np.arange(4)))
    seen = []

    def cb(epoch, state):
        seen.append((epoch, state["train_rmse"], state["P"].shape))
        return epoch == 3

    m = mf.fit(u, i, r, n_factors=3, n_epochs=10, random_state=0, callback=cb)
    assert m.n_iter == 3 and [s[0] for s in seen] == [1, 2, 3]
    assert seen[-1][1] == pytest.approx(m.train_rmse[-1]) and seen[0][2] == m.P.shape


def test_partial_fit_folds_in_new_users_and_items(sim):
    u, i, r, test, _ = sim
    new_users = u >= 270
    new_items = i >= 190
    old = ~new_users & ~new_items
    m = mf.fit(u[old], i[old], r[old], n_factors=5, n_epochs=60, lr=0.01, reg=0.05, random_state=0)
    frozen = [x.copy() for x in (m.P, m.Q, m.user_bias, m.item_bias)]
    mu0 = m.mu
    # half of every new user's / item's ratings are used for fold-in, the rest is held out
    new = ~old
    fold = new & (np.arange(r.size) % 2 == 0)
    held = new & ~fold & new_users & ~new_items
    fallback = m.rmse(u[held], i[held], r[held])              # unknown users -> mu + bi
    m.partial_fit(u[fold], i[fold], r[fold], n_epochs=60, lr=0.01, random_state=1)
    assert m.n_users == len(np.unique(u)) and m.n_items == len(np.unique(i))
    np.testing.assert_array_equal(m.P[:frozen[0].shape[0]], frozen[0])
    np.testing.assert_array_equal(m.Q[:frozen[1].shape[0]], frozen[1])
    np.testing.assert_array_equal(m.user_bias[:frozen[2].size], frozen[2])
    np.testing.assert_array_equal(m.item_bias[:frozen[3].size], frozen[3])
    assert m.mu == mu0
    folded = m.rmse(u[held], i[held], r[held])
    assert folded < 0.8 * fallback, (folded, fallback)
    assert m.partial_history[-1] < m.partial_history[0]
    # update="all" refines rows that already existed
    P_before = m.P.copy()
    m.partial_fit(u[:2000], i[:2000], r[:2000], n_epochs=2, update="all", random_state=2, n_threads=1)
    assert not np.array_equal(m.P, P_before)
    with pytest.warns(UserWarning, match="nothing to fold in"):
        m.partial_fit(u[:10], i[:10], r[:10])
    with pytest.raises(ValueError, match="update"):
        m.partial_fit(u[:10], i[:10], r[:10], update="everything")


def test_save_load_roundtrip(tmp_path, sim):
    u, i, r, _, _ = sim
    m = mf.fit(u[:2000], i[:2000], r[:2000], n_factors=3, n_epochs=3, rating_scale=(1, 6),
               random_state=0, validation=(u[2000:2500], i[2000:2500], r[2000:2500]))
    path = tmp_path / "m.npz"
    m.save(path)
    m2 = mf.load(path)
    np.testing.assert_array_equal(m2.P, m.P)
    np.testing.assert_array_equal(m2.val_rmse, m.val_rmse)
    assert m2.rating_scale == (1.0, 6.0) and m2.params["n_factors"] == 3 and m2.n_iter == 3
    np.testing.assert_array_equal(m2.predict(u[:100], i[:100]), m.predict(u[:100], i[:100]))
    # string ids and mixed ids survive too (no pickles)
    s = mf.fit(["a", "b", "a"], [1, "x", "x"], [1.0, 2.0, 3.0], n_factors=2, n_epochs=2)
    s.save(tmp_path / "s.npz")
    s2 = mf.MFModel.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(s2.predict(["b", "a", "q"], ["x", 1, 1]),
                                  s.predict(["b", "a", "q"], ["x", 1, 1]))
    t = mf.fit([(1, 2), (3, 4)], [0, 1], [1.0, 2.0], n_factors=1, n_epochs=1)
    with pytest.raises(TypeError, match="cannot save user_ids"):
        t.save(tmp_path / "t.npz")
    np.savez(tmp_path / "junk.npz", meta=np.asarray("{}"))
    with pytest.raises(ValueError, match="not a fastgrad.mf model"):
        mf.load(tmp_path / "junk.npz")


# ============================================================================ loader & CLI
def test_movielens_loader_formats(tmp_path):
    from fastgrad.datasets.movielens import load_movielens
    (tmp_path / "u.data").write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n")
    d = load_movielens(tmp_path / "u.data")
    np.testing.assert_array_equal(d.users, [196, 186, 22])
    np.testing.assert_array_equal(d.items, [242, 302, 377])
    np.testing.assert_array_equal(d.ratings, [3.0, 3.0, 1.0])
    np.testing.assert_array_equal(d.timestamps, [881250949, 891717742, 878887116])
    assert d.users.dtype == np.int64
    # directory lookup
    np.testing.assert_array_equal(load_movielens(tmp_path).ratings, d.ratings)
    ml1m = tmp_path / "ratings.dat"
    ml1m.write_text("1::1193::5::978300760\n1::661::3::978302109\n\n2::3068::4.5::978299000\n")
    users, items, ratings, ts = load_movielens(ml1m)
    np.testing.assert_array_equal(users, [1, 1, 2])
    np.testing.assert_array_equal(ratings, [5.0, 3.0, 4.5])
    assert ts[-1] == 978299000
    csv = tmp_path / "ratings.csv"
    csv.write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n")
    assert load_movielens(csv).items.tolist() == [1, 3]
    three = tmp_path / "three.txt"
    three.write_text("alice item9 4\nbob item2 2.5\n")
    d3 = load_movielens(three)
    assert d3.users.tolist() == ["alice", "bob"] and d3.timestamps.size == 0
    assert d3.ratings.tolist() == [4.0, 2.5]
    pytest.importorskip("pandas")
    df = load_movielens(ml1m, as_frame=True)
    assert list(df.columns) == ["user", "item", "rating", "timestamp"] and len(df) == 3
    (tmp_path / "bad.dat").write_text("1::2::3::4\n1::2\n")
    with pytest.raises(ValueError, match="line 2"):
        load_movielens(tmp_path / "bad.dat")
    (tmp_path / "empty.dat").write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        load_movielens(tmp_path / "empty.dat")
    with pytest.raises(FileNotFoundError):
        load_movielens(tmp_path / "nope.dat")
    # a fit straight from the loader
    m = mf.fit(*load_movielens(ml1m)[:3], n_factors=2, n_epochs=2)
    assert m.n_users == 2 and m.n_items == 3


def test_cli_end_to_end(tmp_path, capsys, ratings_file):
    from fastgrad.__main__ import main
    path = ratings_file("ratings.dat", "::")
    out = tmp_path / "out"
    code = main(["mf", str(path), "--n-factors", "4", "--n-epochs", "3", "--threads", "1",
                 "--test-size", "0.2", "--out", str(out), "--seed", "3"])
    assert code == 0
    text = capsys.readouterr().out
    lines = [ln for ln in text.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 3 and all("test_rmse" in ln for ln in lines)
    model = mf.load(out / "mf_model.npz")
    assert model.n_iter == 3 and model.rating_scale == (1.0, 5.0)
    rmse = float(text.split("test RMSE ")[1].split()[0])
    assert rmse == pytest.approx(model.val_rmse[-1], abs=1e-4)
    assert main(["mf", str(tmp_path / "missing.dat")]) == 1
    assert main(["mf", str(path), "--test-size", "1.5"]) == 1
    out32 = tmp_path / "out32"
    assert main(["mf", str(path), "--n-factors", "4", "--n-epochs", "3", "--threads", "1", "--test-size",
                 "0.2", "--out", str(out32), "--seed", "3", "--dtype", "float32", "--quiet"]) == 0
    m32 = mf.load(out32 / "mf_model.npz")
    assert m32.P.dtype == np.float32 and m32.params["dtype"] == "float32"
    assert abs(m32.val_rmse[-1] - model.val_rmse[-1]) < 0.002


def test_verbose_progress_with_and_without_tqdm(sim, capsys, monkeypatch):
    u, i, r, test, _ = sim
    kw = dict(n_factors=2, n_epochs=3, random_state=0, validation=(u[test], i[test], r[test]))
    pytest.importorskip("tqdm")
    mf.fit(u, i, r, verbose=True, **kw)
    err = capsys.readouterr().err
    assert "3/3" in err and "val_rmse" in err
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)     # tqdm "not installed"
    m = mf.fit(u, i, r, verbose=True, **kw)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "epoch" in ln]
    assert len(lines) == 3 and f"val_rmse {m.val_rmse[-1]:.4f}" in lines[-1]


def test_extreme_rating_scale_stays_finite(sim):
    u, i, r, test, _ = sim
    big = 1e12 + r                     # mu-centring keeps the errors O(1)
    m = mf.fit(u[~test], i[~test], big[~test], n_factors=3, n_epochs=5, random_state=0,
               validation=(np.r_[u[test], 10_000], np.r_[i[test], 10_000], np.r_[big[test], 1e12]))
    assert np.isfinite(m.P).all() and np.isfinite(m.val_rmse).all() and np.isfinite(m.objective)
    small = mf.fit(u[~test], i[~test], r[~test], n_factors=3, n_epochs=5, random_state=0)
    assert m.val_rmse[-1] < 1.0
    np.testing.assert_allclose(m.user_bias, small.user_bias, atol=1e-3)


def test_default_n_blocks_grows_with_the_factor_bytes():
    from fastgrad.mf._model import default_n_blocks
    assert default_n_blocks(1, 10**6, 800) == 1                       # one thread: serial
    assert default_n_blocks(2) == 4 and default_n_blocks(3) == 6
    assert default_n_blocks(2, 943 + 1682, 800) == 4                  # ML-100k: 2.1 MB of rows
    for nt, rows, row_bytes in [(2, 165_237, 400), (2, 165_237, 800), (3, 500_000, 256)]:
        B = default_n_blocks(nt, rows, row_bytes)
        assert B % nt == 0 and B > 2 * nt
        assert rows * row_bytes / B <= 4 << 20 < rows * row_bytes / (B - nt)   # smallest such B
    # fit passes its own rows and dtype: float64 rows are twice as wide as float32 rows
    u, i, r, _ = mf.simulate(n_users=3000, n_items=2000, n_ratings=20_000, n_factors=2, random_state=0)
    kw = dict(n_factors=1024, n_epochs=0, n_threads=min(2, MAX_THREADS), random_state=0)
    if MAX_THREADS >= 2:
        assert mf.fit(u, i, r, **kw).params["n_blocks"] == default_n_blocks(2, 5000, 8192) == 10
        assert mf.fit(u, i, r, dtype=np.float32, **kw).params["n_blocks"] == 6


@pytest.mark.parametrize("m,hi", [(0, 1), (1, 1), (10, 3), (1000, 5), (5000, 70_000), (3000, 2**40)])
def test_partition_sort_is_numpys_stable_argsort(m, hi):
    from fastgrad.kernels.mf import _stable_argsort_nonneg
    keys = np.random.default_rng(m).integers(0, hi, m).astype(np.int64)
    np.testing.assert_array_equal(_stable_argsort_nonneg(keys), np.argsort(keys, kind="stable"))


def test_partition_deals_rows_by_decreasing_count_in_snake_order():
    counts = np.array([5, 9, 9, 1, 7, 3, 9, 2])
    order = np.array([3, 0, 6, 1, 7, 2, 5, 4])          # tie-break order of the rows
    block = mf_partition(counts, 3, order)
    # NumPy reference: rows by decreasing count, ties in `order`, dealt 0,1,2,2,1,0,0,1
    keyed = counts[order]
    ranked = order[np.argsort(-keyed, kind="stable")]
    snake = np.array([0, 1, 2, 2, 1, 0, 0, 1])
    want = np.empty(8, dtype=np.int64)
    want[ranked] = snake
    np.testing.assert_array_equal(block, want)
