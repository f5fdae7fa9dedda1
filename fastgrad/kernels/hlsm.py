"""HLSM kernels: negative log-likelihood and gradient of the multiplex latent space model.

Model: for layer ``k`` and nodes ``i != j``,
``eta_ijk = alpha_k - ||z_ik - z_jk||^2`` and ``P(y_ijk = 1) = sigmoid(eta_ijk)``.

Data encoding used by every kernel here (what :func:`fastgrad.hlsm.encode_layers`
produces): ``Y`` is an ``int8`` array of shape ``(K, n, n)`` with 1 = tie,
0 = no tie and -1 = missing dyad (left out of the likelihood). The diagonal is
never read.

Derivation (``f = softplus(eta) - y * eta`` per observed dyad):
``df/deta = sigmoid(eta) - y``, ``deta/dz_i = -2 (z_i - z_j)``, ``deta/dalpha = 1``.
Each node's gradient row is accumulated by the thread that owns that node, over
all partners ``j``, so there are no data races, and per-node partial sums are
reduced serially in a fixed order: results do not depend on the thread count.
"""
import numpy as np
from numba import njit, prange

from ._math import fast_softplus_sigmoid, softplus, softplus_sigmoid

__all__ = ["hlsm_nll_grad", "hlsm_nll", "hlsm_pair_probabilities", "hlsm_nll_grad_fast", "hlsm_nll_fast",
           "hlsm_edge_correction"]


@njit(cache=True)
def _transpose_positions(z):
    K, n, d = z.shape
    zt = np.empty((K, d, n))
    for k in range(K):
        for i in range(n):
            for c in range(d):
                zt[k, c, i] = z[k, i, c]
    return zt


@njit(parallel=True, cache=True)
def hlsm_nll_grad(Y, YT, z, alpha, directed, grad_z, grad_alpha):
    """Negative log-likelihood and its gradient in ``z`` and ``alpha``.

    Parameters
    ----------
    Y : int8 array, shape (K, n, n)
        1 tie, 0 no tie, -1 missing. For ``directed=False`` it must be symmetric
        and only pairs ``j < i`` count once each.
    YT : int8 array, shape (K, n, n)
        ``Y`` with each layer transposed (C-contiguous). Only read when
        ``directed``; pass ``Y`` itself for undirected data.
    z : float64 array, shape (K, n, d)
        Layer positions ``z_ik = b_i + eps_ik``.
    alpha : float64 array, shape (K,)
        Layer intercepts.
    directed : bool
        Sum over ordered pairs ``i != j`` (True) or pairs ``j < i`` (False).
    grad_z : float64 array, shape (K, n, d)
        Output: ``d nll / d z``. The gradient in ``b`` is ``grad_z.sum(0)``
        and in ``eps`` it is ``grad_z`` itself.
    grad_alpha : float64 array, shape (K,)
        Output: ``d nll / d alpha``.

    Returns
    -------
    float
        The negative log-likelihood (a sum over observed dyads).
    """
    K, n, d = z.shape
    zt = _transpose_positions(z)
    nll_part = np.zeros(K * n)
    ga_part = np.zeros(K * n)
    half = 1.0 if directed else 0.5
    for t in prange(K * n):
        k = t // n
        i = t - k * n
        a = alpha[k]
        zi = np.empty(d)
        for c in range(d):
            zi[c] = zt[k, c, i]
        g = np.zeros(d)
        nl = 0.0
        ga = 0.0
        for j in range(n):
            if j == i:
                continue
            y1 = Y[k, i, j]
            dist = 0.0
            for c in range(d):
                diff = zi[c] - zt[k, c, j]
                dist += diff * diff
            eta = a - dist
            sp, s = softplus_sigmoid(eta)
            r = 0.0
            if y1 >= 0:
                yf = float(y1)
                nl += sp - yf * eta
                ga += s - yf
                r += s - yf
            if directed:
                y2 = YT[k, i, j]
                if y2 >= 0:
                    r += s - float(y2)
            else:
                r += r
            # d eta / d z_i = -2 (z_i - z_j); undirected r was doubled, halved below
            for c in range(d):
                g[c] += r * (zi[c] - zt[k, c, j])
        for c in range(d):
            grad_z[k, i, c] = -2.0 * half * g[c]
        nll_part[t] = half * nl
        ga_part[t] = half * ga
    nll = 0.0
    for k in range(K):
        acc = 0.0
        for i in range(n):
            acc += ga_part[k * n + i]
            nll += nll_part[k * n + i]
        grad_alpha[k] = acc
    return nll


