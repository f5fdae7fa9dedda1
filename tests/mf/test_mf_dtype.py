"""float32 storage of the MF parameters (``mf.fit(..., dtype=np.float32)``)."""
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from fastgrad import mf
from fastgrad.kernels import mf_sgd_epoch, mf_sgd_epoch_blocked, mf_block_layout, mf_partition

MAX_THREADS = numba.config.NUMBA_NUM_THREADS


@pytest.fixture(scope="module")
def sim(simulated_split):
    return simulated_split(400, 300, 40_000, 4, 0.4, 4, 36_000)


def test_float32_epoch_kernels_match_float64_reference(python_epoch):
    rng = np.random.default_rng(0)
    nu, ni, n, k = 30, 20, 400, 12
    u = rng.integers(0, nu, n).astype(np.int32)
    i = rng.integers(0, ni, n).astype(np.int32)
    r = rng.uniform(1, 5, n)
    P0, Q0 = rng.normal(0, 0.3, (nu, k)), rng.normal(0, 0.3, (ni, k))
    ref = [np.zeros(nu), np.zeros(ni), P0.astype(np.float32).astype(np.float64),
           Q0.astype(np.float32).astype(np.float64)]
    sse_ref = python_epoch(u, i, r, 3.0, *ref, 0.02, 0.05, 0.03)
    got = [np.zeros(nu, np.float32), np.zeros(ni, np.float32), P0.astype(np.float32),
           Q0.astype(np.float32)]
    sse = mf_sgd_epoch(u, i, r, 3.0, *got, 0.02, 0.05, 0.03)
    assert all(x.dtype == np.float32 for x in got)
    assert sse == pytest.approx(sse_ref, rel=1e-5)
    for x, y in zip(got, ref):
        np.testing.assert_allclose(x, y, atol=2e-5)
    # the blocked kernel too (4 blocks, block-grouped ratings)
    B = 4
    ub = mf_partition(np.bincount(u, minlength=nu), B, np.arange(nu))
    ib = mf_partition(np.bincount(i, minlength=ni), B, np.arange(ni))
    ptr, du, di, dr, uo, io, _, _ = mf_block_layout(u, i, r, ub, ib, B)
    strata = np.array([2, 0, 3, 1])
    ref = [np.zeros(nu), np.zeros(ni), P0[uo].astype(np.float32).astype(np.float64),
           Q0[io].astype(np.float32).astype(np.float64)]
    got = [x.astype(np.float32) for x in ref]
    sse32 = mf_sgd_epoch_blocked(du, di, dr, ptr, B, strata, -1, 3.0, *got, 0.02, 0.05, 0.03)
    sse64 = mf_sgd_epoch_blocked(du, di, dr, ptr, B, strata, -1, 3.0, *ref, 0.02, 0.05, 0.03)
    assert sse32 == pytest.approx(sse64, rel=1e-5)
    for x, y in zip(got, ref):
        np.testing.assert_allclose(x, y, atol=2e-5)


@pytest.mark.parametrize("n_threads, n_blocks", [(1, None), (2, 4)])
def test_float32_and_float64_fits_agree(sim, n_threads, n_blocks):
    u, i, r, test, truth = sim
    n_threads = min(n_threads, MAX_THREADS)
    kw = dict(n_factors=8, n_epochs=40, lr=0.01, reg=0.05, random_state=5, n_threads=n_threads,
              n_blocks=n_blocks, rating_scale=(-10, 10))
    a = mf.fit(u[~test], i[~test], r[~test], **kw)
    b = mf.fit(u[~test], i[~test], r[~test], dtype=np.float32, **kw)
    for x in (b.P, b.Q, b.user_bias, b.item_bias):
        assert x.dtype == np.float32
    assert a.P.dtype == np.float64 and b.params["dtype"] == "float32"
    ra = a.rmse(u[test], i[test], r[test])
    rb = b.rmse(u[test], i[test], r[test])
    assert abs(ra - rb) < 0.002, (ra, rb)
    assert rb < 1.15 * truth["noise"]                  # and it really learned the structure
    # predictions are the documented formula on the float32 parameters, evaluated in float64
    ur, ir = b.user_index(u[test]), b.item_index(i[test])
    want = b.mu + b.user_bias[ur].astype(float) + b.item_bias[ir] + np.einsum(
        "ij,ij->i", b.P[ur].astype(float), b.Q[ir].astype(float))
    np.testing.assert_allclose(b.predict(u[test], i[test]), np.clip(want, -10, 10), rtol=1e-6)
    assert b.objective == pytest.approx(a.objective, rel=0.02)


