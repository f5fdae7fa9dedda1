"""The vector row operations of fastgrad.kernels._simd against NumPy, for every row length
around the vector width, both dtypes, and arrays the vector code does not take."""
import numpy as np
import pytest
from numba import njit

from fastgrad.kernels._simd import row_axpby, row_dot, row_dot64, row_step


@njit(cache=True)
def _dot(A, a, B, b):
    return row_dot(A, a, B, b)


@njit(cache=True)
def _dot64(A, a, B, b):
    return row_dot64(A, a, B, b)


@njit(cache=True)
def _step(A, a, B, b, s, l):
    row_step(A, a, B, b, s, l)


@njit(cache=True)
def _axpby(A, a, B, b, s, l):
    row_axpby(A, a, B, b, s, l)


LENGTHS = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 100, 112]


def _rows(rng, dtype, k, layout):
    A = rng.standard_normal((5, k)).astype(dtype)
    B = rng.standard_normal((4, k)).astype(dtype)
    if layout == "F":
        return np.asfortranarray(A), np.asfortranarray(B)
    if layout == "strided":                            # every other column: not C-contiguous
        A2 = np.zeros((5, 2 * k), dtype)
        B2 = np.zeros((4, 2 * k), dtype)
        A2[:, ::2] = A
        B2[:, ::2] = B
        return A2[:, ::2], B2[:, ::2]
    return A, B