@njit(parallel=True, cache=True)
def hlsm_nll(Y, z, alpha, directed):
    """Negative log-likelihood only (cheaper: no gradient, half the pairs if undirected).

    Parameters are as for :func:`hlsm_nll_grad`.
    """
    K, n, d = z.shape
    zt = _transpose_positions(z)
    part = np.zeros(K * n)
    for t in prange(K * n):
        k = t // n
        i = t - k * n
        a = alpha[k]
        nl = 0.0
        jmax = n if directed else i
        for j in range(jmax):
            if j == i:
                continue
            y1 = Y[k, i, j]
            if y1 < 0:
                continue
            dist = 0.0
            for c in range(d):
                diff = zt[k, c, i] - zt[k, c, j]
                dist += diff * diff
            eta = a - dist
            nl += softplus(eta) - float(y1) * eta
        part[t] = nl
    total = 0.0
    for t in range(K * n):
        total += part[t]
    return total


@njit(parallel=True, cache=True)
def hlsm_pair_probabilities(z, alpha):
    """Link probabilities ``sigmoid(alpha_k - ||z_ik - z_jk||^2)``, shape (K, n, n).

    The diagonal is set to 0.
    """
    K, n, d = z.shape
    P = np.empty((K, n, n))
    for t in prange(K * n):
        k = t // n
        i = t - k * n
        for j in range(n):
            if j == i:
                P[k, i, j] = 0.0
                continue
            dist = 0.0
            for c in range(d):
                diff = z[k, i, c] - z[k, j, c]
                dist += diff * diff
            _, s = softplus_sigmoid(alpha[k] - dist)
            P[k, i, j] = s
    return P


# ----------------------------------------------------------------------------- fast path
#
# Same formulas as above, arranged so that LLVM vectorises the loop over
# partners j and every unordered pair is evaluated once:
#
# * eta_ij = eta_ji, so one exponential serves the dyads (i, j) and (j, i)
#   (directed) and the gradients of both endpoints. Pairs are processed in
#   square tiles (I, J), I >= J, of the lower triangle, in parallel.
# * Race-free and thread-count independent: the partial gradient sums of node
#   i over the partners in block P go to their own slot ``gacc[k, P, :, i]``;
#   each slot is written by exactly one tile, and slots are added in a fixed
#   order at the end (so 1 and 2 threads give bit-identical results).
# * Coordinates stored (K, d, n) so that z_jk is read contiguously; ties read
#   as int8 rows (``Y[k, i, J]`` and ``YT[k, i, J] = Y[k, J, i]``); masks as
#   selects; softplus and sigmoid from one :func:`fast_exp`; sums over j may be
#   reassociated (``fastmath`` reassoc/contract only: no NaN/inf assumptions).

