"""Faster HLSM kernels: exp of non-positive arguments, log1p on [0, 1], the float32 path.

Tolerances of the float32 path (against the float64 kernel), and why:

* nll: 1e-6 relative. Positions are rounded to float32 (relative 6e-8) and
  each loss is computed to a few float32 ulps; sums beyond one node's row are
  float64, so errors average out (measured 1e-10 to 2e-8 on networks of 300 to
  2000 nodes).
* gradient in z: max |g32 - g64| <= 1e-5 max |g64| (measured <= 1e-6): far below
  the gradient tolerances a fit stops at (gtol 1e-4 to 1e-5 relative).
* gradient in alpha (a sum of residuals that cancels near the optimum, so a
  relative bound is meaningless there): |d| <= 1e-8 * (number of dyads), i.e. a
  tenth of a float32 ulp per residual in [-1, 1] (measured <= 1.1e-9).
"""
import numba
import numpy as np
import pytest
from numba import njit

from fastgrad import hlsm
from fastgrad.hlsm import _sparse as _hlsm_sparse
from fastgrad.kernels import (fast_exp_neg, fast_exp_neg32, fast_log1p_small, fast_log1p_small32, fast_softplus32,
                              fast_softplus_sigmoid32, fast_softplus_sigmoid64, fast_softplus64,
                              hlsm_nll, hlsm_nll_fast, hlsm_nll_fast32, hlsm_nll_grad, hlsm_nll_grad_fast,
                              hlsm_nll_grad_fast32)

EPS64 = np.finfo(np.float64).eps
EPS32 = float(np.finfo(np.float32).eps)
TINY64 = np.finfo(np.float64).tiny
TINY32 = float(np.finfo(np.float32).tiny)
# The kernels call the math functions inside loops compiled with these flags: test them there.
_FM = {"reassoc", "contract"}


@njit(fastmath=_FM, error_model="numpy")
def _map(f, x, out):
    for i in range(x.size):
        out[i] = f(x[i])


@njit(fastmath=_FM, error_model="numpy")
def _map2(f, x, out1, out2):
    for i in range(x.size):
        out1[i], out2[i] = f(x[i])


def _apply(f, x):
    out = np.empty_like(x)
    _map(f, x, out)
    return out


def _max_rel(out, ref):
    return float((np.abs(out.astype(np.float64) - ref) / ref).max())


# ----------------------------------------------------------------------------- math functions

def test_fast_exp_neg_whole_range(rng):
    x = np.concatenate([-rng.uniform(0.0, 746.0, 400_000), -rng.uniform(0.0, 2.0, 100_000),
                        -np.linspace(0.0, 746.0, 200_001), -(10.0 ** rng.uniform(-300, 0, 50_000)),
                        [0.0, -0.0, -5e-324, -0.5 * np.log(2), -708.3964185322641, -708.39641853226,
                         -708.3965, -708.4, -744.44, -745.13, -746.0, -1e300, -np.inf]])
    out = _apply(fast_exp_neg, x)
    ref = np.exp(x)
    normal = ref >= TINY64
    assert normal.sum() > 600_000
    assert _max_rel(out[normal], ref[normal]) <= 2 * EPS64
    # below the smallest normal the result is flushed to 0
    assert np.all(out[~normal] == 0.0) and (~normal).sum() > 1000
    assert fast_exp_neg(0.0) == 1.0 and fast_exp_neg(-np.inf) == 0.0
    for v in (-700.0, -1.5, -1e-10):  # scalar calls from Python agree
        assert abs(fast_exp_neg(v) - np.exp(v)) <= 2 * EPS64 * np.exp(v)


def test_fast_exp_neg32_whole_range(rng):
    x = np.concatenate([-rng.uniform(0.0, 104.0, 400_000), -np.linspace(0.0, 104.0, 200_001),
                        -(10.0 ** rng.uniform(-40, 0, 50_000)),
                        [0.0, -0.0, -87.33654, -87.3365, -87.337, -87.4, -103.9, -104.0, -1e30, -np.inf]]
                       ).astype(np.float32)
    out = _apply(fast_exp_neg32, x)
    assert out.dtype == np.float32
    ref = np.exp(x.astype(np.float64))
    normal = ref >= TINY32
    assert _max_rel(out[normal], ref[normal]) <= 2 * EPS32
    assert np.all(out[~normal] == 0.0) and (~normal).sum() > 1000