@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_operations_match_numpy(dtype, layout):
    rng = np.random.default_rng(7)
    tol = 2e-6 if dtype == np.float32 else 1e-14
    for k in LENGTHS:
        A, B = _rows(rng, dtype, k, layout)
        A0, B0 = A.copy(), B.copy()
        want = A0[2].astype(np.float64) @ B0[3].astype(np.float64)
        got = _dot(A, 2, B, 3)
        assert abs(got - want) <= tol * (1 + np.abs(A0[2]) @ np.abs(B0[3])), (k, got, want)
        got64 = _dot64(A, 2, B, 3)                     # float64 products and sums
        assert abs(got64 - want) <= 1e-14 * (1 + np.abs(A0[2]) @ np.abs(B0[3])), (k, got64, want)
        s, l = 0.93, -0.27
        _step(A, 2, B, 3, s, l)
        ds, dl = dtype(s), dtype(l)
        np.testing.assert_allclose(A[2], ds * A0[2] + dl * B0[3], rtol=tol, atol=tol)
        np.testing.assert_allclose(B[3], ds * B0[3] + dl * A0[2], rtol=tol, atol=tol)
        others_a = np.arange(5) != 2
        others_b = np.arange(4) != 3
        assert np.array_equal(A[others_a], A0[others_a]) and np.array_equal(B[others_b], B0[others_b])
        assert _dot(A, -3, B, -1) == _dot(A, 2, B, 3)          # negative rows count from the end
        A1, B1 = A.copy(), B.copy()
        _axpby(A, 0, B, 1, 1.5, 0.25)
        np.testing.assert_allclose(A[0], dtype(1.5) * A1[0] + dtype(0.25) * B1[1], rtol=tol, atol=tol)
        assert np.array_equal(A[1:], A1[1:]) and np.array_equal(B, B1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_do_not_depend_on_where_the_rows_start(dtype):
    # The masked last chunk and the fixed summation order make the results a function of
    # the row length only: rows at an odd offset into a buffer, or with padding columns of
    # zeros after them, give the same bits as an aligned unpadded array.
    rng = np.random.default_rng(8)
    for k in (17, 100):
        A = rng.standard_normal((3, k)).astype(dtype)
        B = rng.standard_normal((3, k)).astype(dtype)
        buf = np.zeros(3 * k + 1, dtype)
        A_off = buf[1:].reshape(3, k)
        A_off[:] = A
        w = 64 // np.dtype(dtype).itemsize
        kp = -(-k // w) * w + w                        # whole vectors, one more than needed
        B_pad = np.zeros((3, kp), dtype)
        B_pad[:, :k] = B
        A_pad = np.zeros((3, kp), dtype)
        A_pad[:, :k] = A
        d = _dot(A, 1, B, 2)
        assert _dot(A_off, 1, B, 2) == d
        assert _dot(A_pad, 1, B_pad, 2) == d
        assert _dot64(A_off, 1, B, 2) == _dot64(A_pad, 1, B_pad, 2) == _dot64(A, 1, B, 2)
        B_off = B.copy()
        _step(A, 1, B, 2, 0.9, 0.1)
        _step(A_off, 1, B_off, 2, 0.9, 0.1)
        _step(A_pad, 1, B_pad, 2, 0.9, 0.1)
        assert np.array_equal(A_off, A) and np.array_equal(B_off, B) and np.array_equal(A_pad[:, :k], A)
        assert np.array_equal(B_pad[:, :k], B) and not B_pad[:, k:].any()


def test_padded_rows_are_aligned_whole_vectors_of_zeros():
    from fastgrad.mf._model import _padded_rows
    for dtype, k, kp in ((np.float32, 100, 112), (np.float64, 100, 104), (np.float32, 16, 16),
                         (np.float64, 3, 8)):
        X = _padded_rows(7, k, dtype)
        assert X.shape == (7, kp) and X.dtype == dtype and X.flags.c_contiguous
        assert X.ctypes.data % 64 == 0 and not X.any()


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_on_padded_working_rows_is_bitwise_the_unpadded_fit(monkeypatch, dtype, n_threads):
    # fit pads the working factors (zero columns up to whole vectors); the padding must
    # change no bit of the fit, the objective or the held-out predictions
    from fastgrad import mf
    from fastgrad.mf import _model
    rng = np.random.default_rng(5)
    n = 3000
    users, items = rng.integers(0, 80, n), rng.integers(0, 60, n)
    r = rng.integers(1, 6, n).astype(float)
    kw = dict(n_factors=37, n_epochs=4, random_state=1, dtype=dtype, n_threads=n_threads,
              train_metrics="exact", validation=(users[:300], items[:300], r[:300]))
    padded = mf.fit(users, items, r, **kw)
    monkeypatch.setattr(_model, "_padded_rows", lambda n_rows, k, dt: np.zeros((n_rows, k), dt))
    plain = mf.fit(users, items, r, **kw)
    for name in ("P", "Q", "user_bias", "item_bias", "history", "train_rmse", "val_rmse"):
        assert np.array_equal(getattr(padded, name), getattr(plain, name)), name
    assert padded.objective == plain.objective
    assert padded.P.shape == (80, 37) and padded.P.flags.c_contiguous


def test_sgd_kernels_inline_the_row_operations():
    # an out-of-line row_step cost a third of every SGD step (arguments on the stack and
    # reference counting per call): the compiled kernels must not call into _simd at all
    import re

    import numba

    from fastgrad.kernels import mf as K
    n = 6
    u = np.array([0, 1, 2, 0, 1, 2], np.int32)
    r = np.ones(n, np.float32)
    for dtype in (np.float32, np.float64):
        P = np.zeros((3, 20), dtype)
        b = np.zeros(3, dtype)
        for kernel, args in ((K.mf_sgd_epoch, (u, u, r, 1.0, b, b, P, P.copy(), 0.01, 0.1, 0.1)),
                             (K.mf_penalty, (b, b, P, P, u[:3], u[:3], 0.1, 0.1))):
            fresh = numba.njit(fastmath=K._FASTMATH)(kernel.py_func)   # cached code has no IR
            fresh(*args)
            ir = fresh.inspect_llvm(fresh.signatures[0])
            callees = set(re.findall(r"call [^@(]*@\"?([\w.$]+)", ir))
            assert callees and not [c for c in callees if "_simd" in c], (kernel, dtype, callees)