_FASTMATH = {"reassoc", "contract"}


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _tile_row_d2(yrow, ytrow, x0, x1, xi0, xi1, a, use2, j0, j1, rbuf, lbuf):
    """One row i against partners j0 <= j < j1 (d = 2): residuals ``d nll / d eta``
    into ``rbuf[j - j0]`` and losses into ``lbuf[j - j0]``; returns the sums
    (nll, dalpha, g0, g1) from :func:`_row_sums_d2`.

    The element-wise loop and the reductions are separate loops on purpose: a
    loop that both stores and reduces is vectorised behind a runtime alias check
    whose outcome depends on where the buffers happen to be allocated, which
    would make the summation order (and the last bit of the result) vary from
    call to call. Reductions over loads only always take the same path.
    """
    for j in range(j0, j1):
        d0 = xi0 - x0[j]
        d1 = xi1 - x1[j]
        eta = a - (d0 * d0 + d1 * d1)
        sp, s = fast_softplus_sigmoid(eta)
        y1 = yrow[j]
        y2 = ytrow[j]
        o1 = y1 >= 0
        o2 = (y2 >= 0) & use2
        res1 = s - 1.0 if y1 == 1 else s
        res2 = s - 1.0 if y2 == 1 else s
        res1 = res1 if o1 else 0.0
        res2 = res2 if o2 else 0.0
        l1 = sp - eta if y1 == 1 else sp
        l2 = sp - eta if y2 == 1 else sp
        lbuf[j - j0] = (l1 if o1 else 0.0) + (l2 if o2 else 0.0)
        rbuf[j - j0] = res1 + res2
    return _row_sums_d2(x0, x1, xi0, xi1, j0, j1, rbuf, lbuf)


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _row_sums_d2(x0, x1, xi0, xi1, j0, j1, rbuf, lbuf):
    nl = 0.0
    ga = 0.0
    g0 = 0.0
    g1 = 0.0
    for j in range(j0, j1):
        r = rbuf[j - j0]
        nl += lbuf[j - j0]
        ga += r
        g0 += r * (xi0 - x0[j])
        g1 += r * (xi1 - x1[j])
    return nl, ga, g0, g1


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _scatter_partners(rbuf, x, xi, acc, j0, j1):
    """``acc[j] -= r_j (x_i - x_j)`` for j0 <= j < j1: partner j's share of the pair (one coordinate)."""
    for j in range(j0, j1):
        acc[j] -= rbuf[j - j0] * (xi - x[j])


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _tile_row_general(yrow, ytrow, zk, zi, a, use2, j0, j1, gi, buf, lbuf):
    """As :func:`_tile_row_d2` for any d: gradient sums in ``gi`` (d,), residuals in ``buf``."""
    d = zk.shape[0]
    m = j1 - j0
    for j in range(m):
        buf[j] = 0.0
    for c in range(d):
        xc = zk[c]
        zic = zi[c]
        for j in range(m):
            diff = zic - xc[j0 + j]
            buf[j] += diff * diff
    for j in range(m):
        eta = a - buf[j]
        sp, s = fast_softplus_sigmoid(eta)
        y1 = yrow[j0 + j]
        y2 = ytrow[j0 + j]
        o1 = y1 >= 0
        o2 = (y2 >= 0) & use2
        res1 = s - 1.0 if y1 == 1 else s
        res2 = s - 1.0 if y2 == 1 else s
        res1 = res1 if o1 else 0.0
        res2 = res2 if o2 else 0.0
        l1 = sp - eta if y1 == 1 else sp
        l2 = sp - eta if y2 == 1 else sp
        lbuf[j] = (l1 if o1 else 0.0) + (l2 if o2 else 0.0)
        buf[j] = res1 + res2
    nl = 0.0
    ga = 0.0
    for j in range(m):
        nl += lbuf[j]
        ga += buf[j]
    for c in range(d):
        xc = zk[c]
        zic = zi[c]
        g = 0.0
        for j in range(m):
            g += buf[j] * (zic - xc[j0 + j])
        gi[c] = g
    return nl, ga


