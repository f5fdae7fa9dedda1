"""Validation and int8 encoding of dense multiplex layers in one compiled pass."""
import numpy as np
from numba import njit, prange

from ._twins import serial_twin

#: Side of the square tiles of the symmetry check (two int8 tiles stay in L1).
_TILE = 64


@njit(parallel=True, cache=True)
def hlsm_encode_layers(A, directed, out, first_bad, asym, counts):
    """Encode dense layers ``A`` (K, n, n) of 0 / 1 / NaN into int8 ``out``.

    ``out[k, i, j]`` is 1 for a tie, 0 for a non-tie and -1 for NaN (missing)
    and on the diagonal (ignored, whatever its value).

    Parameters
    ----------
    A : ndarray, shape (K, n, n)
        Any real dtype (view bool arrays as uint8).
    directed : bool
        False: also check that every layer is symmetric (NaN pattern included).
    out : int8 ndarray, shape (K, n, n)
        Filled with the encoding.
    first_bad : int64 ndarray, shape (K, n)
        Filled with the first column ``j`` of row ``(k, i)`` holding a value other
        than 0, 1 or NaN off the diagonal, or -1.
    asym : int64 ndarray, shape (K, n)
        Undirected only: the first column ``j < i`` of row ``(k, i)`` with
        ``out[k, i, j] != out[k, j, i]``, or -1 (left at -1 if ``directed``).
    counts : int64 ndarray, shape (K, 2)
        Filled with the observed dyads (off-diagonal, non-missing entries) and
        the ties of each layer, over ordered dyads.
    """
    K, n = A.shape[0], A.shape[1]
    rows = np.empty((K * n, 2), dtype=np.int64)  # every row is written (np.zeros would be a parfor of its own)
    for r in prange(K * n):
        k = r // n
        i = r - k * n
        n_bad = 0
        n_obs = 0
        n_tie = 0
        # branch-free body (vectorises); the diagonal is fixed up after the loop
        for j in range(n):
            v = A[k, i, j]
            t = v == 1
            ok = t | (v == 0)
            out[k, i, j] = np.int8(t) - np.int8(not ok)
            n_obs += ok
            n_tie += t
            n_bad += (not ok) & (v == v)
        v = A[k, i, i]
        t = v == 1
        ok = t | (v == 0)
        n_obs -= ok
        n_tie -= t
        n_bad -= (not ok) & (v == v)
        out[k, i, i] = -1
        bad = -1
        if n_bad > 0:
            for j in range(n):
                v = A[k, i, j]
                if j != i and not (v == 0 or v == 1) and v == v:
                    bad = j
                    break
        first_bad[k, i] = bad
        asym[k, i] = -1
        rows[r, 0] = n_obs
        rows[r, 1] = n_tie
    for k in range(K):
        counts[k, 0] = 0
        counts[k, 1] = 0
        for i in range(n):
            counts[k, 0] += rows[k * n + i, 0]
            counts[k, 1] += rows[k * n + i, 1]
    if directed:
        return
    nt = (n + _TILE - 1) // _TILE
    for t in prange(K * nt):
        k = t // nt
        bi = t - k * nt
        i0 = bi * _TILE
        i1 = min(n, i0 + _TILE)
        for bj in range(bi + 1):
            j0 = bj * _TILE
            j1 = min(n, j0 + _TILE)
            for i in range(i0, i1):
                if asym[k, i] >= 0:
                    continue
                for j in range(j0, min(j1, i)):
                    if out[k, i, j] != out[k, j, i]:
                        asym[k, i] = j
                        break


hlsm_encode_layers_serial = njit(cache=True)(serial_twin(hlsm_encode_layers.py_func, "hlsm_encode_layers_serial", """\
:func:`hlsm_encode_layers` on one thread (the same outputs; compiles about 1 s faster):
for small inputs, where a parallel launch would not pay.
"""))
