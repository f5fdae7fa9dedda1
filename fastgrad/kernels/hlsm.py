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
from numba import njit, prange, types
from numba.extending import overload

from ._math import fast_softplus_sigmoid32, fast_softplus_sigmoid64, softplus, softplus_sigmoid
from ._twins import serial_twin

__all__ = ["hlsm_nll_grad", "hlsm_nll", "hlsm_pair_probabilities", "hlsm_nll_grad_fast", "hlsm_nll_fast",
           "hlsm_edge_correction", "hlsm_nll_grad_fast32", "hlsm_nll_fast32", "hlsm_nll_grad_ext",
           "hlsm_nll_grad_ext_serial", "hlsm_nll_grad_ext_pairs", "hlsm_dyad_correction"]


@njit(cache=True)
def _positions_t(z, one):
    """``z`` (K, n, d) as a (K, d, n) array of the type of ``one``."""
    K, n, d = z.shape
    zt = np.full((K, d, n), one)
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
    zt = _positions_t(z, 1.0)
    nll_part = np.empty(K * n)  # (np.empty: see the compile-time note above _tile_setup)
    ga_part = np.empty(K * n)
    half = 1.0 if directed else 0.5
    for t in prange(K * n):
        k = t // n
        i = t - k * n
        a = alpha[k]
        zi = np.empty(d)
        for c in range(d):
            zi[c] = zt[k, c, i]
        g = np.empty(d)
        for c0 in range(d):
            g[c0] = 0.0
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
    zt = _positions_t(z, 1.0)
    part = np.empty(K * n)  # (np.empty: see the compile-time note above _tile_setup)
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
# * Coordinates stored (K, d, n) so that z_jk is read contiguously; every
#   inner loop runs over slices starting at index 0 (so no negative-index
#   wraparound code and contiguous vector loads); ties read as int8 rows
#   (``Y[k, i, J]`` and ``YT[k, i, J] = Y[k, J, i]``), one loop variant per case
#   (undirected, directed, all non-ties) so no work is spent on masks that do
#   not apply; softplus and sigmoid from one :func:`fast_exp_neg`; sums over j
#   may be reassociated (``fastmath`` reassoc/contract only: no NaN/inf
#   assumptions).
# * Per row, one element-wise loop (residuals, losses, partners' gradient
#   shares) and one loop of reductions. A loop that both stores and reduces is
#   vectorised behind a runtime alias check whose outcome depends on where the
#   buffers happen to be allocated, which would make the summation order (and
#   the last bit of the result) vary from call to call; element-wise results
#   and reductions over loads only do not depend on it.
# * The same code runs in float64 or float32: the element type follows the
#   positions array ``zt`` and the scalar ``one`` (1 in that type); float32
#   does the per-pair work 8 lanes wide, row sums (at most B terms) in float32
#   and everything beyond a row in float64.

_FASTMATH = {"reassoc", "contract"}


def _softplus_sigmoid_t(x):  # pragma: no cover - typed by the overload below
    raise NotImplementedError