@njit(cache=True)
def _tile_block_size(n):
    # at most ~32 blocks (bounds the K * blocks * d * n partial-gradient store),
    # at least 256 partners per inner loop
    b = max(256, (n + 31) // 32)
    return min(b, n)


@njit(cache=True)
def _tile_index(t, nb):
    """t-th tile (I, J), I >= J, of the lower block triangle in row-major order."""
    I = int((np.sqrt(8.0 * t + 1.0) - 1.0) * 0.5)
    while I * (I + 1) // 2 > t:
        I -= 1
    while (I + 1) * (I + 2) // 2 <= t:
        I += 1
    return I, t - I * (I + 1) // 2


@njit(parallel=True, cache=True)
def hlsm_nll_grad_fast(Y, YT, z, alpha, directed, grad_z, grad_alpha, ties_from_y=True):
    """Fast negative log-likelihood and gradient (same contract as :func:`hlsm_nll_grad`).

    Parameters
    ----------
    Y, YT : int8 arrays, shape (K, n, n)
        Encoded ties and their transpose (for undirected data pass ``Y``
        twice; ``YT`` is then not read).
    z : float64 array, shape (K, n, d)
        Layer positions.
    alpha : float64 array, shape (K,)
        Layer intercepts.
    directed : bool
        Ordered pairs ``i != j`` (True) or pairs ``j < i`` (False).
    grad_z : float64 array, shape (K, n, d)
        Output: ``d nll / d z``.
    grad_alpha : float64 array, shape (K,)
        Output: ``d nll / d alpha``.
    ties_from_y : bool, default=True
        False: ``Y`` and ``YT`` are not read (pass any int8 3-d array) and every
        dyad counts as an observed non-tie. This is the dense part of the
        sparse likelihood (see :func:`hlsm_edge_correction`): it needs
        memory O(K n d) only.

    Returns
    -------
    float
        The negative log-likelihood.

    Notes
    -----
    Each unordered pair is evaluated once (``eta`` is symmetric), with the
    vectorisable :func:`fastgrad.kernels.fast_exp`; results differ from
    :func:`hlsm_nll_grad` only by rounding (about 1e-15 relative) and do not
    depend on the number of threads. The diagonal of ``Y`` is never read.
    Extra memory: ``K * ceil(n / B) * d * n`` floats with ``B >= n / 32``.
    """
    K, n, d = z.shape
    zt = _transpose_positions(z)
    B = _tile_block_size(n)
    nb = (n + B - 1) // B
    ntri = nb * (nb + 1) // 2
    gacc = np.empty((K, nb, d, n))
    zrow = np.zeros(n, dtype=np.int8)
    nll_part = np.zeros(K * ntri)
    ga_part = np.zeros(K * ntri)
    for t in prange(K * ntri):
        k = t // ntri
        I, J = _tile_index(t - k * ntri, nb)
        i0, i1 = I * B, min(n, (I + 1) * B)
        j0, j1 = J * B, min(n, (J + 1) * B)
        a = alpha[k]
        accJ = gacc[k, I]  # (d, n): columns j0:j1 = partners in block I of the nodes in block J
        accJ[:, j0:j1] = 0.0
        accI = gacc[k, J]  # (d, n): columns i0:i1 = partners in block J of the nodes in block I
        nl = 0.0
        ga = 0.0
        gi = np.empty(d)
        buf = np.empty(B)
        lbuf = np.empty(B)
        for i in range(i0, i1):
            jend = i if I == J else j1
            yrow = Y[k, i] if ties_from_y else zrow
            ytrow = YT[k, i] if (directed and ties_from_y) else yrow
            if d == 2:
                rn, rg, g0, g1 = _tile_row_d2(yrow, ytrow, zt[k, 0], zt[k, 1], zt[k, 0, i], zt[k, 1, i], a,
                                              directed, j0, jend, buf, lbuf)
                gi[0] = g0
                gi[1] = g1
            else:
                rn, rg = _tile_row_general(yrow, ytrow, zt[k], zt[k, :, i].copy(), a, directed, j0, jend,
                                           gi, buf, lbuf)
            for c in range(d):
                _scatter_partners(buf, zt[k, c], zt[k, c, i], accJ[c], j0, jend)
            nl += rn
            ga += rg
            if I == J:
                for c in range(d):
                    accI[c, i] += gi[c]  # own block: the slot also collects partners' shares
            else:
                for c in range(d):
                    accI[c, i] = gi[c]
        nll_part[t] = nl
        ga_part[t] = ga
    for t in prange(K * n):
        k = t // n
        i = t - k * n
        for c in range(d):
            g = 0.0
            for p in range(nb):
                g += gacc[k, p, c, i]
            grad_z[k, i, c] = -2.0 * g
    nll = 0.0
    for k in range(K):
        acc = 0.0
        for q in range(ntri):
            acc += ga_part[k * ntri + q]
            nll += nll_part[k * ntri + q]
        grad_alpha[k] = acc
    return nll


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _row_nll(yrow, zk, zi, a, i, jmax, dist):
    d = zk.shape[0]
    for j in range(jmax):
        dist[j] = 0.0
    for c in range(d):
        xc = zk[c]
        zic = zi[c]
        for j in range(jmax):
            diff = zic - xc[j]
            dist[j] += diff * diff
    nl = 0.0
    for j in range(jmax):
        eta = a - dist[j]
        sp, s = fast_softplus_sigmoid(eta)
        y1 = yrow[j]
        loss = sp - eta if y1 == 1 else sp
        nl += loss if ((y1 >= 0) & (j != i)) else 0.0
    return nl


@njit(parallel=True, cache=True)
def hlsm_nll_fast(Y, z, alpha, directed, ties_from_y=True):
    """Fast negative log-likelihood only (same contract as :func:`hlsm_nll`).

    Undirected data visit each pair once (``j < i``). Differs from
    :func:`hlsm_nll` only by rounding (see :func:`hlsm_nll_grad_fast`).
    With ``ties_from_y=False``, ``Y`` is not read and every dyad counts as an
    observed non-tie.
    """
    K, n, d = z.shape
    zt = _transpose_positions(z)
    zrow = np.zeros(n, dtype=np.int8)
    part = np.zeros(K * n)
    for t in prange(K * n):
        k = t // n
        i = t - k * n
        jmax = n if directed else i
        dist = np.empty(max(jmax, 1))
        zi = zt[k, :, i].copy()
        part[t] = _row_nll(Y[k, i] if ties_from_y else zrow, zt[k], zi, alpha[k], i, jmax, dist)
    total = 0.0
    for t in range(K * n):
        total += part[t]
    return total


@njit(parallel=True, cache=True)
def hlsm_edge_correction(t_ptr, t_idx, t_cnt, m_ptr, m_idx, m_cnt, z, alpha, with_grad, grad_z, grad_alpha,
                         layer_nll):
    """Sparse correction turning the all-non-tie likelihood into the real one.

    With ``c_ij`` ties and ``m_ij`` missing dyads among the two dyads of the pair
    {i, j} (at most 1 each when undirected), the likelihood differs from the
    "every dyad an observed non-tie" one (:func:`hlsm_nll_grad_fast` with
    ``ties_from_y=False``) by ``-c_ij eta_ij - m_ij softplus(eta_ij)`` in the
    nll and by ``-c_ij - m_ij sigmoid(eta_ij)`` in ``d nll / d eta_ij``.
    Cost O(edges + missing), memory O(1) beyond the inputs.

    Parameters
    ----------
    t_ptr, m_ptr : int64 arrays, shape (K, n + 1)
        Row pointers (absolute offsets into the index arrays) of the symmetric
        tie-count and missing-count matrices of each layer.
    t_idx, m_idx : int32 or int64 arrays
        Column indices, all layers concatenated.
    t_cnt, m_cnt : float64 arrays
        ``c_ij`` and ``m_ij`` for each stored entry (both (i, j) and (j, i) are stored).
    z : float64 array, shape (K, n, d)
    alpha : float64 array, shape (K,)
    with_grad : bool
        Also add to ``grad_z`` and ``grad_alpha`` (otherwise they are not touched).
    grad_z : float64 array, shape (K, n, d)
        Incremented by the correction of ``d nll / d z``.
    grad_alpha : float64 array, shape (K,)
        Incremented.
    layer_nll : float64 array, shape (K,)
        Incremented by each layer's nll correction.
    """
    K, n, d = z.shape
    nl_part = np.zeros(K * n)
    ga_part = np.zeros(K * n)
    for t in prange(K * n):
        k = t // n
        i = t - k * n
        a = alpha[k]
        g = np.zeros(d)
        nl = 0.0
        ga = 0.0
        for p in range(t_ptr[k, i], t_ptr[k, i + 1]):
            j = t_idx[p]
            c = t_cnt[p]
            dist = 0.0
            for q in range(d):
                diff = z[k, i, q] - z[k, j, q]
                dist += diff * diff
            nl -= c * (a - dist)
            ga -= c
            for q in range(d):
                g[q] -= c * (z[k, i, q] - z[k, j, q])
        for p in range(m_ptr[k, i], m_ptr[k, i + 1]):
            j = m_idx[p]
            m = m_cnt[p]
            dist = 0.0
            for q in range(d):
                diff = z[k, i, q] - z[k, j, q]
                dist += diff * diff
            sp, s = softplus_sigmoid(a - dist)
            nl -= m * sp
            ga -= m * s
            for q in range(d):
                g[q] -= m * s * (z[k, i, q] - z[k, j, q])
        # each pair is seen from both ends: half of its nll and alpha terms here
        nl_part[t] = 0.5 * nl
        ga_part[t] = 0.5 * ga
        if with_grad:
            for q in range(d):
                grad_z[k, i, q] += -2.0 * g[q]
    for k in range(K):
        acc_n = 0.0
        acc_a = 0.0
        for i in range(n):
            acc_n += nl_part[k * n + i]
            acc_a += ga_part[k * n + i]
        layer_nll[k] += acc_n
        if with_grad:
            grad_alpha[k] += acc_a
