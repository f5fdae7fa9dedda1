"""The serial twins of the parallel HLSM kernels give bit-identical results, and the
front-ends pick them for calls that run on one thread (first-fit compile time)."""
import numba
import numpy as np
import pytest

from fastgrad import _threads
from fastgrad.hlsm._base import ext_kernel
from fastgrad.kernels import (hlsm_encode_layers, hlsm_encode_layers_serial, hlsm_nll_grad_ext,
                              hlsm_nll_grad_ext_pairs, hlsm_nll_grad_ext_serial)


def _layers(rng, K, n, directed):
    A = (rng.random((K, n, n)) < 0.2).astype(float)
    if not directed:
        A = np.triu(A, 1)
        A = A + A.transpose(0, 2, 1)
    A[0, 3, 5] = np.nan
    if not directed:
        A[0, 5, 3] = np.nan
    return A


def _encode(f, A, directed):
    K, n = A.shape[:2]
    out = [np.empty((K, n, n), np.int8), np.empty((K, n), np.int64), np.empty((K, n), np.int64),
           np.empty((K, 2), np.int64)]
    f(A, directed, *out)
    return out


@pytest.mark.parametrize("directed", [False, True])
def test_encode_serial_twin_is_identical(directed):
    rng = np.random.default_rng(1)
    A = _layers(rng, 3, 150, directed)      # > one 64-row tile of the symmetry check
    A[1, 7, 9] = 2.0                        # a bad value (both halves of the pair if undirected)
    if not directed:
        A[1, 9, 7] = 2.0
    if not directed:
        A[2, 10, 4] = 1 - A[2, 4, 10]       # an asymmetric pair
    par, ser = _encode(hlsm_encode_layers, A, directed), _encode(hlsm_encode_layers_serial, A, directed)
    for a, b in zip(par, ser):
        np.testing.assert_array_equal(a, b)
    Y, bad, asym, counts = ser
    # against NumPy: the encoding, the bad entry, the asymmetry and the counts
    ref = np.where(A == 1, 1, np.where(A == 0, 0, -1)).astype(np.int8)
    ref[:, np.arange(150), np.arange(150)] = -1
    np.testing.assert_array_equal(Y, ref)
    assert bad[1, 7] == 9 and (bad >= 0).sum() == (1 if directed else 2)
    if not directed:
        assert asym[2, 10] == 4 and (asym >= 0).sum() == 1
    off = ~np.eye(150, dtype=bool)
    obs = ((A == 0) | (A == 1)) & off
    np.testing.assert_array_equal(counts[:, 0], obs.sum(axis=(1, 2)))
    np.testing.assert_array_equal(counts[:, 1], ((A == 1) & off).sum(axis=(1, 2)))


@pytest.mark.parametrize("directed", [False, True])
def test_small_inputs_are_encoded_by_numpy_with_the_kernels_outputs(directed):
    """The front-end encodes small layers in NumPy (no kernel compiled on a first fit): every
    output equals the kernel's, with bad values, NaN, diagonal garbage, asymmetry, dtypes."""
    from fastgrad.hlsm._dense import _encode_numpy
    rng = np.random.default_rng(7)
    for trial in range(60):
        K, n = int(rng.integers(1, 4)), int(rng.integers(3, 40))
        A = _layers(rng, K, max(n, 6), directed)
        n = A.shape[1]
        for _ in range(int(rng.integers(0, 3))):
            A[rng.integers(K), rng.integers(n), rng.integers(n)] = rng.choice([2.0, -1.0, np.nan, 1.0, 0.5])
        if trial % 5 == 0:
            A[:, np.arange(n), np.arange(n)] = 7.0
        dtype = [np.float64, np.float32, np.int64, np.uint8][trial % 4]
        A = A.astype(dtype) if dtype in (np.float64, np.float32) else np.nan_to_num(A, nan=3).astype(dtype)
        for a, b in zip(_encode(_encode_numpy, A, directed), _encode(hlsm_encode_layers_serial, A, directed)):
            np.testing.assert_array_equal(a, b)


def test_front_end_uses_numpy_below_small_work_and_the_kernel_above(monkeypatch):
    from fastgrad.hlsm import _dense
    calls = []
    orig = _dense._encode_numpy
    monkeypatch.setattr(_dense, "_encode_numpy", lambda *a: calls.append(a[0].shape) or orig(*a))
    A = _layers(np.random.default_rng(0), 2, 30, False)
    Y_small = _dense.encode_layers(A)
    assert calls == [(2, 30, 30)]
    monkeypatch.setattr(_threads, "SMALL_WORK", 10)
    Y_kernel = _dense.encode_layers(A)
    assert len(calls) == 1
    np.testing.assert_array_equal(Y_small, Y_kernel)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("with_grad", [True, False])