def test_fast_log1p_small(rng):
    e = np.concatenate([rng.uniform(0.0, 1.0, 400_000), 10.0 ** rng.uniform(-307, 0, 300_000),
                        [4.5e-308, 1e-300, 1e-17, 1e-8, np.sqrt(2) - 1, 0.5, 2.0 / 3.0, 1.0]])
    out = _apply(fast_log1p_small, e)
    ref = np.log1p(e)
    # about 2 ulp (measured 1.96 * eps relative just above 0.5, where one ulp is ~eps relative)
    assert _max_rel(out, ref) <= 2.5 * EPS64
    assert fast_log1p_small(0.0) == 0.0 and _apply(fast_log1p_small, np.zeros(3)).max() == 0.0


def test_fast_log1p_small32(rng):
    e = np.concatenate([rng.uniform(0.0, 1.0, 400_000), 10.0 ** rng.uniform(-37, 0, 300_000),
                        [1e-37, 1e-8, 0.5, 1.0]]).astype(np.float32)
    out = _apply(fast_log1p_small32, e)
    assert out.dtype == np.float32
    assert _max_rel(out, np.log1p(e.astype(np.float64))) <= 2 * EPS32
    assert _apply(fast_log1p_small32, np.zeros(3, np.float32)).max() == 0.0


def _sps_reference(x):
    x = x.astype(np.float64)
    with np.errstate(over="ignore"):
        sp = np.logaddexp(0.0, x)
    e = np.exp(-np.abs(x))
    s = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return sp, s


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fast_softplus_sigmoid_both_precisions(rng, dtype):
    fss, fsp, eps = ((fast_softplus_sigmoid64, fast_softplus64, EPS64) if dtype == np.float64 else
                     (fast_softplus_sigmoid32, fast_softplus32, EPS32))
    big = 700.0 if dtype == np.float64 else 85.0
    x = np.concatenate([rng.uniform(-50, 50, 200_000), rng.uniform(-800, 800, 20_000),
                        rng.uniform(-big, big, 20_000),
                        [np.inf, -np.inf, 0.0, -1e30, 1e30, big, -big]]).astype(dtype)
    sp, s = np.empty_like(x), np.empty_like(x)
    _map2(fss, x, sp, s)
    sp_only = _apply(fsp, x)
    assert sp.dtype == dtype and s.dtype == dtype
    assert np.array_equal(sp, sp_only)
    ref_sp, ref_s = _sps_reference(x)
    assert not np.isnan(sp).any() and not np.isnan(s).any()
    lo = TINY64 if dtype == np.float64 else TINY32
    fin = np.isfinite(ref_sp) & (ref_sp > 4 * lo)
    assert _max_rel(sp[fin], ref_sp[fin]) <= 4 * eps
    assert np.array_equal(sp[np.isinf(ref_sp)], ref_sp[np.isinf(ref_sp)])
    assert np.abs(sp[~fin & np.isfinite(ref_sp)]).max() <= 4 * lo
    ok = ref_s > 4 * lo
    assert _max_rel(s[ok], ref_s[ok]) <= 4 * eps
    assert np.abs(s[~ok]).max() <= 4 * lo
    assert s[x == np.inf][0] == 1.0 and s[x == -np.inf][0] == 0.0 and sp[x == -np.inf][0] == 0.0


# ----------------------------------------------------------------------------- kernels

def _problem(n, K, d, directed, missing, seed, shift=0.3):
    Y, truth = hlsm.simulate(n, K, dim=d, directed=directed, missing=missing, random_state=seed)
    Yenc = hlsm.encode_layers(Y, directed=directed)
    YT = np.ascontiguousarray(Yenc.transpose(0, 2, 1)) if directed else Yenc
    rng = np.random.default_rng(seed + 1)
    z = np.ascontiguousarray(truth.z + shift * rng.standard_normal(truth.z.shape))
    return Y, Yenc, YT, z, truth.alpha.copy()


