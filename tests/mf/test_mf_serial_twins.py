"""The serial twin of the parallel MF block layout (used for small data: faster first fit)
gives the parallel kernel's output, and a fit is the same whichever runs."""
import numba
import numpy as np
import pytest

from fastgrad import mf
from fastgrad.kernels import mf_block_layout, mf_block_layout_serial, mf_block_schedule, mf_partition


@pytest.mark.parametrize("n", [1, 50, 70_000, 200_000])
def test_layout_twin(n):
    rng = np.random.default_rng(n)
    nu, ni = 400, 300
    u = rng.integers(0, nu, n).astype(np.int32)
    i = rng.integers(0, ni, n).astype(np.int32)
    r = rng.uniform(1, 5, n)
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
    # a small fit (serial layout) equals the same fit through the parallel layout
    u, i, r, _ = mf.simulate(n_users=120, n_items=80, n_ratings=3000, n_factors=3, random_state=1)
    kw = dict(n_factors=6, n_epochs=3, random_state=2, n_threads=min(2, numba.config.NUMBA_NUM_THREADS),
              n_blocks=2)
    a = mf.fit(u, i, r, **kw)
    from fastgrad.mf import _model
    monkeypatch.setattr(_model, "_SMALL_LAYOUT", 0)
    b = mf.fit(u, i, r, **kw)
    for name in ("P", "Q", "user_bias", "item_bias", "history"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.objective == b.objective