@overload(_softplus_sigmoid_t, inline="always")
def _ov_softplus_sigmoid_t(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: fast_softplus_sigmoid32(x)
    return lambda x: fast_softplus_sigmoid64(x)


def _softplus_t(x):  # pragma: no cover - typed by the overload below
    raise NotImplementedError


@overload(_softplus_t, inline="always")
def _ov_softplus_t(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x: fast_softplus_sigmoid32(x)[0]  # (the unused sigmoid is dead code)
    return lambda x: fast_softplus_sigmoid64(x)[0]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _pairs_undirected_d2(one, yrow, x0, x1, xi0, xi1, a, acc0, acc1, rbuf, lbuf):
    """Row i against partners j < m (d = 2, undirected, ties from ``yrow``):
    residual ``d nll / d eta`` into ``rbuf[j]``, loss into ``lbuf[j]`` and partner
    j's share of the gradient sum into ``acc0[j]``, ``acc1[j]``. ``one`` is 1 in
    the element type (float32 or float64) of all the arrays and scalars."""
    zero = one - one
    for j in range(x0.shape[0]):
        d0 = xi0 - x0[j]
        d1 = xi1 - x1[j]
        eta = a - (d0 * d0 + d1 * d1)
        sp, s = _softplus_sigmoid_t(eta)
        y = yrow[j] * one
        obs = y >= zero
        r = s - y if obs else zero
        rbuf[j] = r
        lbuf[j] = sp - y * eta if obs else zero
        acc0[j] -= r * d0
        acc1[j] -= r * d1


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _pairs_directed_d2(one, yrow, ytrow, x0, x1, xi0, xi1, a, acc0, acc1, rbuf, lbuf):
    """As :func:`_pairs_undirected_d2` for the two dyads i -> j (``yrow``) and j -> i (``ytrow``)."""
    zero = one - one
    for j in range(x0.shape[0]):
        d0 = xi0 - x0[j]
        d1 = xi1 - x1[j]
        eta = a - (d0 * d0 + d1 * d1)
        sp, s = _softplus_sigmoid_t(eta)
        y1 = yrow[j] * one
        y2 = ytrow[j] * one
        o1 = y1 >= zero
        o2 = y2 >= zero
        r = (s - y1 if o1 else zero) + (s - y2 if o2 else zero)
        rbuf[j] = r
        lbuf[j] = (sp - y1 * eta if o1 else zero) + (sp - y2 * eta if o2 else zero)
        acc0[j] -= r * d0
        acc1[j] -= r * d1


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _pairs_nonties_d2(w, x0, x1, xi0, xi1, a, acc0, acc1, rbuf, lbuf):
    """As :func:`_pairs_undirected_d2` with every dyad an observed non-tie;
    ``w`` = dyads per pair (1 undirected, 2 directed)."""
    for j in range(x0.shape[0]):
        d0 = xi0 - x0[j]
        d1 = xi1 - x1[j]
        eta = a - (d0 * d0 + d1 * d1)
        sp, s = _softplus_sigmoid_t(eta)
        r = w * s
        rbuf[j] = r
        lbuf[j] = w * sp
        acc0[j] -= r * d0
        acc1[j] -= r * d1


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _row_sums_d2(x0, x1, xi0, xi1, rbuf, lbuf):
    """Sums over partners j < m of the loss, the residual and residual * (z_i - z_j) (d = 2)."""
    zero = xi0 - xi0
    nl, ga, g0, g1 = zero, zero, zero, zero
    for j in range(x0.shape[0]):
        r = rbuf[j]
        nl += lbuf[j]
        ga += r
        g0 += r * (xi0 - x0[j])
        g1 += r * (xi1 - x1[j])
    return nl, ga, g0, g1


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _pairs_general(one, yrow, ytrow, mode, zk, zi, a, j0, m, acc, rbuf, lbuf, gi):
    """Any d: row i against partners j0 <= j < j0 + m. ``mode`` 0 all non-ties
    (``yrow``/``ytrow`` unread; mode 3 the same with two dyads per pair),
    1 undirected, 2 directed. Partner shares into ``acc[:, j0 + j]``, the
    row's gradient sums into ``gi``; returns (loss sum, residual sum)."""
    d = zk.shape[0]
    zero = one - one
    w = one + one if mode == 3 else one
    dist = rbuf
    for j in range(m):
        dist[j] = zero
    for c in range(d):
        xc = zk[c, j0:j0 + m]
        zic = zi[c]
        for j in range(m):
            diff = zic - xc[j]
            dist[j] += diff * diff
    for j in range(m):
        eta = a - dist[j]
        sp, s = _softplus_sigmoid_t(eta)
        y1 = yrow[j] * one if mode == 1 or mode == 2 else zero
        y2 = ytrow[j] * one if mode == 2 else zero
        o1 = y1 >= zero
        o2 = (y2 >= zero) & (mode == 2)
        r = (s - y1 if o1 else zero) + (s - y2 if o2 else zero)
        loss = (sp - y1 * eta if o1 else zero) + (sp - y2 * eta if o2 else zero)
        rbuf[j] = w * r
        lbuf[j] = w * loss
    nl = zero
    ga = zero
    for j in range(m):
        nl += lbuf[j]
        ga += rbuf[j]
    for c in range(d):
        xc = zk[c, j0:j0 + m]
        ac = acc[c, j0:j0 + m]
        zic = zi[c]
        for j in range(m):
            ac[j] -= rbuf[j] * (zic - xc[j])
        g = zero
        for j in range(m):
            g += rbuf[j] * (zic - xc[j])
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


# Compile time: in the parallel kernels below only the prange loop may become a parfor
# (each parfor is compiled as a gufunc of its own, in several layers of wrappers that each
# generate machine code for everything the loop calls): no np.zeros, slice assignments or
# array expressions there, and each loop body is one call (its index cast to int64, else
# the gufunc's uint64 index compiles the callee a second time). The public kernels are the
# parallel functions themselves (a jitted wrapper would add one more such layer).

@njit(cache=True)
def _tile_setup(zt, alpha):
    """Block size, block count, tile count and the work arrays of the tiled kernels."""
    K, d, n = zt.shape
    B = _tile_block_size(n)
    nb = (n + B - 1) // B
    ntri = nb * (nb + 1) // 2
    gacc = np.empty((K, nb, d, n), dtype=zt.dtype)
    nll_part = np.empty(K * ntri)  # every tile writes its entry
    ga_part = np.empty(K * ntri)
    alpha_t = np.empty(K, dtype=zt.dtype)  # intercepts in the element type
    for k in range(K):
        alpha_t[k] = alpha[k]
    return B, nb, ntri, gacc, nll_part, ga_part, alpha_t


@njit(cache=True)
def _tile(Y, YT, zt, alpha_t, directed, ties_from_y, one, gacc, nll_part, ga_part, B, nb, ntri, t):
    """Tile t of :func:`_nll_grad_tiles`: the pairs (i, j), i in block I, j in block J."""
    K, d, n = zt.shape
    mode = (2 if directed else 1) if ties_from_y else (3 if directed else 0)
    w = one + one if directed else one
    k = t // ntri
    I, J = _tile_index(t - k * ntri, nb)
    i0, i1 = I * B, min(n, (I + 1) * B)
    j0, j1 = J * B, min(n, (J + 1) * B)
    a = alpha_t[k]
    zk = zt[k]
    accJ = gacc[k, I]  # (d, n): columns j0:j1 = partners in block I of the nodes in block J
    zero = one - one
    for c in range(d):
        for j in range(j0, j1):
            accJ[c, j] = zero
    accI = gacc[k, J]  # (d, n): columns i0:i1 = partners in block J of the nodes in block I
    nl = 0.0
    ga = 0.0
    gi = np.zeros(d, dtype=zt.dtype)
    rbuf = np.empty(B, dtype=zt.dtype)
    lbuf = np.empty(B, dtype=zt.dtype)
    for i in range(i0, i1):
        jend = i if I == J else j1
        m = jend - j0
        if d == 2:
            x0, x1 = zk[0, j0:jend], zk[1, j0:jend]
            xi0, xi1 = zk[0, i], zk[1, i]
            a0, a1 = accJ[0, j0:jend], accJ[1, j0:jend]
            rb, lb = rbuf[:m], lbuf[:m]
            if mode == 1:
                _pairs_undirected_d2(one, Y[k, i, j0:jend], x0, x1, xi0, xi1, a, a0, a1, rb, lb)
            elif mode == 2:
                _pairs_directed_d2(one, Y[k, i, j0:jend], YT[k, i, j0:jend], x0, x1, xi0, xi1, a, a0, a1, rb, lb)
            else:
                _pairs_nonties_d2(w, x0, x1, xi0, xi1, a, a0, a1, rb, lb)
            rn, rg, g0, g1 = _row_sums_d2(x0, x1, xi0, xi1, rb, lb)
            gi[0] = g0
            gi[1] = g1
        else:
            yr = Y[k, i, j0:jend] if ties_from_y else Y[0, 0, 0:0]
            ytr = YT[k, i, j0:jend] if (ties_from_y and directed) else yr
            rn, rg = _pairs_general(one, yr, ytr, mode, zk, zk[:, i].copy(), a, j0, m, accJ, rbuf, lbuf, gi)
        nl += float(rn)
        ga += float(rg)
        if I == J:
            for c in range(d):
                accI[c, i] += gi[c]  # own block: the slot also collects partners' shares
        else:
            for c in range(d):
                accI[c, i] = gi[c]
    nll_part[t] = nl
    ga_part[t] = ga


@njit(cache=True)
def _tile_sums(gacc, nll_part, ga_part, grad_z, grad_alpha):
    """The tiles' partial sums added in a fixed order: ``grad_z[k, i] = -2 sum_P gacc[k, P, :, i]``
    (serial: K n d ceil(n / B) additions, a small fraction of the pass), ``grad_alpha``, the nll."""
    K, nb, d, n = gacc.shape
    for k in range(K):
        for i in range(n):
            for c in range(d):
                g = 0.0
                for p in range(nb):
                    g += float(gacc[k, p, c, i])
                grad_z[k, i, c] = -2.0 * g
    ntri = nb * (nb + 1) // 2
    nll = 0.0
    for k in range(K):
        acc = 0.0
        for q in range(ntri):
            acc += ga_part[k * ntri + q]
            nll += nll_part[k * ntri + q]
        grad_alpha[k] = acc
    return nll


_NLL_GRAD_DOC = """{title}

    Parameters
    ----------
    Y, YT : int8 arrays, shape (K, n, n)
        Encoded ties and their transpose (for undirected data pass ``Y``
        twice; ``YT`` is then not read).
    z : {zdtype} array, shape (K, n, d)
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
    {notes} Each unordered pair is evaluated once (``eta`` is symmetric);
    results do not depend on the number of threads (bit-identical). The
    diagonal of ``Y`` is never read. Extra memory: ``K * ceil(n / B) * d * n``
    {acc} with ``B >= n / 32``.
    """


@njit(parallel=True, cache=True)
def hlsm_nll_grad_fast(Y, YT, z, alpha, directed, grad_z, grad_alpha, ties_from_y=True):
    one = 1.0
    zt = _positions_t(z, one)
    B, nb, ntri, gacc, nll_part, ga_part, alpha_t = _tile_setup(zt, alpha)
    for t in prange(zt.shape[0] * ntri):
        _tile(Y, YT, zt, alpha_t, directed, ties_from_y, one, gacc, nll_part, ga_part, B, nb, ntri, np.int64(t))
    return _tile_sums(gacc, nll_part, ga_part, grad_z, grad_alpha)


@njit(parallel=True, cache=True)
def hlsm_nll_grad_fast32(Y, YT, z, alpha, directed, grad_z, grad_alpha, ties_from_y=True):
    one = np.float32(1.0)
    zt = _positions_t(z, one)
    B, nb, ntri, gacc, nll_part, ga_part, alpha_t = _tile_setup(zt, alpha)
    for t in prange(zt.shape[0] * ntri):
        _tile(Y, YT, zt, alpha_t, directed, ties_from_y, one, gacc, nll_part, ga_part, B, nb, ntri, np.int64(t))
    return _tile_sums(gacc, nll_part, ga_part, grad_z, grad_alpha)


hlsm_nll_grad_fast.__doc__ = _NLL_GRAD_DOC.format(
    title="Fast negative log-likelihood and gradient (same contract as :func:`hlsm_nll_grad`).",
    zdtype="float64", acc="float64s",
    notes="Per-pair math with the vectorisable :func:`fastgrad.kernels.fast_exp_neg` and "
          ":func:`fastgrad.kernels.fast_log1p_small`; results differ from :func:`hlsm_nll_grad` "
          "only by rounding (about 1e-15 relative).")
hlsm_nll_grad_fast32.__doc__ = _NLL_GRAD_DOC.format(
    title="As :func:`hlsm_nll_grad_fast` with the per-pair work in float32 (8 lanes per AVX2 register).",
    zdtype="float64 or float32", acc="float32s",
    notes="Positions are rounded to float32 and ``eta``, softplus, sigmoid and the sums "
          "over at most B partners of one node are float32; all longer sums and the outputs "
          "are float64. Against the float64 kernel the nll agrees to about 1e-7 relative "
          "and each gradient entry to about 1e-6 of the largest one (tested: 1e-6 and 1e-4 "
          "of max |grad|).")


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _row_nll(one, yrow, zk, zi, a, i, jmax, dist):
    zero = one - one
    d = zk.shape[0]
    dd = dist[:jmax]
    for j in range(jmax):
        dd[j] = zero
    for c in range(d):
        xc = zk[c, :jmax]
        zic = zi[c]
        for j in range(jmax):
            diff = zic - xc[j]
            dd[j] += diff * diff
    nl = zero
    yr = yrow[:jmax]
    for j in range(jmax):
        eta = a - dd[j]
        sp = _softplus_t(eta)
        y = yr[j] * one
        loss = sp - y * eta
        nl += loss if ((y >= zero) & (j != i)) else zero
    return nl


@njit(cache=True)
def _nll_setup(zt, alpha):
    """Work arrays of the nll-only kernels (see the compile-time note above :func:`_tile_setup`)."""
    K, d, n = zt.shape
    part = np.empty(K * n)  # every row writes its entry
    zrow = np.zeros(n, dtype=np.int8)  # the ties of the all-non-tie pass
    alpha_t = np.empty(K, dtype=zt.dtype)  # intercepts in the element type
    for k in range(K):
        alpha_t[k] = alpha[k]
    return part, zrow, alpha_t


@njit(cache=True)
def _nll_row_task(Y, zt, alpha_t, directed, ties_from_y, one, zrow, part, t):
    """Row ``t = k * n + i``: its loss summed over partners j < i (undirected) or j != i."""
    K, d, n = zt.shape
    k = t // n
    i = t - k * n
    jmax = n if directed else i
    dist = np.empty(max(jmax, 1), dtype=zt.dtype)
    zi = zt[k, :, i].copy()
    yrow = Y[k, i] if ties_from_y else zrow
    part[t] = float(_row_nll(one, yrow, zt[k], zi, alpha_t[k], i, jmax, dist))


@njit(cache=True)
def _sum_parts(part):
    total = 0.0
    for t in range(part.shape[0]):
        total += part[t]
    return total


@njit(parallel=True, cache=True)
def hlsm_nll_fast(Y, z, alpha, directed, ties_from_y=True):
    """Fast negative log-likelihood only (same contract as :func:`hlsm_nll`).

    Undirected data visit each pair once (``j < i``). Differs from
    :func:`hlsm_nll` only by rounding (see :func:`hlsm_nll_grad_fast`).
    With ``ties_from_y=False``, ``Y`` is not read and every dyad counts as an
    observed non-tie.
    """
    one = 1.0
    zt = _positions_t(z, one)
    part, zrow, alpha_t = _nll_setup(zt, alpha)
    for t in prange(part.shape[0]):
        _nll_row_task(Y, zt, alpha_t, directed, ties_from_y, one, zrow, part, np.int64(t))
    return _sum_parts(part)


@njit(parallel=True, cache=True)
def hlsm_nll_fast32(Y, z, alpha, directed, ties_from_y=True):
    """As :func:`hlsm_nll_fast` with the per-pair work and the sums along one row
    in float32 (row sums and the total in float64; see :func:`hlsm_nll_grad_fast32`)."""
    one = np.float32(1.0)
    zt = _positions_t(z, one)
    part, zrow, alpha_t = _nll_setup(zt, alpha)
    for t in prange(part.shape[0]):
        _nll_row_task(Y, zt, alpha_t, directed, ties_from_y, one, zrow, part, np.int64(t))
    return _sum_parts(part)


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
    nl_part = np.empty(K * n)  # (np.empty: see the compile-time note above _tile_setup)
    ga_part = np.empty(K * n)
    for t in prange(K * n):
        k = t // n
        i = t - k * n
        a = alpha[k]
        g = np.empty(d)
        for c0 in range(d):
            g[c0] = 0.0
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


# ----------------------------------------------------------------------------- node effects and covariates
#
# The extended linear predictor of dyad i -> j in layer k:
#
#     eta_ijk = alpha_k + s_ik + r_jk + sum_q beta_kq x_qij - ||z_ik - z_jk||^2
#
# (undirected: s = r = g, the sociality effects, and x symmetric). With
# ``res = sigmoid(eta) - y`` per observed dyad:
# d nll / d s_ik = sum_j res_ij, d nll / d r_jk = sum_i res_ij,
# d nll / d beta_kq = sum_ij res_ij x_qij, d nll / d alpha_k = sum_ij res_ij and
# d nll / d z_ik = -2 sum_j (res_ij + res_ji) (z_ik - z_jk) (directed; undirected
# the sum over the partners of i of its pairs' residuals). Eta is no longer
# symmetric when directed, so these kernels go row by row: the thread owning
# row (k, i) computes every dyad i -> j and j -> i it needs (each dyad's
# exponential twice when directed, each pair's twice when undirected) and
# writes only row i's gradients; per-row partial sums are reduced in a fixed
# order, so results do not depend on the thread count.

@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _ext_eta(zk, i, m, a, so_i, ro, dist, eta):
    """``dist[j] = ||z_i - z_j||^2`` and ``eta[j] = a + so_i + ro[j] - dist[j]`` for j < m."""
    d = zk.shape[0]
    for j in range(m):
        dist[j] = 0.0
    for c in range(d):
        zic = zk[c, i]
        xc = zk[c, :m]
        for j in range(m):
            diff = zic - xc[j]
            dist[j] += diff * diff
    base = a + so_i
    for j in range(m):
        eta[j] = base - dist[j] + ro[j]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _ext_eta2(a, ro_i, so, dist, eta):
    base = a + ro_i
    for j in range(dist.shape[0]):
        eta[j] = base - dist[j] + so[j]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _ext_add_cov(bq, xq, eta):
    for j in range(eta.shape[0]):
        eta[j] += bq * xq[j]


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _ext_residuals(yrow, eta, rbuf, lbuf, i):
    """``rbuf[j] = sigmoid(eta_j) - y_j`` and ``lbuf[j] = softplus(eta_j) - y_j eta_j``
    (0 for missing dyads, ``y_j < 0``, and for j == i); returns the sums of both."""
    for j in range(eta.shape[0]):
        e = eta[j]
        sp, s = fast_softplus_sigmoid64(e)
        y = float(yrow[j])
        obs = (y >= 0.0) & (j != i)
        rbuf[j] = s - y if obs else 0.0
        lbuf[j] = sp - y * e if obs else 0.0
    nl = 0.0
    ga = 0.0
    for j in range(eta.shape[0]):
        nl += lbuf[j]
        ga += rbuf[j]
    return nl, ga


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _ext_dot(r, x):
    acc = 0.0
    for j in range(r.shape[0]):
        acc += r[j] * x[j]
    return acc


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _ext_sum_add(r2, r1):
    """Sum of ``r2``, then ``r2 += r1``."""
    acc = 0.0
    for j in range(r2.shape[0]):
        acc += r2[j]
    for j in range(r2.shape[0]):
        r2[j] += r1[j]
    return acc


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy", inline="always")
def _ext_grad_z(zk, i, rz, gout):
    d = zk.shape[0]
    for c in range(d):
        zic = zk[c, i]
        xc = zk[c]
        g = 0.0
        for j in range(rz.shape[0]):
            g += rz[j] * (zic - xc[j])
        gout[c] = -2.0 * g


#: rows per task of :func:`hlsm_nll_grad_ext` (work buffers are allocated once per task)
_EXT_ROWS = 16


@njit(parallel=True, cache=True)
def hlsm_nll_grad_ext(Y, YT, z, alpha, so, ro, X, XT, beta, directed, ties_from_y, with_grad,
                      grad_z, grad_alpha, grad_s, grad_r, grad_beta):
    """Negative log-likelihood and gradient with node effects and dyad covariates.

    ``eta_ijk = alpha_k + so_ik + ro_jk + sum_q beta_kq X_qij - ||z_ik - z_jk||^2``.

    Parameters
    ----------
    Y, YT : int8 arrays, shape (K, n, n)
        Encoded ties and their transpose (undirected: pass ``Y`` twice).
    z : float64 array, shape (K, n, d)
    alpha : float64 array, shape (K,)
    so, ro : float64 arrays, shape (K, n)
        Sender and receiver effects; undirected, pass the sociality effects
        ``g`` as both (zeros: no node effects).
    X, XT : float64 arrays, shape (p, n, n)
        Dyad covariates and their transpose (``p = 0``: none; undirected,
        ``X`` must be symmetric and ``XT`` is not read).
    beta : float64 array, shape (K, p)
    directed : bool
    ties_from_y : bool
        False: ``Y``/``YT`` are not read and every dyad i != j is an observed
        non-tie (the dense part of the sparse likelihood).
    with_grad : bool
        False: only the nll (outputs untouched; undirected rows then visit j < i only).
    grad_z : float64 (K, n, d); grad_alpha : (K,); grad_s, grad_r : (K, n); grad_beta : (K, p)
        Outputs. Undirected: ``grad_s`` is ``d nll / d g`` and ``grad_r`` is set to 0.

    Returns
    -------
    float
        The negative log-likelihood.
    """
    K, n, d = z.shape
    p = X.shape[0]
    zt = _positions_t(z, 1.0)
    # np.empty, explicit loops: np.zeros / array expressions in a parallel function would each
    # become a parfor of their own (compiled as a separate gufunc: ~0.5 s each); every row
    # writes its entries of the *_part arrays (gb_part only read if with_grad)
    nll_part = np.empty(K * n)
    ga_part = np.empty(K * n)
    gb_part = np.empty((K * n, max(p, 1)))
    zrow = np.empty(n, dtype=np.int8)  # the ties of the all-non-tie pass
    for j in range(n):
        zrow[j] = 0
    nblk = (n + _EXT_ROWS - 1) // _EXT_ROWS
    # the parallel loop body is one call (np.int64(task): the gufunc types the loop index
    # uint64, which would compile _ext_rows a second time)
    for task in prange(K * nblk):
        _ext_rows(Y, YT, zt, alpha, so, ro, X, XT, beta, directed, ties_from_y, with_grad,
                  grad_z, grad_s, grad_r, nll_part, ga_part, gb_part, zrow, np.int64(task), nblk)
    return _ext_reduce(nll_part, ga_part, gb_part, K, n, p, with_grad, grad_alpha, grad_beta)


hlsm_nll_grad_ext_serial = njit(cache=True)(serial_twin(hlsm_nll_grad_ext.py_func, "hlsm_nll_grad_ext_serial", """\
:func:`hlsm_nll_grad_ext` on one thread: the same row tasks and the same fixed-order
reduction, so bit-identical results, without the parallel machinery.

For small networks (the front-ends use it when a call would run on one thread anyway),
for calls from a user's own ``prange`` loop, and for the first fit's compile time:
compiling the parallel kernel's gufunc costs about 2 s more than this one.
"""))


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def hlsm_nll_grad_ext_pairs(Y, YT, z, alpha, so, ro, X, XT, beta, directed, ties_from_y, with_grad,
                            grad_z, grad_alpha, grad_s, grad_r, grad_beta):
    """:func:`hlsm_nll_grad_ext` for undirected layers on one thread, each pair visited once.

    The same arguments, outputs and value (``YT``, ``ro`` and ``XT`` are not read; the
    sociality effects are ``so``), up to rounding. The row kernels of
    :func:`hlsm_nll_grad_ext` let the thread owning row ``i`` compute every pair
    ``(i, j)`` it needs, so an undirected gradient visits each pair twice; here row ``i``
    visits ``j < i`` only and adds the pair's terms to both ends. Sums run over ``k``,
    then ``i``, then ``j`` in a fixed order: the result depends on the data only. The
    front-ends use it for small undirected problems (:func:`fastgrad.hlsm._base.ext_kernel`):
    half the exponentials and logarithms, and it compiles in a fraction of the time of
    the row kernel and its serial twin.

    Raises
    ------
    ValueError
        If ``directed``.
    """
    if directed:
        raise ValueError("hlsm_nll_grad_ext_pairs is for undirected layers (directed=False)")
    K, n, d = z.shape
    p = X.shape[0]
    zt = _positions_t(z, 1.0)
    gzt = np.empty((K, d, n))
    dist = np.empty(n)
    eta = np.empty(n)
    res = np.empty(n)
    lbuf = np.empty(n)
    zrow = np.empty(n, dtype=np.int8)    # the ties of the all-non-tie pass
    for j in range(n):
        zrow[j] = 0
    gb = np.empty(max(p, 1))
    nll = 0.0
    for k in range(K):
        a = alpha[k]
        zk = zt[k]
        if with_grad:
            for i in range(n):
                grad_s[k, i] = 0.0
                grad_r[k, i] = 0.0
                for c in range(d):
                    gzt[k, c, i] = 0.0
            for q in range(p):
                gb[q] = 0.0
        layer_nll = 0.0
        layer_ga = 0.0
        for i in range(1, n):
            dd, ee, rr, ll = dist[:i], eta[:i], res[:i], lbuf[:i]
            _ext_eta(zk, i, i, a, so[k, i], so[k, :i], dd, ee)
            for q in range(p):
                _ext_add_cov(beta[k, q], X[q, i, :i], ee)
            nl, ga = _ext_residuals(Y[k, i, :i] if ties_from_y else zrow[:i], ee, rr, ll, i)
            layer_nll += nl
            layer_ga += ga
            if not with_grad:
                continue
            grad_s[k, i] += ga
            gsk = grad_s[k]
            for j in range(i):
                gsk[j] += rr[j]
            for q in range(p):
                gb[q] += _ext_dot(rr, X[q, i, :i])
            for c in range(d):
                zic = zk[c, i]
                xc = zk[c, :i]
                gc = gzt[k, c]
                acc = 0.0
                for j in range(i):
                    t = rr[j] * (zic - xc[j])
                    acc += t
                    gc[j] += 2.0 * t           # d/dz_j of the pair's term: +2 res (z_i - z_j)
                gc[i] -= 2.0 * acc
        nll += layer_nll
        if with_grad:
            grad_alpha[k] = layer_ga
            for q in range(p):
                grad_beta[k, q] = gb[q]
            for i in range(n):
                for c in range(d):
                    grad_z[k, i, c] = gzt[k, c, i]
    return nll


@njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
def _ext_rows(Y, YT, zt, alpha, so, ro, X, XT, beta, directed, ties_from_y, with_grad,
              grad_z, grad_s, grad_r, nll_part, ga_part, gb_part, zrow, task, nblk):
    """Rows ``blk * R .. (blk + 1) * R - 1`` of layer k (``task = k * nblk + blk``) of
    :func:`hlsm_nll_grad_ext`: per-row partial sums into ``*_part``, the row gradients."""
    K, d, n = zt.shape
    p = X.shape[0]
    half = 1.0 if (directed or not with_grad) else 0.5  # undirected value-only rows visit j < i once
    R = _EXT_ROWS
    k = task // nblk
    blk = task - k * nblk
    a = alpha[k]
    zk = zt[k]
    dist = np.empty(n)
    e1 = np.empty(n)
    r1 = np.empty(n)
    l1 = np.empty(n)
    r2 = np.empty(n)
    gout = np.empty(d)
    for i in range(blk * R, min(n, (blk + 1) * R)):
        t = k * n + i
        m = n if (with_grad or directed) else i
        ee, rr, ll, dd = e1[:m], r1[:m], l1[:m], dist[:m]
        _ext_eta(zk, i, m, a, so[k, i], ro[k, :m], dd, ee)
        for q in range(p):
            _ext_add_cov(beta[k, q], X[q, i, :m], ee)
        nl, ga = _ext_residuals(Y[k, i, :m] if ties_from_y else zrow[:m], ee, rr, ll, i)
        nll_part[t] = half * nl
        ga_part[t] = half * ga
        if not with_grad:
            continue
        for q in range(p):
            gb_part[t, q] = half * _ext_dot(r1, X[q, i])
        grad_s[k, i] = ga
        if directed:
            _ext_eta2(a, ro[k, i], so[k], dist, e1)
            for q in range(p):
                _ext_add_cov(beta[k, q], XT[q, i], e1)
            _ext_residuals(YT[k, i] if ties_from_y else zrow, e1, r2, l1, i)
            grad_r[k, i] = _ext_sum_add(r2, r1)
            _ext_grad_z(zk, i, r2, gout)
        else:
            grad_r[k, i] = 0.0
            _ext_grad_z(zk, i, r1, gout)
        for c in range(d):
            grad_z[k, i, c] = gout[c]


def compile_ext_rows():
    """Compile (or load from the cache) :func:`_ext_rows` for the argument types that
    :func:`hlsm_nll_grad_ext` and its serial twin pass it (C-contiguous arrays, int64 task).

    Its compilation is most of a first HLSM fit's (about 3 s of 5.7 s for the serial twin,
    Xeon, 2026-12-02). On a first run the command line runs this in its plot process while
    the main process encodes the layers, so that the kernel is in the Numba cache when the
    fit asks for it (``fastgrad.hlsm._plotjob``). A test checks that fits then add no other
    signature of :func:`_ext_rows`.
    """
    f8, i1 = np.float64, np.int8
    z3 = np.zeros((1, 1, 3))
    _ext_rows(np.zeros((1, 3, 3), i1), np.zeros((1, 3, 3), i1), z3, np.zeros(1), np.zeros((1, 3)),
              np.zeros((1, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3, 3)), np.zeros((1, 0)), False, True, True,
              np.zeros((1, 3, 1)), np.zeros((1, 3)), np.zeros((1, 3)), np.zeros(3), np.zeros(3),
              np.zeros((3, 1), f8), np.zeros(3, i1), np.int64(0), np.int64(1))
    return _ext_rows


def compile_ext_pairs():
    """Compile (or load from the cache) :func:`hlsm_nll_grad_ext_pairs` for the argument types
    the front-ends pass it (dense int8 layers, C-contiguous float64 arrays): the kernel of a
    small undirected fit, which the command line's plot process compiles on a first run
    (see :func:`compile_ext_rows`)."""
    f8, i1 = np.float64, np.int8
    z3 = np.zeros((1, 3, 1))
    hlsm_nll_grad_ext_pairs(np.zeros((1, 3, 3), i1), np.zeros((1, 3, 3), i1), z3, np.zeros(1),
                            np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3, 3)),
                            np.zeros((1, 0)), False, True, True, np.zeros((1, 3, 1)), np.zeros(1, f8),
                            np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 0)))
    return hlsm_nll_grad_ext_pairs