def _run(kernel, Yenc, YT, z, alpha, directed, ties_from_y=True):
    g, ga = np.empty_like(z, dtype=np.float64), np.empty(alpha.shape[0])
    if kernel is hlsm_nll_grad:  # the reference has no ties_from_y
        return kernel(Yenc, YT, z, alpha, directed, g, ga), g, ga
    return kernel(Yenc, YT, z, alpha, directed, g, ga, ties_from_y), g, ga


def _n_dyads(n, directed):
    return n * (n - 1) // (1 if directed else 2)


def _assert_f32_close(f32, f64, n, directed):
    (f, g, ga), (f_ref, g_ref, ga_ref) = f32, f64
    assert abs(f - f_ref) <= 1e-6 * abs(f_ref)
    assert np.abs(g - g_ref).max() <= 1e-5 * np.abs(g_ref).max()
    assert np.abs(ga - ga_ref).max() <= 1e-8 * _n_dyads(n, directed)


@pytest.mark.parametrize("n,directed,missing,d", [(70, False, 0.0, 2), (70, True, 0.1, 2), (70, False, 0.1, 1),
                                                  (70, True, 0.0, 3), (530, False, 0.1, 2), (530, True, 0.1, 2),
                                                  (300, False, 0.1, 3)])
def test_fast_kernels_equal_reference_and_float32_close(n, directed, missing, d):
    # n = 530 spans three tiles of 256 (the last one ragged)
    _, Yenc, YT, z, alpha = _problem(n, 3, d, directed, missing, seed=d + 10 * directed)
    g0, a0 = np.empty_like(z), np.empty(3)
    f0 = hlsm_nll_grad(Yenc, YT, z, alpha, directed, g0, a0)
    f64 = _run(hlsm_nll_grad_fast, Yenc, YT, z, alpha, directed)
    assert f64[0] == pytest.approx(f0, rel=1e-13)
    assert np.abs(f64[1] - g0).max() <= 1e-13 * np.abs(g0).max()
    np.testing.assert_allclose(f64[2], a0, rtol=1e-12, atol=1e-12 * _n_dyads(n, directed))
    nll_ref = hlsm_nll(Yenc, z, alpha, directed)
    assert hlsm_nll_fast(Yenc, z, alpha, directed) == pytest.approx(nll_ref, rel=1e-13)
    f32 = _run(hlsm_nll_grad_fast32, Yenc, YT, z, alpha, directed)
    _assert_f32_close(f32, f64, n, directed)
    assert abs(hlsm_nll_fast32(Yenc, z, alpha, directed) - nll_ref) <= 1e-6 * nll_ref
    # float32 positions are accepted as they are
    f32b = _run(hlsm_nll_grad_fast32, Yenc, YT, z.astype(np.float32), alpha, directed)
    assert f32b[0] == f32[0] and np.array_equal(f32b[1], f32[1])


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("d", [2, 3])
def test_all_non_tie_pass_both_precisions(directed, d):
    # ties_from_y=False: Y is not read and every dyad is an observed non-tie
    _, _, _, z, alpha = _problem(400, 2, d, directed, 0.0, seed=20 + d)
    zero = np.zeros((2, 400, 400), dtype=np.int8)
    dummy = np.zeros((1, 1, 1), dtype=np.int8)
    ref = _run(hlsm_nll_grad, zero, zero, z, alpha, directed)
    f64 = _run(hlsm_nll_grad_fast, dummy, dummy, z, alpha, directed, False)
    assert f64[0] == pytest.approx(ref[0], rel=1e-13)
    assert np.abs(f64[1] - ref[1]).max() <= 1e-13 * np.abs(ref[1]).max()
    _assert_f32_close(_run(hlsm_nll_grad_fast32, dummy, dummy, z, alpha, directed, False), f64, 400, directed)
    assert hlsm_nll_fast32(dummy, z, alpha, directed, False) == pytest.approx(ref[0], rel=1e-6)
    assert hlsm_nll_fast(dummy, z, alpha, directed, False) == pytest.approx(ref[0], rel=1e-13)