@pytest.mark.parametrize("ties_from_y", [True, False])
def test_ext_serial_twin_is_identical(directed, with_grad, ties_from_y):
    rng = np.random.default_rng(2)
    K, n, d, p = 3, 70, 2, 2
    Y = _encode(hlsm_encode_layers_serial, _layers(rng, K, n, directed), directed)[0]
    YT = np.ascontiguousarray(Y.transpose(0, 2, 1))
    z = rng.standard_normal((K, n, d))
    alpha = rng.standard_normal(K)
    so = rng.standard_normal((K, n))
    ro = rng.standard_normal((K, n)) if directed else so
    X = rng.standard_normal((p, n, n))
    X = X + X.transpose(0, 2, 1)
    XT = np.ascontiguousarray(X.transpose(0, 2, 1))
    beta = rng.standard_normal((K, p))
    res = []
    for f in (hlsm_nll_grad_ext, hlsm_nll_grad_ext_serial):
        g = [np.zeros_like(z), np.zeros(K), np.zeros((K, n)), np.zeros((K, n)), np.zeros((K, p))]
        res.append([f(Y, YT, z, alpha, so, ro, X, XT, beta, directed, ties_from_y, with_grad, *g)] + g)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


def test_front_ends_pick_the_serial_twin_for_one_thread_calls():
    assert ext_kernel(_threads.SMALL_WORK - 1) is hlsm_nll_grad_ext_serial
    # small undirected problems: the pair kernel, whatever the thread count
    assert ext_kernel(_threads.SMALL_WORK - 1, directed=False) is hlsm_nll_grad_ext_pairs
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        assert ext_kernel(10 * _threads.SMALL_WORK) is hlsm_nll_grad_ext_serial
        assert ext_kernel(10 * _threads.SMALL_WORK, directed=False) is hlsm_nll_grad_ext_serial
        assert ext_kernel(_threads.SMALL_WORK - 1, directed=False) is hlsm_nll_grad_ext_pairs
        if numba.config.NUMBA_NUM_THREADS > 1:
            numba.set_num_threads(2)
            assert ext_kernel(10 * _threads.SMALL_WORK) is hlsm_nll_grad_ext
            assert ext_kernel(10 * _threads.SMALL_WORK, directed=False) is hlsm_nll_grad_ext
    finally:
        numba.set_num_threads(old)


@pytest.mark.parametrize("ties_from_y", [True, False])
@pytest.mark.parametrize("with_grad", [True, False])
@pytest.mark.parametrize("p", [0, 2])
def test_pair_kernel_matches_the_row_kernel(ties_from_y, with_grad, p):
    """hlsm_nll_grad_ext_pairs (each pair once, both ends updated) against the row kernel
    (each row's own sums), undirected, with sociality effects, covariates and missing dyads;
    outputs the kernels do not write stay untouched."""
    rng = np.random.default_rng(4)
    K, n, d = 3, 37, 3
    Y = _encode(hlsm_encode_layers_serial, _layers(rng, K, n, False), False)[0]
    miss = np.triu(rng.random((K, n, n)) < 0.05, 1)
    Y[miss | miss.transpose(0, 2, 1)] = -1
    z = rng.standard_normal((K, n, d))
    alpha = rng.standard_normal(K)
    g = rng.standard_normal((K, n))
    X = rng.standard_normal((p, n, n))
    X = X + X.transpose(0, 2, 1)
    beta = rng.standard_normal((K, p))
    res = []
    for f in (hlsm_nll_grad_ext_serial, hlsm_nll_grad_ext_pairs):
        out = [np.full_like(z, 9.0), np.full(K, 9.0), np.full((K, n), 9.0), np.full((K, n), 9.0),
               np.full((K, p), 9.0)]
        res.append([f(Y, Y, z, alpha, g, g, X, X, beta, False, ties_from_y, with_grad, *out)] + out)
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    assert res[1][0] > 0 and (not with_grad or np.abs(res[1][1]).max() > 1e-3)
    with pytest.raises(ValueError, match="undirected"):
        hlsm_nll_grad_ext_pairs(Y, Y, z, alpha, g, g, X, X, beta, True, ties_from_y, with_grad, *res[1][1:])


def test_pair_kernel_gradient_is_the_finite_difference():
    rng = np.random.default_rng(5)
    K, n, d, p = 2, 9, 2, 1
    Y = _encode(hlsm_encode_layers_serial, _layers(rng, K, n, False), False)[0]
    Y[0, 2, 5] = Y[0, 5, 2] = -1
    z, alpha, g = rng.standard_normal((K, n, d)), rng.standard_normal(K), rng.standard_normal((K, n))
    X = rng.standard_normal((p, n, n))
    X = X + X.transpose(0, 2, 1)
    beta = rng.standard_normal((K, p))
    out = [np.empty_like(z), np.empty(K), np.empty((K, n)), np.empty((K, n)), np.empty((K, p))]
    hlsm_nll_grad_ext_pairs(Y, Y, z, alpha, g, g, X, X, beta, False, True, True, *out)
    nogr = [np.empty_like(a) for a in out]

    def f(z_, a_, g_, b_):
        return hlsm_nll_grad_ext_pairs(Y, Y, z_, a_, g_, g_, X, X, b_, False, True, False, *nogr)
    h = 1e-6
    for x, grad, pos in ((z, out[0], 0), (alpha, out[1], 1), (g, out[2], 2), (beta, out[4], 3)):
        fd = np.empty_like(x)
        for idx in np.ndindex(x.shape):
            args = [z, alpha, g, beta]
            up, dn = x.copy(), x.copy()
            up[idx] += h
            dn[idx] -= h
            fd[idx] = (f(*[up if q == pos else a for q, a in enumerate(args)])
                       - f(*[dn if q == pos else a for q, a in enumerate(args)])) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)
    assert np.all(out[3] == 0.0)                   # undirected: no receiver gradient