def compile_ext_helpers():
    """Compile (or load) what :func:`hlsm_nll_grad_ext` calls besides :func:`_ext_rows`
    (the transpose of the positions), for the process that waits for
    :func:`compile_ext_rows` in another one."""
    _positions_t(np.zeros((1, 3, 1)), 1.0)


@njit(cache=True, inline="always")
def _ext_reduce(nll_part, ga_part, gb_part, K, n, p, with_grad, grad_alpha, grad_beta):
    """Per-row partial sums of :func:`hlsm_nll_grad_ext` added in a fixed order."""
    nll = 0.0
    for k in range(K):
        acc = 0.0
        for i in range(n):
            acc += ga_part[k * n + i]
            nll += nll_part[k * n + i]
        if with_grad:
            grad_alpha[k] = acc
            for q in range(p):
                accb = 0.0
                for i in range(n):
                    accb += gb_part[k * n + i, q]
                grad_beta[k, q] = accb
    return nll


@njit(parallel=True, cache=True)
def hlsm_dyad_correction(ptr, idx, ct, cs, ptrT, idxT, ctT, csT, z, alpha, so, ro, directed, with_grad,
                         grad_z, grad_alpha, grad_s, grad_r, layer_nll):
    """Stored-dyad terms of the sparse likelihood with node effects.

    Each stored dyad i -> j of layer k adds ``cs * softplus(eta_ijk) - ct * eta_ijk``
    to the nll, with ``eta_ijk = alpha_k + so_ik + ro_jk - ||z_ik - z_jk||^2``:
    a tie on top of the all-non-tie pass has (ct, cs) = (1, 0), a missing dyad
    (0, -1), a case-control tie (1, 1) and a control of weight w (0, w).
    Cost O(stored dyads).

    Parameters
    ----------
    ptr : int64 (K, n + 1); idx : int32; ct, cs : float64
        Rows of the stored dyads (row i: dyads i -> j), all layers stacked,
        absolute pointers. Undirected: symmetric storage (each pair at (i, j)
        and (j, i) with equal coefficients; ``so`` = ``ro`` = ``g``).
    ptrT, idxT, ctT, csT
        The same dyads by receiver (row i: dyads j -> i); read only when directed.
    z, alpha, so, ro, directed
        As for :func:`hlsm_nll_grad_ext`.
    with_grad : bool
    grad_z, grad_alpha, grad_s, grad_r
        Incremented (if ``with_grad``); undirected ``grad_s`` is the gradient in g.
    layer_nll : float64 (K,)
        Incremented by each layer's nll terms.
    """
    K, n, d = z.shape
    nl_part = np.empty(K * n)  # (np.empty: see the compile-time note above _tile_setup)
    ga_part = np.empty(K * n)
    half = 1.0 if directed else 0.5
    for t in prange(K * n):
        k = t // n
        i = t - k * n
        a = alpha[k]
        g = np.empty(d)
        for c0 in range(d):
            g[c0] = 0.0
        nl = 0.0
        ga = 0.0
        for q in range(ptr[k, i], ptr[k, i + 1]):
            j = idx[q]
            dist = 0.0
            for c in range(d):
                diff = z[k, i, c] - z[k, j, c]
                dist += diff * diff
            eta = a + so[k, i] + ro[k, j] - dist
            sp, s = softplus_sigmoid(eta)
            nl += cs[q] * sp - ct[q] * eta
            dr = cs[q] * s - ct[q]
            ga += dr
            for c in range(d):
                g[c] += dr * (z[k, i, c] - z[k, j, c])
        gr = 0.0
        if directed:
            for q in range(ptrT[k, i], ptrT[k, i + 1]):
                j = idxT[q]
                dist = 0.0
                for c in range(d):
                    diff = z[k, i, c] - z[k, j, c]
                    dist += diff * diff
                eta = a + so[k, j] + ro[k, i] - dist
                _, s = softplus_sigmoid(eta)
                dr = csT[q] * s - ctT[q]
                gr += dr
                for c in range(d):
                    g[c] += dr * (z[k, i, c] - z[k, j, c])
        nl_part[t] = half * nl
        ga_part[t] = half * ga
        if with_grad:
            for c in range(d):
                grad_z[k, i, c] += -2.0 * g[c]
            grad_s[k, i] += ga
            if directed:
                grad_r[k, i] += gr
    for k in range(K):
        acc_n = 0.0
        acc_a = 0.0
        for i in range(n):
            acc_n += nl_part[k * n + i]
            acc_a += ga_part[k * n + i]
        layer_nll[k] += acc_n
        if with_grad:
            grad_alpha[k] += acc_a