@pytest.mark.parametrize("directed,missing", [(False, 0.0), (False, 0.05), (True, 0.05)])
def test_sparse_likelihood_float32(directed, missing):
    import scipy.sparse as sp
    Y, truth = hlsm.simulate(350, 3, directed=directed, missing=missing, random_state=4)
    layers = [sp.csr_matrix(np.where(np.isnan(Y[k]), np.nan, Y[k])) for k in range(3)]
    S = _hlsm_sparse.encode_sparse(layers, directed=directed)
    z = np.ascontiguousarray(truth.z + 0.2 * np.random.default_rng(0).standard_normal(truth.z.shape))
    alpha = truth.alpha
    Yenc = hlsm.encode_layers(Y, directed=directed)
    YT = np.ascontiguousarray(Yenc.transpose(0, 2, 1)) if directed else Yenc
    dense = _run(hlsm_nll_grad, Yenc, YT, z, alpha, directed)
    f64 = _hlsm_sparse.nll_grad_sparse(S, z, alpha)
    f64b = _hlsm_sparse.nll_grad_sparse(S, z, alpha, dtype=np.float64)
    assert f64[0] == f64b[0] and np.array_equal(f64[1], f64b[1])
    assert f64[0] == pytest.approx(dense[0], rel=1e-12)
    f32 = _hlsm_sparse.nll_grad_sparse(S, z, alpha, dtype=np.float32)
    assert f32[1].dtype == np.float64 and f32[2].dtype == np.float64
    _assert_f32_close(f32, dense, 350, directed)
    nl64 = _hlsm_sparse.nll_sparse(S, z, alpha)
    assert nl64 == pytest.approx(dense[0], rel=1e-12)
    assert _hlsm_sparse.nll_sparse(S, z, alpha, dtype="float32") == pytest.approx(nl64, rel=1e-6)
    per = _hlsm_sparse.nll_sparse(S, z, alpha, per_layer=True, dtype=np.float32)
    np.testing.assert_allclose(per, _hlsm_sparse.nll_sparse(S, z, alpha, per_layer=True), rtol=1e-6)
    with pytest.raises(ValueError, match="dtype"):
        _hlsm_sparse.nll_grad_sparse(S, z, alpha, dtype=np.float16)


@pytest.mark.parametrize("kernel", [hlsm_nll_grad_fast, hlsm_nll_grad_fast32])
@pytest.mark.parametrize("directed,ties", [(False, True), (True, True), (False, False), (True, False)])
def test_thread_count_invariant(kernel, directed, ties):
    _, Yenc, YT, z, alpha = _problem(600, 2, 2, directed, 0.05, seed=6)
    nll_only = hlsm_nll_fast32 if kernel is hlsm_nll_grad_fast32 else hlsm_nll_fast
    old = numba.get_num_threads()
    out = []
    try:
        for th in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(th)
            out.append(_run(kernel, Yenc, YT, z, alpha, directed, ties) + (nll_only(Yenc, z, alpha, directed, ties),))
    finally:
        numba.set_num_threads(old)
    (f1, g1, a1, v1), (f2, g2, a2, v2) = out[0], out[-1]
    assert f1 == f2 and v1 == v2 and np.array_equal(g1, g2) and np.array_equal(a1, a2)


def test_repeated_calls_bit_identical():
    # the summation order must not depend on where buffers happen to be allocated
    _, Yenc, YT, z, alpha = _problem(300, 2, 2, True, 0.05, seed=8)
    for kernel in (hlsm_nll_grad_fast, hlsm_nll_grad_fast32):
        first = _run(kernel, Yenc, YT, z, alpha, True)
        for _ in range(5):
            _junk = [np.empty(int(s)) for s in np.random.default_rng(_).integers(1, 600, 20)]
            again = _run(kernel, Yenc, YT, z, alpha, True)
            assert again[0] == first[0] and np.array_equal(again[1], first[1]) and np.array_equal(again[2], first[2])
            del _junk