def test_float32_model_save_load_and_partial_fit(tmp_path, sim):
    u, i, r, test, _ = sim
    m = mf.fit(u[:5000], i[:5000], r[:5000], n_factors=4, n_epochs=3, random_state=0,
               dtype="float32", n_threads=1)
    m.save(tmp_path / "m.npz")
    m2 = mf.load(tmp_path / "m.npz")
    assert m2.P.dtype == np.float32 and m2.user_bias.dtype == np.float32
    np.testing.assert_array_equal(m2.predict(u[:200], i[:200]), m.predict(u[:200], i[:200]))
    assert m2.rmse(u[test], i[test], r[test]) == m.rmse(u[test], i[test], r[test])
    m2.partial_fit(u[5000:8000] + 10_000, i[5000:8000], r[5000:8000], random_state=1)  # new users
    assert m2.n_users > m.n_users
    m2.partial_fit(u[5000:8000], i[5000:8000], r[5000:8000], update="all", random_state=2)
    for x in (m2.P, m2.Q, m2.user_bias, m2.item_bias):
        assert x.dtype == np.float32
    assert np.isfinite(m2.partial_history).all() and m2.partial_history.size == 3


@pytest.mark.parametrize("bad", [np.int64, "float16", np.complex128, None, "nope", 3])
def test_bad_dtype_raises_value_error_naming_dtype(bad):
    with pytest.raises(ValueError, match="dtype"):
        mf.fit([0, 1, 2], [0, 1, 0], [1.0, 2.0, 3.0], n_factors=2, n_epochs=1, dtype=bad)


def test_only_the_dtype_used_is_compiled():
    """A float32 fit in a fresh process compiles (or loads) float32 SGD kernels only."""
    code = textwrap.dedent("""
        import numpy as np
        from fastgrad import mf
        from fastgrad.kernels import mf as K
        u, i, r, _ = mf.simulate(n_users=50, n_items=40, n_ratings=800, n_factors=2, random_state=0)
        mf.fit(u, i, r, n_factors=3, n_epochs=2, dtype=np.float32, n_threads=1)
        mf.fit(u, i, r, n_factors=3, n_epochs=2, dtype=np.float32, n_threads=1, n_blocks=2)
        for fn in (K.mf_sgd_epoch, K.mf_sgd_epoch_blocked, K.mf_normal_rows_at):
            sigs = [str(s) for s in fn.signatures]
            assert sigs, fn
            assert all("Array(float64, 2" not in s for s in sigs), sigs
            assert any("Array(float32, 2" in s for s in sigs), sigs
        # the factors are drawn straight into the working rows: no plain draw as well
        assert not K.mf_normal_rows.signatures
        # small data: the serial layout runs, the parallel one is not compiled at all
        assert K.mf_block_layout_serial.signatures and not K.mf_block_layout.signatures
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_epoch_with_prefetching_matches_reference(dtype, python_epoch):
    """Factors above the prefetch threshold (8 MiB) take the prefetching loop: same steps."""
    from fastgrad.kernels.mf import _PREFETCH_BYTES
    rng = np.random.default_rng(1)
    nu, ni, n, k = 40_000, 2_000, 3_000, 64
    assert (nu + ni) * k * np.dtype(dtype).itemsize > _PREFETCH_BYTES
    u = rng.integers(0, nu, n).astype(np.int32)
    i = rng.integers(0, ni, n).astype(np.int32)
    r = rng.uniform(1, 5, n)
    P0 = rng.normal(0, 0.3, (nu, k)).astype(dtype)
    Q0 = rng.normal(0, 0.3, (ni, k)).astype(dtype)
    ref = [np.zeros(nu), np.zeros(ni), P0.astype(np.float64), Q0.astype(np.float64)]
    sse_ref = python_epoch(u, i, r, 3.0, *ref, 0.02, 0.05, 0.03)
    got = [np.zeros(nu, dtype), np.zeros(ni, dtype), P0.copy(), Q0.copy()]
    sse = mf_sgd_epoch(u, i, r, 3.0, *got, 0.02, 0.05, 0.03)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert sse == pytest.approx(sse_ref, rel=max(tol, 1e-10))
    for x, y in zip(got, ref):
        np.testing.assert_allclose(x, y, atol=tol)


def test_float32_penalty_is_close_to_the_float64_sum():
    """Row norms of float32 factors are summed in float32, rows in float64: ~1e-7 relative."""
    from fastgrad.kernels import mf_penalty
    from fastgrad.mf._model import _padded_rows
    rng = np.random.default_rng(4)
    nu, ni, k = 90, 70, 37                     # a partial last chunk, padded rows
    P = _padded_rows(nu, k, np.float32)
    Q = _padded_rows(ni, k, np.float32)
    P[:, :k] = rng.normal(0, 0.3, (nu, k))
    Q[:, :k] = rng.normal(0, 0.3, (ni, k))
    bu = rng.normal(0, 0.5, nu).astype(np.float32)
    bi = rng.normal(0, 0.5, ni).astype(np.float32)
    cu, ci = rng.integers(0, 40, nu), rng.integers(1, 40, ni)
    want = (np.sum(cu * (0.05 * (P.astype(float) ** 2).sum(1) + 0.02 * bu.astype(float) ** 2))
            + np.sum(ci * (0.05 * (Q.astype(float) ** 2).sum(1) + 0.02 * bi.astype(float) ** 2)))
    got = mf_penalty(bu, bi, P, Q, cu, ci, 0.05, 0.02)
    assert got == pytest.approx(want, rel=1e-6)
