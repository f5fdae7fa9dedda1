"""The serial twins of the parallel MF kernels (used for small work: faster first fit) give
the same numbers as the parallel kernels, on any thread count."""
import numba
import numpy as np
import pytest

from fastgrad import mf
from fastgrad.kernels import (mf_block_layout, mf_block_layout_serial, mf_block_schedule, mf_error_sums,
                              mf_error_sums_serial, mf_normal_rows, mf_normal_rows_serial, mf_partition)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normal_rows_twin(dtype):
    a = np.empty((300, 7), dtype)
    b = np.empty((300, 7), dtype)
    mf_normal_rows(a, 42, 5, 0.5, 2.0)
    mf_normal_rows_serial(b, 42, 5, 0.5, 2.0)
    np.testing.assert_array_equal(a, b)
    assert abs(a.mean() - 0.5) < 0.15 and abs(a.std() - 2.0) < 0.15


@pytest.mark.parametrize("n", [1, 50, 70_000, 200_000])
def test_error_sums_and_layout_twins(n):
    rng = np.random.default_rng(n)
    nu, ni, k = 400, 300, 5
    u = rng.integers(0, nu, n).astype(np.int32)
    i = rng.integers(0, ni, n).astype(np.int32)
    r = rng.uniform(1, 5, n)
    P, Q = rng.normal(0, 0.3, (nu, k)), rng.normal(0, 0.3, (ni, k))
    bu, bi = rng.normal(0, 0.2, nu), rng.normal(0, 0.2, ni)
    got = mf_error_sums_serial(u, i, r, 3.0, bu, bi, P, Q, 1.0, 5.0)
    assert got == mf_error_sums(u, i, r, 3.0, bu, bi, P, Q, 1.0, 5.0)
    pred = np.clip(3.0 + bu[u] + bi[i] + np.einsum("nk,nk->n", P[u], Q[i]), 1.0, 5.0)
    assert got[0] == pytest.approx(np.sum((r - pred) ** 2), rel=1e-12)
    assert got[1] == pytest.approx(np.sum(np.abs(r - pred)), rel=1e-12)
    B = 3
    ub = mf_partition(np.bincount(u, minlength=nu), B, rng.permutation(nu))
    ib = mf_partition(np.bincount(i, minlength=ni), B, rng.permutation(ni))
    par = mf_block_layout(u, i, r, ub, ib, B)
    ser = mf_block_layout_serial(u, i, r, ub, ib, B)
    for x, y in zip(par, ser):
        np.testing.assert_array_equal(x, y)
    ptr, perm = mf_block_schedule(u, i, ub, ib, B)       # the reference grouping
    np.testing.assert_array_equal(ser[0], ptr)
    np.testing.assert_array_equal(ser[3], r[perm])
    np.testing.assert_array_equal(ser[4][ser[1]], u[perm])


def test_fit_is_the_same_whichever_kernels_run(monkeypatch):
    # a small fit (serial twins) equals the same fit forced through the parallel kernels
    u, i, r, _ = mf.simulate(n_users=120, n_items=80, n_ratings=3000, n_factors=3, random_state=1)
    kw = dict(n_factors=6, n_epochs=3, random_state=2, n_threads=min(2, numba.config.NUMBA_NUM_THREADS),
              n_blocks=2)
    a = mf.fit(u, i, r, **kw)
    from fastgrad.mf import _model
    monkeypatch.setattr(_model, "_SMALL_DRAWS", 0)
    monkeypatch.setattr(_model, "_SMALL_DOTS", 0)
    monkeypatch.setattr(_model, "_SMALL_LAYOUT", 0)
    b = mf.fit(u, i, r, **kw)
    for name in ("P", "Q", "user_bias", "item_bias", "history"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.objective == b.objective