def test_extreme_positions_give_finite_results_float32():
    # (float64: tests/hlsm/test_hlsm_fast.py::test_fast_kernel_extreme_eta_is_finite.) In float32,
    # positions and squared distances must fit in float32 (|z| < ~1e19).
    _, Yenc, YT, z, alpha = _problem(30, 2, 2, True, 0.0, seed=7)
    for zscale, a in ((1e6, np.array([1e8, -1e8])), (1e-9, np.array([80.0, -90.0])),
                      (1e15, np.array([0.0, 0.0]))):
        zz = np.ascontiguousarray(z * zscale)
        ref = _run(hlsm_nll_grad, Yenc, YT, zz, a, True)
        f32 = _run(hlsm_nll_grad_fast32, Yenc, YT, zz, a, True)
        assert np.isfinite(f32[0]) and np.isfinite(f32[1]).all() and np.isfinite(f32[2]).all()
        assert f32[0] == pytest.approx(ref[0], rel=1e-6)
        assert np.isfinite(hlsm_nll_fast32(Yenc, zz, a, True))


def test_user_njit_can_call_new_kernels():
    _, Yenc, _, z, alpha = _problem(40, 2, 2, False, 0.0, seed=9)

    @njit
    def user(Y, z, alpha):
        g = np.empty_like(z)
        ga = np.empty(alpha.shape[0])
        f64 = hlsm_nll_grad_fast(Y, Y, z, alpha, False, g, ga)
        f32 = hlsm_nll_grad_fast32(Y, Y, z, alpha, False, g, ga)
        n32 = hlsm_nll_fast32(Y, z, alpha, False)
        sp, s = fast_softplus_sigmoid32(np.float32(0.0))
        return f64, f32, n32, fast_exp_neg(-1.0), fast_log1p_small(1.0), sp, s

    f64, f32, n32, e, l1p, sp, s = user(Yenc, z, alpha)
    assert f32 == pytest.approx(f64, rel=1e-6) and n32 == pytest.approx(f64, rel=1e-6)
    assert e == pytest.approx(np.exp(-1.0), rel=1e-15) and l1p == pytest.approx(np.log(2.0), rel=1e-15)
    assert sp == pytest.approx(np.log(2.0), rel=1e-6) and s == 0.5


def test_parallel_loop_bodies_are_compiled_with_int64_indices_only():
    # First-run cost: each parallel kernel's prange body is one call to a jitted helper. Inside
    # the gufunc Numba types the loop index uint64; passed on uncast, the helper would be
    # compiled a second time (and its code generated again in every wrapper layer). Fresh,
    # uncached copies of the kernels are compiled here: a kernel loaded from the cache does
    # not type its helpers at all.
    from numba import types

    from fastgrad.kernels import hlsm as H
    _, Yenc, YT, z, alpha = _problem(30, 2, 2, True, 0.05, seed=3)
    K, n, _ = z.shape
    fresh = {name: njit(parallel=True)(getattr(H, name).py_func)
             for name in ("hlsm_nll_grad_fast", "hlsm_nll_fast", "hlsm_nll_grad_ext")}
    g, ga = np.empty_like(z), np.empty(K)
    f = fresh["hlsm_nll_grad_fast"](Yenc, YT, z, alpha, True, g, ga, True)
    assert f == _run(hlsm_nll_grad_fast, Yenc, YT, z, alpha, True)[0]
    assert fresh["hlsm_nll_fast"](Yenc, z, alpha, True, True) == hlsm_nll_fast(Yenc, z, alpha, True)
    so = np.zeros((K, n))
    X = np.zeros((0, n, n))
    fresh["hlsm_nll_grad_ext"](Yenc, YT, z, alpha, so, so, X, X, np.zeros((K, 0)), True, True, True,
                               g, ga, np.empty((K, n)), np.empty((K, n)), np.empty((K, 0)))
    for helper, index_arg in ((H._tile, 13), (H._nll_row_task, 8), (H._ext_rows, 19)):
        sigs = helper.signatures
        assert sigs, helper
        assert all(sig[index_arg] == types.int64 for sig in sigs), (helper, sigs)
