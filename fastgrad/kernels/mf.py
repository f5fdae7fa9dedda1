"""Biased matrix factorisation kernels: per-rating SGD, block-stratified parallel SGD,
prediction and error sums.

Model: ``r_hat(u, i) = mu + bu[u] + bi[i] + P[u] . Q[i]`` with ``mu`` fixed (the
training mean). Each rating contributes the per-rating loss

``f = e^2 + reg * (||P[u]||^2 + ||Q[i]||^2) + reg_bias * (bu[u]^2 + bi[i]^2)``,
``e = r - r_hat``,

whose exact gradient is (:func:`mf_rating_loss_grad`)

``df/dbu[u] = -2 e + 2 reg_bias bu[u]``,  ``df/dbi[i] = -2 e + 2 reg_bias bi[i]``,
``df/dP[u] = -2 e Q[i] + 2 reg P[u]``,    ``df/dQ[i] = -2 e P[u] + 2 reg Q[i]``.

An SGD step moves every parameter by ``-(lr / 2) * gradient`` -- the factor 2 is
folded into the learning rate, as in scikit-surprise's SVD -- so that

``bu += lr (e - reg_bias bu)``, ``bi += lr (e - reg_bias bi)``,
``P[u] += lr (e Q[i] - reg P[u])``, ``Q[i] += lr (e P_old[u] - reg Q[i])``

with ``e`` computed once before the step (it DESCENDS the loss).

Index conventions: ``users`` and ``items`` are integer row indices into
``bu``/``P`` and ``bi``/``Q``; in :func:`mf_predict` and :func:`mf_error_sums`
an index of ``-1`` means "unknown", whose bias and factor terms are dropped.

Parallel SGD (:func:`mf_sgd_epoch_blocked`) follows DSGD / FPSG: users and items
are partitioned into ``B`` blocks each (:func:`mf_partition`), ratings are
grouped by (user block, item block) (:func:`mf_block_schedule`), and an epoch is
``B`` sub-epochs; in sub-epoch ``s`` the blocks ``(b, (b + s) mod B)`` for
``b = 0..B-1`` -- one stratum, pairwise disjoint in users and in items -- run in
parallel with ``prange``. No two threads ever update the same user or item row
at the same time, and each block is processed by one thread in a fixed order, so
the result depends on ``B`` and the seeds only, never on timing or on the number
of threads.

Shuffling uses a counter-based SplitMix64 stream (:func:`mf_shuffle`,
:func:`mf_shuffle_blocks`), so it is reproducible from a seed inside parallel
code; so do the initial factors (:func:`mf_normal_rows`: a ziggurat sampler fed
by one SplitMix64 stream per row).
"""
import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._simd import row_axpby, row_dot, row_step
from ._twins import serial_twin

__all__ = [
    "mf_rating_loss_grad", "mf_sgd_step", "mf_sgd_epoch", "mf_sgd_epoch_masked",
    "mf_sgd_epoch_blocked", "mf_partition", "mf_block_schedule", "mf_stratum_blocks",
    "mf_shuffle", "mf_shuffle_blocks", "mf_predict", "mf_error_sums", "mf_penalty",
    "mf_normal_rows", "mf_normal_rows_at", "mf_block_layout", "mf_block_layout_serial", "svdpp_rating_loss_grad",
    "svdpp_implicit_sums",
    "svdpp_sgd_epoch_blocked", "svdpp_user_runs", "svdpp_implicit_csr",
]

_FASTMATH = {"contract", "reassoc"}   # FMA + vectorised dot products; no nnan/ninf
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S8 = np.uint64(8)
_LOW8 = np.uint64(0xFF)
_ONE = np.uint64(1)
_INV53 = 1.0 / 9007199254740992.0     # 2**-53
_N_CHUNKS = 64                        # fixed reduction chunks: thread-count independent
_PREFETCH_AHEAD = 8                   # SGD: fetch the rows of the rating this many steps ahead
_PREFETCH_BYTES = 8 << 20             # ... when the factor rows one pass touches exceed this


# ----------------------------------------------------------------------------- RNG
@njit(cache=True, inline="always")
def _splitmix64(state):
    """Advance a SplitMix64 state; return ``(new_state, 64 random bits)``."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return state, z ^ (z >> _S31)


@njit(cache=True, inline="always")
def _u53(bits):
    """Uniform in [0, 1) from the top 53 of 64 random bits (exact; converted as a signed int,
    which is cheaper than from unsigned)."""
    return np.int64(bits >> _S11) * _INV53


@njit(cache=True, inline="always")
def _shuffle_range(users, items, ratings, start, stop, seed):
    """Fisher-Yates shuffle of the triples in ``[start, stop)`` from ``seed``."""
    state = np.uint64(seed)
    for k in range(stop - 1, start, -1):
        state, x = _splitmix64(state)
        j = start + int(_u53(x) * (k - start + 1))
        if j != k:
            tu = users[k]
            users[k] = users[j]
            users[j] = tu
            ti = items[k]
            items[k] = items[j]
            items[j] = ti
            tr = ratings[k]
            ratings[k] = ratings[j]
            ratings[j] = tr


def _ziggurat_tables(n_layers=256, r=3.6541528853610088):
    """Layer edges ``x`` and ``f(x) = exp(-x^2 / 2)`` of the normal ziggurat (Marsaglia & Tsang 2000).

    Layer ``i >= 1`` is the box ``[0, x[i]] x [f(x[i]), f(x[i+1])]``; layer 0 is the
    base box ``[0, r] x [0, f(r)]`` plus the tail beyond ``r``, drawn as a box of
    width ``x[0] = v / f(r)``. All ``n_layers`` have the same area ``v``.
    """
    f = lambda t: math.exp(-0.5 * t * t)                       # noqa: E731
    v = r * f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    x = np.empty(n_layers + 1)
    x[0], x[1], x[n_layers] = v / f(r), r, 0.0
    for k in range(1, n_layers - 1):
        x[k + 1] = math.sqrt(-2.0 * math.log(f(x[k]) + v / x[k]))
    return x, np.exp(-0.5 * x * x)


_ZIG_X, _ZIG_F = _ziggurat_tables()
_ZIG_R = float(_ZIG_X[1])


@njit(cache=True, inline="always")
def _std_normal(state):
    """A standard normal draw from a SplitMix64 stream; returns ``(new_state, z)``.

    Ziggurat with 256 layers: one 64-bit draw gives the layer (8 bits), the sign
    (1 bit) and a 53-bit uniform; about 99% of draws are accepted at once.
    """
    while True:
        state, bits = _splitmix64(state)
        k = int(bits & _LOW8)
        neg = ((bits >> _S8) & _ONE) == _ONE
        x = _u53(bits) * _ZIG_X[k]
        if x < _ZIG_X[k + 1]:
            break                                   # inside the box: under the curve
        if k == 0:                                  # tail beyond r (Marsaglia 1964)
            while True:
                state, b1 = _splitmix64(state)
                state, b2 = _splitmix64(state)
                a = -math.log(1.0 - _u53(b1)) / _ZIG_R
                y = -math.log(1.0 - _u53(b2))
                if 2.0 * y > a * a:
                    break
            x = _ZIG_R + a
            break
        state, b = _splitmix64(state)
        y = _ZIG_F[k] + _u53(b) * (_ZIG_F[k + 1] - _ZIG_F[k])
        if y < math.exp(-0.5 * x * x):
            break                                   # in the wedge, under the curve
    return state, -x if neg else x


@njit(cache=True, parallel=True)
def mf_normal_rows(out, seed, row0, mean, std):
    """Fill ``out`` with independent ``N(mean, std^2)`` draws, row by row, in parallel.

    Row ``r`` is drawn from its own SplitMix64 stream, derived from
    ``(seed, row0 + r)``, so the result depends on the seed and the row numbers
    only -- never on the number of threads -- and the rows of one matrix can be
    drawn in pieces (``row0`` = index of the first row).

    Parameters
    ----------
    out : float array, shape (m, k)
        Output, overwritten.
    seed : int or uint64
        Seed.
    row0 : int
        Stream number of ``out``'s first row.
    mean, std : float
        Mean and standard deviation.
    """
    for r in prange(out.shape[0]):
        _normal_row(out, r, _cell_seed(seed, row0 + r), mean, std)


@njit(cache=True, parallel=True)
def mf_normal_rows_at(out, seed, streams, mean, std):
    """:func:`mf_normal_rows` with the stream of every row given: row ``r`` of ``out`` gets the
    draws that row ``streams[r]`` gets from :func:`mf_normal_rows` (``row0 = 0``), so rows can
    be drawn straight into a permuted (or padded: pass the view ``out[:, :k]``) copy.

    Parameters
    ----------
    out : float array, shape (m, k)
        Output, overwritten (any 2-D layout).
    seed : int or uint64
        Seed.
    streams : int array, shape (m,)
        Stream number of every row.
    mean, std : float
        Mean and standard deviation.
    """
    for r in prange(out.shape[0]):
        _normal_row(out, r, _cell_seed(seed, streams[r]), mean, std)


@njit(cache=True, inline="always")
def _normal_row(out, r, state, mean, std):
    for f in range(out.shape[1]):
        state, z = _std_normal(state)
        out[r, f] = mean + std * z


@njit(cache=True)
def mf_shuffle(users, items, ratings, seed):
    """Shuffle the rating triples in place (same permutation for the three arrays).

    Parameters
    ----------
    users, items : int array, shape (n,)
        Row indices, permuted in place.
    ratings : float array, shape (n,)
        Ratings, permuted in place.
    seed : int or uint64
        Seed of the SplitMix64 stream; equal seeds give equal permutations.
    """
    _shuffle_range(users, items, ratings, 0, users.shape[0], np.uint64(seed))


@njit(cache=True, inline="always")
def _cell_seed(seed, k):
    """Seed of cell ``k``'s stream, derived from the epoch seed."""
    s, bits = _splitmix64(np.uint64(seed) ^ (np.uint64(k) * _MIX1))
    return bits


@njit(cache=True, parallel=True)
def mf_shuffle_blocks(users, items, ratings, block_ptr, seed):
    """Shuffle the triples inside each block ``[block_ptr[k], block_ptr[k+1])`` in place.

    Blocks are shuffled in parallel; block ``k`` uses a stream derived from
    ``(seed, k)`` -- the same one :func:`mf_sgd_epoch_blocked` uses -- so the
    outcome does not depend on the thread count.

    Parameters
    ----------
    users, items, ratings : arrays, shape (n,)
        Rating triples grouped by block (see :func:`mf_block_schedule`).
    block_ptr : int64 array, shape (n_cells + 1,)
        Block boundaries.
    seed : int or uint64
        Base seed.
    """
    nb = block_ptr.shape[0] - 1
    for k in prange(nb):
        _shuffle_range(users, items, ratings, block_ptr[k], block_ptr[k + 1], _cell_seed(seed, k))


# ----------------------------------------------------------------------------- prefetch
@intrinsic
def _prefetch(typingctx, arr, row, col):
    """Hint the CPU to load the cache line holding ``arr[row, col]`` (a C-contiguous 2-D
    array) for reading and writing; no effect on results."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2):
        return None

    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        r = context.cast(builder, args[1], sig.args[1], types.intp)
        c = context.cast(builder, args[2], sig.args[2], types.intp)
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [r, c], wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        # rw = 1 (the row is written next), locality = 3 (keep in all levels), data cache
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 1), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.void(arr, row, col), codegen


@njit(cache=True, inline="always")
def _prefetch_row(X, r):
    """Prefetch every cache line of row ``r`` of ``X``."""
    k = X.shape[1]
    step = max(64 // X.itemsize, 1)
    for f in range(0, k, step):
        _prefetch(X, r, f)
    _prefetch(X, r, k - 1)                   # the row need not start on a line boundary


# ----------------------------------------------------------------------------- SGD
@njit(cache=True)
def mf_rating_loss_grad(r, mu, bu_u, bi_i, p, q, reg, reg_bias, grad_p, grad_q):
    """Per-rating loss and its exact gradient (factor 2 included).

    ``f = e^2 + reg (||p||^2 + ||q||^2) + reg_bias (bu_u^2 + bi_i^2)`` with
    ``e = r - (mu + bu_u + bi_i + p . q)``.

    Parameters
    ----------
    r, mu, bu_u, bi_i : float
        Rating, global mean, user bias and item bias.
    p, q : float array, shape (k,)
        User and item factor rows.
    reg, reg_bias : float
        Penalties of the factors and of the biases.
    grad_p, grad_q : float array, shape (k,)
        Output: ``df/dp`` and ``df/dq``.

    Returns
    -------
    (f, df_dbu, df_dbi) : tuple of float
    """
    k = p.shape[0]
    dot = 0.0
    sq = 0.0
    for f in range(k):
        dot += p[f] * q[f]
        sq += p[f] * p[f] + q[f] * q[f]
    e = r - (mu + bu_u + bi_i + dot)
    for f in range(k):
        grad_p[f] = -2.0 * e * q[f] + 2.0 * reg * p[f]
        grad_q[f] = -2.0 * e * p[f] + 2.0 * reg * q[f]
    loss = e * e + reg * sq + reg_bias * (bu_u * bu_u + bi_i * bi_i)
    return loss, -2.0 * e + 2.0 * reg_bias * bu_u, -2.0 * e + 2.0 * reg_bias * bi_i


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _sgd_update(u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias, upd_u, upd_i):
    """One SGD step on rating (u, i, r); returns the squared error before the step (float64).

    Works in the parameters' dtype (float32 or float64) throughout: the dot product, the
    error ``e = (r - (mu + bu[u] + bi[i])) - P[u].Q[i]`` and the updates run in it
    (:mod:`._simd`'s vector code for C-contiguous rows), with the step scalars cast to it
    once. The part of ``e`` without the dot product is ready before the dot product is,
    so only one subtraction follows it; in float32 no value is widened to float64 and
    narrowed back on the way from the dot product to the row update, the step's critical
    path (ML-100k-shaped serial epochs 13-25% faster in float32, 2-vCPU Intel Xeon). Only
    the returned ``e^2`` is formed in float64.
    """
    bt = bu.dtype.type
    a = bu[u]
    b = bi[i]
    e = (bt(r) - (bt(mu) + a + b)) - row_dot(P, u, Q, i)
    # p += lr (e q - reg p)  ==  (1 - lr reg) p + (lr e) q
    lb = bt(lr)
    rb = bt(reg_bias)
    shrink = bt(1.0 - lr * reg)
    le = lb * e
    e64 = np.float64(e)
    sq = e64 * e64        # the caller's running sum may fuse this product into an FMA
    if upd_u and upd_i:
        bu[u] = a + lb * (e - rb * a)
        bi[i] = b + lb * (e - rb * b)
        row_step(P, u, Q, i, shrink, le)
    elif upd_u:
        bu[u] = a + lb * (e - rb * a)
        row_axpby(P, u, Q, i, shrink, le)
    elif upd_i:
        bi[i] = b + lb * (e - rb * b)
        row_axpby(Q, i, P, u, shrink, le)
    return sq


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _sgd_range(users, items, ratings, lo, hi, mu, bu, bi, P, Q, lr, reg, reg_bias, prefetch):
    """SGD steps on ratings ``lo..hi-1`` in order; returns the running SSE (float64).

    With ``prefetch`` the rows of the rating 8 steps ahead are requested from memory
    while the current step runs: 2.6x (float64) and 1.9x (float32) faster on 2M ratings
    of 40k users and items whose factors (16-32 MB) miss the caches, but ~20% slower
    when they fit (ML-100k), so it is used only above :data:`_PREFETCH_BYTES`.
    """
    sse = 0.0
    ahead = hi - _PREFETCH_AHEAD
    for t in range(lo, hi):
        if prefetch and t < ahead:
            _prefetch_row(P, users[t + _PREFETCH_AHEAD])
            _prefetch_row(Q, items[t + _PREFETCH_AHEAD])
        sse += _sgd_update(users[t], items[t], ratings[t], mu, bu, bi, P, Q, lr, reg, reg_bias,
                           True, True)
    return sse


@njit(cache=True, fastmath=_FASTMATH)
def mf_sgd_step(u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias):
    """One SGD step on a single rating, in place; returns ``e^2`` before the step.

    Parameters
    ----------
    u, i : int
        User and item row indices.
    r : float
        The rating.
    mu : float
        Global mean (fixed).
    bu, bi : float arrays, shapes (n_users,), (n_items,)
        Biases, updated in place.
    P, Q : float arrays, shapes (n_users, k), (n_items, k)
        Factors, updated in place.
    lr, reg, reg_bias : float
        Learning rate (factor 2 of the gradient folded in) and penalties.
    """
    return _sgd_update(u, i, r, mu, bu, bi, P, Q, lr, reg, reg_bias, True, True)


@njit(cache=True, fastmath=_FASTMATH)
def mf_sgd_epoch(users, items, ratings, mu, bu, bi, P, Q, lr, reg, reg_bias):
    """One serial SGD epoch over the ratings in array order (shuffle them first).

    Parameters
    ----------
    users, items : int arrays, shape (n,)
        Row indices into ``bu``/``P`` and ``bi``/``Q``.
    ratings : float array, shape (n,)
        Ratings, visited in this order.
    mu, bu, bi, P, Q, lr, reg, reg_bias
        As in :func:`mf_sgd_step`; ``bu, bi, P, Q`` are updated in place.

    Returns
    -------
    float
        Sum of squared errors, each taken just before its rating's step
        (a free running estimate of the training SSE).
    """
    prefetch = (P.size + Q.size) * P.itemsize > _PREFETCH_BYTES
    return _sgd_range(users, items, ratings, 0, ratings.shape[0], mu, bu, bi, P, Q,
                      lr, reg, reg_bias, prefetch)


@njit(cache=True, fastmath=_FASTMATH)
def mf_sgd_epoch_masked(users, items, ratings, mu, bu, bi, P, Q, lr, reg, reg_bias,
                        user_free, item_free):
    """Serial SGD epoch that updates only the rows flagged as free (fold-in).

    Same as :func:`mf_sgd_epoch`, except that user ``u``'s bias and factors move
    only if ``user_free[u]``, and item ``i``'s only if ``item_free[i]``;
    ratings whose user and item are both fixed are skipped (and not counted).

    Parameters
    ----------
    user_free, item_free : bool arrays, shapes (n_users,), (n_items,)
        Which rows are trained.

    Returns
    -------
    (sse, count) : (float, int)
        Running squared-error sum and the number of ratings used.
    """
    sse = 0.0
    cnt = 0
    for t in range(ratings.shape[0]):
        u = users[t]
        i = items[t]
        fu = user_free[u]
        fi = item_free[i]
        if fu or fi:
            sse += _sgd_update(u, i, ratings[t], mu, bu, bi, P, Q, lr, reg, reg_bias, fu, fi)
            cnt += 1
    return sse, cnt


@njit(cache=True, inline="always")
def mf_stratum_blocks(s, b, n_blocks):
    """Cell index of the block run by worker ``b`` in stratum ``s``.

    Stratum ``s`` is the set of blocks ``(b, (b + s) mod B)``, ``b = 0..B-1``:
    every user block and every item block appears exactly once in it. The cell
    index is ``user_block * B + item_block``.
    """
    return b * n_blocks + (b + s) % n_blocks


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def mf_sgd_epoch_blocked(users, items, ratings, block_ptr, n_blocks, strata, seed,
                         mu, bu, bi, P, Q, lr, reg, reg_bias):
    """One block-stratified parallel SGD epoch (DSGD / FPSG schedule).

    Parameters
    ----------
    users, items, ratings : arrays, shape (n,)
        Rating triples grouped by cell ``user_block * B + item_block``
        (output of :func:`mf_block_schedule`), in the order to be visited
        within each cell.
    block_ptr : int64 array, shape (B * B + 1,)
        Cell boundaries.
    n_blocks : int
        ``B``.
    strata : int array, shape (B,)
        Order of the sub-epochs: a permutation of ``0..B-1``. In sub-epoch
        ``strata[t]`` the ``B`` cells of that stratum (see
        :func:`mf_stratum_blocks`) run in parallel, one thread per cell.
    seed : int
        If ``>= 0``, each cell is first shuffled in place by its worker, exactly
        as :func:`mf_shuffle_blocks` with this seed would; ``-1`` keeps the order.
    mu, bu, bi, P, Q, lr, reg, reg_bias
        As in :func:`mf_sgd_epoch`.

    Returns
    -------
    float
        Running sum of squared errors (summed per cell, then in cell order).
    """
    B = n_blocks
    cell_sse = np.zeros(B * B)
    prefetch = (P.size + Q.size) * P.itemsize > _PREFETCH_BYTES * B       # rows of one cell
    for t in range(strata.shape[0]):
        s = strata[t]
        for b in prange(B):
            c = mf_stratum_blocks(s, b, B)
            lo = block_ptr[c]
            hi = block_ptr[c + 1]
            if seed >= 0:
                _shuffle_range(users, items, ratings, lo, hi, _cell_seed(seed, c))
            cell_sse[c] = _sgd_range(users, items, ratings, lo, hi, mu, bu, bi, P, Q,
                                     lr, reg, reg_bias, prefetch)
    total = 0.0
    for c in range(B * B):
        total += cell_sse[c]
    return total


# ----------------------------------------------------------------------------- schedule
@njit(cache=True)
def _stable_argsort_nonneg(keys):
    """``np.argsort(keys, kind="stable")`` for non-negative int64 keys: an LSD radix sort
    on 16-bit digits (as many passes as the largest key needs). With Numba's mergesort
    ``mf_partition`` took 3.0 s to compile, with this 1.3 s (Zen 1 EPYC)."""
    m = keys.shape[0]
    idx = np.arange(m)
    if m == 0:
        return idx
    top = 0
    for t in range(m):
        top = max(top, keys[t])
    tmp = np.empty(m, dtype=np.int64)
    cnt = np.empty(65537, dtype=np.int64)
    shift = 0
    while shift == 0 or (shift < 64 and (top >> shift) > 0):
        cnt[:] = 0
        for t in range(m):
            cnt[((keys[idx[t]] >> shift) & 0xFFFF) + 1] += 1
        for d in range(65536):
            cnt[d + 1] += cnt[d]
        for t in range(m):
            d = (keys[idx[t]] >> shift) & 0xFFFF
            tmp[cnt[d]] = idx[t]
            cnt[d] += 1
        idx, tmp = tmp, idx
        shift += 16
    return idx


@njit(cache=True)
def mf_partition(counts, n_blocks, order):
    """Split rows into ``n_blocks`` groups with nearly equal rating counts.

    Rows are taken by decreasing count (ties in the order given by ``order``,
    e.g. a random permutation) and dealt in "snake" order 0..B-1, B-1..0, ...

    Parameters
    ----------
    counts : int array, shape (m,)
        Ratings per row.
    n_blocks : int
        Number of blocks ``B >= 1``.
    order : int array, shape (m,)
        A permutation of ``0..m-1`` used to break ties.

    Returns
    -------
    int64 array, shape (m,)
        Block of every row.
    """
    m = counts.shape[0]
    top = 0
    for t in range(m):
        top = max(top, counts[t])
    keyed = np.empty(m, dtype=np.int64)
    for t in range(m):
        keyed[t] = top - counts[order[t]]             # increasing key = decreasing count
    idx = _stable_argsort_nonneg(keyed)
    block = np.empty(m, dtype=np.int64)
    for t in range(m):
        r = t % (2 * n_blocks)
        block[order[idx[t]]] = r if r < n_blocks else 2 * n_blocks - 1 - r
    return block


@njit(cache=True, inline="always")
def _cells(users, items, user_block, item_block, n_blocks):
    """Cell ``user_block[u] * B + item_block[i]`` of every rating, and the cells' start
    offsets in a grouping by cell (``ptr``, shape ``(B * B + 1,)``)."""
    n = users.shape[0]
    nc = n_blocks * n_blocks
    ptr = np.zeros(nc + 1, dtype=np.int64)
    cell = np.empty(n, dtype=np.int32)                 # B * B < 2**31 cells; half the memory
    for t in range(n):
        c = user_block[users[t]] * n_blocks + item_block[items[t]]
        cell[t] = c
        ptr[c + 1] += 1
    for c in range(nc):
        ptr[c + 1] += ptr[c]
    return ptr, cell


@njit(cache=True)
def mf_block_schedule(users, items, user_block, item_block, n_blocks):
    """Group ratings by cell ``user_block[u] * B + item_block[i]`` (stable counting sort).

    Parameters
    ----------
    users, items : int arrays, shape (n,)
        Row indices of each rating.
    user_block, item_block : int arrays
        Block of every user row / item row (see :func:`mf_partition`).
    n_blocks : int
        ``B``.

    Returns
    -------
    block_ptr : int64 array, shape (B * B + 1,)
        Cell ``c`` holds ``perm[block_ptr[c]:block_ptr[c + 1]]``.
    perm : int64 array, shape (n,)
        Rating indices grouped by cell, in their original relative order.
    """
    n = users.shape[0]
    ptr, cell = _cells(users, items, user_block, item_block, n_blocks)
    fill = ptr[:-1].copy()
    perm = np.empty(n, dtype=np.int64)
    for t in range(n):
        c = cell[t]
        perm[fill[c]] = t
        fill[c] += 1
    return ptr, perm


@njit(cache=True)
def _order_by_block(block, n_blocks):
    """Rows sorted by block, stable (``np.argsort(block, kind="stable")``), and its inverse."""
    m = block.shape[0]
    start = np.zeros(n_blocks + 1, dtype=np.int64)
    for r in range(m):
        start[block[r] + 1] += 1
    for b in range(n_blocks):
        start[b + 1] += start[b]
    order = np.empty(m, dtype=np.int64)
    new = np.empty(m, dtype=np.int32)
    for r in range(m):
        w = start[block[r]]
        start[block[r]] = w + 1
        order[w] = r
        new[r] = w
    return order, new


@njit(cache=True, parallel=True)
def mf_block_layout(users, items, ratings, user_block, item_block, n_blocks):
    """Ratings grouped by cell, on rows relabelled so that every block's rows are contiguous.

    The same grouping as :func:`mf_block_schedule` (a stable counting sort by cell
    ``user_block[u] * B + item_block[i]``), done in one pass that also relabels the
    rows: working user row ``w`` is original user ``user_order[w]``, where
    ``user_order`` lists the users block by block, in increasing order within a
    block (likewise for items). Runs of the blocked kernel on the relabelled
    triples and parameters ``P[user_order]``, ... give the same numbers as on the
    original ones, while the threads write to disjoint memory ranges.

    Parameters
    ----------
    users, items : int arrays, shape (n,)
        Row indices of each rating.
    ratings : float array, shape (n,)
        Ratings.
    user_block, item_block : int arrays, shapes (n_users,), (n_items,)
        Block of every user row / item row (see :func:`mf_partition`).
    n_blocks : int
        ``B``.

    Returns
    -------
    block_ptr : int64 array, shape (B * B + 1,)
        Cell boundaries.
    users_out, items_out : int32 arrays, shape (n,)
        Relabelled rows of the ratings, grouped by cell.
    ratings_out : float array, shape (n,)
        Ratings in the same order.
    user_order, item_order : int64 arrays, shapes (n_users,), (n_items,)
        Original row of every working row.
    user_new, item_new : int32 arrays, shapes (n_users,), (n_items,)
        Working row of every original row (inverse permutations).
    """
    n = users.shape[0]
    user_order, user_new = _order_by_block(user_block, n_blocks)
    item_order, item_new = _order_by_block(item_block, n_blocks)
    # Parallel stable counting sort: the ratings are cut into a fixed number of chunks;
    # every chunk counts its ratings per cell, the chunk-major prefix sums give each
    # (cell, chunk) its slot range, and the chunks then scatter in parallel. Cell c holds
    # chunk 0's ratings of c, then chunk 1's, ...: the original relative order, exactly
    # as a serial pass (and independent of the thread count).
    nc = n_blocks * n_blocks
    nch = min(_N_CHUNKS, max(n // 16384, 1))
    cnt = np.zeros((nch, nc), dtype=np.int64)
    cell = np.empty(n, dtype=np.int32)
    for h in prange(nch):
        a = (n * h) // nch
        z = (n * (h + 1)) // nch
        for t in range(a, z):
            c = user_block[users[t]] * n_blocks + item_block[items[t]]
            cell[t] = c
            cnt[h, c] += 1
    ptr = np.zeros(nc + 1, dtype=np.int64)
    pos = 0
    for c in range(nc):
        ptr[c] = pos
        for h in range(nch):
            k = cnt[h, c]
            cnt[h, c] = pos                    # now: the first slot of (chunk h, cell c)
            pos += k
    ptr[nc] = pos
    users_out = np.empty(n, dtype=np.int32)
    items_out = np.empty(n, dtype=np.int32)
    ratings_out = np.empty_like(ratings)
    for h in prange(nch):
        a = (n * h) // nch
        z = (n * (h + 1)) // nch
        fill = cnt[h]
        for t in range(a, z):
            c = cell[t]
            k = fill[c]
            fill[c] = k + 1
            users_out[k] = user_new[users[t]]
            items_out[k] = item_new[items[t]]
            ratings_out[k] = ratings[t]
    return ptr, users_out, items_out, ratings_out, user_order, item_order, user_new, item_new


mf_block_layout_serial = njit(cache=True)(serial_twin(mf_block_layout.py_func, "mf_block_layout_serial", """\
:func:`mf_block_layout` on one thread (the same output; compiles faster): for small data.
"""))


# ----------------------------------------------------------------------------- ids
@njit(cache=True)
def _compact_codes(values, hi):
    """Distinct values of a non-negative int array with max ``hi`` (increasing), the row of
    every value (int32) and the count of every row: one counting pass and one lookup pass."""
    cnt = np.zeros(hi + 1, dtype=np.int64)
    for t in range(values.shape[0]):
        cnt[values[t]] += 1
    row = np.empty(hi + 1, dtype=np.int32)
    m = 0
    for v in range(hi + 1):
        if cnt[v] > 0:
            row[v] = m
            m += 1
    ids = np.empty(m, dtype=np.int64)
    counts = np.empty(m, dtype=np.int64)
    m = 0
    for v in range(hi + 1):
        if cnt[v] > 0:
            ids[m] = v
            counts[m] = cnt[v]
            m += 1
    codes = np.empty(values.shape[0], dtype=np.int32)
    for t in range(values.shape[0]):
        codes[t] = row[values[t]]
    return ids, codes, counts


# ----------------------------------------------------------------------------- predict
@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _predict_one(u, i, mu, bu, bi, P, Q, lo, hi):
    r = mu
    if u >= 0:
        r += bu[u]
    if i >= 0:
        r += bi[i]
        if u >= 0:
            # in the factors' dtype, as in the SGD step: a float64 accumulation of float32
            # rows took 2-3x as long (the widening), and changed a fit's SSE by 2e-11 relative
            r += row_dot(P, u, Q, i)
    if r < lo:
        r = lo
    elif r > hi:
        r = hi
    return r


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def mf_predict(users, items, mu, bu, bi, P, Q, lo, hi, out):
    """Predicted ratings ``mu + bu[u] + bi[i] + P[u] . Q[i]`` clipped to ``[lo, hi]``.

    Parameters
    ----------
    users, items : int arrays, shape (n,)
        Row indices; ``-1`` marks an unknown user/item, whose bias and the
        dot product are dropped (fallback to the known terms).
    mu, bu, bi, P, Q
        Model parameters.
    lo, hi : float
        Clipping bounds (``-inf, inf`` for none).
    out : float array, shape (n,)
        Output.
    """
    for t in prange(users.shape[0]):
        out[t] = _predict_one(users[t], items[t], mu, bu, bi, P, Q, lo, hi)


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def mf_error_sums(users, items, ratings, mu, bu, bi, P, Q, lo, hi):
    """Sums of squared and absolute prediction errors, ``(sse, sae)``.

    Predictions as in :func:`mf_predict`. The sums are taken over a fixed
    number of chunks, then added in chunk order, so they do not depend on the
    thread count.
    """
    n = users.shape[0]
    nch = min(_N_CHUNKS, max(n, 1))
    sse_c = np.zeros(nch)
    sae_c = np.zeros(nch)
    for c in prange(nch):
        a = (n * c) // nch
        z = (n * (c + 1)) // nch
        s2 = 0.0
        s1 = 0.0
        for t in range(a, z):
            e = ratings[t] - _predict_one(users[t], items[t], mu, bu, bi, P, Q, lo, hi)
            s2 += e * e
            s1 += abs(e)
        sse_c[c] = s2
        sae_c[c] = s1
    sse = 0.0
    sae = 0.0
    for c in range(nch):
        sse += sse_c[c]
        sae += sae_c[c]
    return sse, sae


@njit(cache=True, inline="always", fastmath=_FASTMATH)
def _penalty_side(total, X, b, cnt, rows, reg, reg_bias):
    """``total + sum_r cnt[r] (reg ||X[w]||^2 + reg_bias b[w]^2)``, ``w = rows[r]`` (``r`` if
    ``rows`` is empty), added in the order ``r = 0, 1, ...`` in float64.

    ``||X[w]||^2`` is taken in ``X``'s dtype, as the SGD step's dot products are (float32
    rows of 100 factors: 32 partial sums of 3-4 squares each, a relative error of order 1e-7
    per row and 1e-9 over a model). Widened to float64 it took 2.4x as long: the per-epoch
    objective of a 28.5 ms float32 ML-100k fit on 2 threads (AMD EPYC, Zen 4) took 1.04 ms
    that way, 0.48 ms this way."""
    for r in range(cnt.shape[0]):
        c = cnt[r]
        if c == 0:
            continue
        w = r if rows.shape[0] == 0 else rows[r]
        sq = np.float64(row_dot(X, w, X, w))    # the same on rows padded with zeros
        total += c * (reg * sq + reg_bias * b[w] * b[w])
    return total


@njit(cache=True, fastmath=_FASTMATH)
def mf_penalty(bu, bi, P, Q, user_counts, item_counts, reg, reg_bias, user_rows=None,
               item_rows=None):
    """Penalty part of the summed per-rating losses.

    ``sum_u n_u (reg ||P[u]||^2 + reg_bias bu[u]^2) + sum_i m_i (reg ||Q[i]||^2 + reg_bias bi[i]^2)``
    where ``n_u``/``m_i`` are the numbers of ratings of user ``u``/item ``i``:
    the sum over ratings of ``reg (||p_u||^2 + ||q_i||^2) + reg_bias (bu^2 + bi^2)``.

    Parameters
    ----------
    bu, bi, P, Q
        Model parameters.
    user_counts, item_counts : int arrays, shapes (n_users,), (n_items,)
        Ratings per row.
    reg, reg_bias : float
        Penalties.
    user_rows, item_rows : int arrays, shapes (n_users,), (n_items,), optional
        Parameters stored with relabelled rows: user ``u`` (count
        ``user_counts[u]``) lives in row ``user_rows[u]`` of ``bu``/``P``, item
        ``i`` in row ``item_rows[i]``. The terms are still added in the order
        ``u = 0, 1, ...``, so the sum equals that of the un-relabelled arrays
        bit for bit.
    """
    empty = np.empty(0, dtype=np.int64)
    if user_rows is None:
        total = _penalty_side(0.0, P, bu, user_counts, empty, reg, reg_bias)
    else:
        total = _penalty_side(0.0, P, bu, user_counts, user_rows, reg, reg_bias)
    if item_rows is None:
        return _penalty_side(total, Q, bi, item_counts, empty, reg, reg_bias)
    return _penalty_side(total, Q, bi, item_counts, item_rows, reg, reg_bias)


# ----------------------------------------------------------------------------- SVD++
# Model (Koren 2008): r_hat(u, i) = mu + bu[u] + bi[i] + Q[i] . (P[u] + z_u),
#   z_u = |N(u)|^-1/2 sum_{j in N(u)} Y[j],
# N(u) = the items u rated plus any implicit-feedback items. Per-rating loss
#   f = e^2 + reg (||P[u]||^2 + ||Q[i]||^2 + sum_{j in N(u)} ||Y[j]||^2) + reg_bias (bu^2 + bi^2),
# exact gradient (svdpp_rating_loss_grad):
#   df/dbu = -2e + 2 reg_bias bu,  df/dbi = -2e + 2 reg_bias bi,
#   df/dP[u] = -2e Q[i] + 2 reg P[u],  df/dQ[i] = -2e (P[u] + z_u) + 2 reg Q[i],
#   df/dY[j] = -2e |N(u)|^-1/2 Q[i] + 2 reg Y[j]   (j in N(u)).
# An SGD step moves by -(lr/2) grad f, as scikit-surprise's SVDpp. Its step on every
# Y[j], j in N(u), is Y[j] <- a Y[j] + (lr/s) e q (a = 1 - lr reg, s = |N(u)|^1/2, q the
# item factor before the step), hence z_u <- a z_u + lr e q exactly (|N(u)| / s^2 = 1), and
# after T consecutive steps of user u, Y[j] = a^T Y[j]_0 + g with g <- a g + (lr/s) e q: the
# same vector for all j in N(u). So the ratings are swept user by user ("runs" of one user's
# ratings): z_u is summed once at the start of a run, each rating costs O(k), and the run
# ends with one O(|N(u)| k) update of the Y rows -- exactly Surprise's arithmetic (up to
# rounding), at O(k) instead of O(|N(u)| k) per rating.
# In parallel (block-stratified like plain MF), worker b owns user block b and writes its
# Y steps to a private view Y_b[j] = D[b, j] Y[j] + A[b, j] (it sees its own steps at once);
# after every stratum the views are composed in worker order into Y (deterministic).
@njit(cache=True)
def svdpp_rating_loss_grad(r, mu, bu_u, bi_i, p, q, Y, nu_items, reg, reg_bias, grad_p, grad_q,
                           grad_y):
    """SVD++ per-rating loss and its exact gradient (factor 2 included).

    ``f = e^2 + reg (||p||^2 + ||q||^2 + sum_j ||Y[j]||^2) + reg_bias (bu^2 + bi^2)``,
    ``e = r - (mu + bu + bi + q . (p + |N|^-1/2 sum_j Y[j]))``, ``j`` over ``nu_items``.

    Parameters
    ----------
    r, mu, bu_u, bi_i : float
    p, q : float arrays, shape (k,)
    Y : float array, shape (n_items, k)
        Implicit item factors.
    nu_items : int array, shape (m,)
        ``N(u)``: the user's implicit item set (distinct rows of ``Y``).
    reg, reg_bias : float
    grad_p, grad_q : float arrays, shape (k,)
        Output: ``df/dp``, ``df/dq``.
    grad_y : float array, shape (m, k)
        Output: ``df/dY[nu_items[t]]``.

    Returns
    -------
    (f, df_dbu, df_dbi) : tuple of float
    """
    k = p.shape[0]
    m = nu_items.shape[0]
    inv = 1.0 / math.sqrt(m) if m > 0 else 0.0
    z = np.zeros(k)
    sy = 0.0
    for t in range(m):
        for f in range(k):
            y = Y[nu_items[t], f]
            z[f] += y * inv
            sy += y * y
    dot = 0.0
    sq = 0.0
    for f in range(k):
        dot += q[f] * (p[f] + z[f])
        sq += p[f] * p[f] + q[f] * q[f]
    e = r - (mu + bu_u + bi_i + dot)
    for f in range(k):
        grad_p[f] = -2.0 * e * q[f] + 2.0 * reg * p[f]
        grad_q[f] = -2.0 * e * (p[f] + z[f]) + 2.0 * reg * q[f]
    for t in range(m):
        for f in range(k):
            grad_y[t, f] = -2.0 * e * inv * q[f] + 2.0 * reg * Y[nu_items[t], f]
    loss = e * e + reg * (sq + sy) + reg_bias * (bu_u * bu_u + bi_i * bi_i)
    return loss, -2.0 * e + 2.0 * reg_bias * bu_u, -2.0 * e + 2.0 * reg_bias * bi_i


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def svdpp_implicit_sums(indptr, indices, Y, Z):
    """``Z[u] = |N(u)|^-1/2 sum_{j in N(u)} Y[j]`` for every user (0 for an empty ``N(u)``).

    ``N(u) = indices[indptr[u]:indptr[u + 1]]`` (CSR by user). In parallel over users;
    each row is summed in the CSR order, so the result does not depend on the threads.
    """
    k = Y.shape[1]
    for u in prange(indptr.shape[0] - 1):
        a = indptr[u]
        b = indptr[u + 1]
        for f in range(k):
            Z[u, f] = 0.0
        if b > a:
            inv = 1.0 / math.sqrt(b - a)
            for t in range(a, b):
                j = indices[t]
                for f in range(k):
                    Z[u, f] += Y[j, f]
            for f in range(k):
                Z[u, f] *= inv


@njit(cache=True, parallel=True)
def svdpp_user_runs(users, items, ratings, block_ptr, n_blocks, user_start):
    """Sort every cell's ratings by user in place (stable counting sort) and index the runs.

    Cell ``c = b * B + c'`` holds ratings of users in ``[user_start[b], user_start[b + 1])``
    (working rows of user block ``b``). Returns ``run_ptr`` (run ``r`` is
    ``[run_ptr[r], run_ptr[r + 1])``, one user's ratings of one cell) and
    ``cell_run_ptr`` (cell ``c``'s runs are ``cell_run_ptr[c] .. cell_run_ptr[c + 1] - 1``).
    """
    B = n_blocks
    nc = B * B
    n_runs = np.zeros(nc + 1, dtype=np.int64)
    for c in prange(nc):
        lo = block_ptr[c]
        hi = block_ptr[c + 1]
        b = c // B
        u0 = user_start[b]
        m = user_start[b + 1] - u0
        cnt = np.zeros(m + 1, dtype=np.int64)
        for t in range(lo, hi):
            cnt[users[t] - u0 + 1] += 1
        runs = 0
        for x in range(m):
            if cnt[x + 1] > 0:
                runs += 1
            cnt[x + 1] += cnt[x]
        tu = users[lo:hi].copy()
        ti = items[lo:hi].copy()
        tr = ratings[lo:hi].copy()
        for t in range(hi - lo):
            x = tu[t] - u0
            w = lo + cnt[x]
            cnt[x] += 1
            users[w] = tu[t]
            items[w] = ti[t]
            ratings[w] = tr[t]
        n_runs[c + 1] = runs
    for c in range(nc):
        n_runs[c + 1] += n_runs[c]
    run_ptr = np.empty(n_runs[nc] + 1, dtype=np.int64)
    for c in prange(nc):
        w = n_runs[c]
        for t in range(block_ptr[c], block_ptr[c + 1]):
            if t == block_ptr[c] or users[t] != users[t - 1]:
                run_ptr[w] = t
                w += 1
    run_ptr[n_runs[nc]] = block_ptr[nc]
    return run_ptr, n_runs


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def svdpp_sgd_epoch_blocked(users, items, ratings, block_ptr, run_ptr, cell_run_ptr, n_blocks,
                            strata, seed, mu, bu, bi, P, Q, Y, indptr, indices, inv_sqrt, D, A,
                            lr, reg, reg_bias):
    """One SVD++ SGD epoch (scikit-surprise SVDpp's steps), block-stratified, user-major runs.

    Parameters
    ----------
    users, items, ratings, block_ptr
        Rating triples grouped by cell and, within a cell, by user
        (:func:`svdpp_user_runs`).
    run_ptr, cell_run_ptr : int64 arrays
        Runs (one user's ratings in one cell), from :func:`svdpp_user_runs`.
    n_blocks, strata
        As in :func:`mf_sgd_epoch_blocked` (``n_blocks = 1``: serial).
    seed : int
        ``>= 0``: every cell visits its runs in a random order and shuffles each run,
        from streams derived from ``(seed, cell)`` and ``(seed, run)``; ``-1``: array order.
    mu, bu, bi, P, Q, Y
        Parameters, updated in place.
    indptr, indices : int arrays
        ``N(u) = indices[indptr[u]:indptr[u + 1]]`` (CSR by user, working rows).
    inv_sqrt : float array, shape (n_users,)
        ``|N(u)|^-1/2`` (0 if empty).
    D, A : float arrays, shapes (B, n_items), (B, n_items, k)
        Scratch: the workers' private views of ``Y`` (any content on entry).
    lr, reg, reg_bias : float

    Returns
    -------
    float
        Running sum of squared errors.
    """
    B = n_blocks
    k = P.shape[1]
    ni = Y.shape[0]
    shrink = 1.0 - lr * reg
    for j in prange(ni):
        for b in range(B):
            D[b, j] = 1.0
            for f in range(k):
                A[b, j, f] = 0.0
    cell_sse = np.zeros(B * B)
    nc = B * B
    for t in range(strata.shape[0]):
        s = strata[t]
        for b in prange(B):
            c = mf_stratum_blocks(s, b, B)
            r0 = cell_run_ptr[c]
            nr = cell_run_ptr[c + 1] - r0
            order = np.arange(nr)
            if seed >= 0:
                state = _cell_seed(seed, c)
                for x in range(nr - 1, 0, -1):
                    state, bits = _splitmix64(state)
                    y = int(_u53(bits) * (x + 1))
                    tmp = order[x]
                    order[x] = order[y]
                    order[y] = tmp
            z = np.empty(k)
            g = np.empty(k)
            sse = 0.0
            for x in range(nr):
                rr = r0 + order[x]
                lo = run_ptr[rr]
                hi = run_ptr[rr + 1]
                if seed >= 0:
                    _shuffle_range(users, items, ratings, lo, hi, _cell_seed(seed, nc + rr))
                u = users[lo]
                a0 = indptr[u]
                a1 = indptr[u + 1]
                inv = inv_sqrt[u]
                for f in range(k):
                    z[f] = 0.0
                    g[f] = 0.0
                for jj in range(a0, a1):
                    j = indices[jj]
                    d = D[b, j]
                    for f in range(k):
                        z[f] += d * Y[j, f] + A[b, j, f]
                for f in range(k):
                    z[f] *= inv
                for tt in range(lo, hi):
                    i = items[tt]
                    dot = 0.0
                    for f in range(k):
                        dot += Q[i, f] * (P[u, f] + z[f])
                    e = ratings[tt] - (mu + bu[u] + bi[i] + dot)
                    sse += e * e
                    bu[u] += lr * (e - reg_bias * bu[u])
                    bi[i] += lr * (e - reg_bias * bi[i])
                    le = lr * e
                    lg = le * inv
                    for f in range(k):
                        pf = P[u, f]
                        qf = Q[i, f]
                        zf = z[f]
                        P[u, f] = shrink * pf + le * qf
                        Q[i, f] = shrink * qf + le * (pf + zf)
                        z[f] = shrink * zf + le * qf
                        g[f] = shrink * g[f] + lg * qf
                w = shrink ** (hi - lo)
                for jj in range(a0, a1):
                    j = indices[jj]
                    D[b, j] *= w
                    for f in range(k):
                        A[b, j, f] = w * A[b, j, f] + g[f]
            cell_sse[c] = sse
        for j in prange(ni):                       # compose the workers' views, in worker order
            for b in range(B):
                d = D[b, j]
                for f in range(k):
                    Y[j, f] = d * Y[j, f] + A[b, j, f]
                    A[b, j, f] = 0.0
                D[b, j] = 1.0
    total = 0.0
    for c in range(B * B):
        total += cell_sse[c]
    return total


@njit(cache=True)
def svdpp_implicit_csr(users, items, n_users, n_items):
    """CSR of the distinct (user, item) pairs by user (``indptr, indices``, items increasing) and by
    item (``item_ptr, item_users``, users increasing); also ``|N(u)|^-1/2`` per user."""
    # (user, item) pairs sorted by user, then item: two stable counting sorts (by item, then by
    # user; np.unique's sort took 5 ms of an 80k-rating fit), then duplicates dropped
    n = users.shape[0]
    pos = np.zeros(n_items + 1, dtype=np.int64)
    for t in range(n):
        pos[items[t] + 1] += 1
    for j in range(n_items):
        pos[j + 1] += pos[j]
    by_item = np.empty(n, dtype=np.int64)
    for t in range(n):
        j = items[t]
        by_item[pos[j]] = t
        pos[j] += 1
    indptr = np.zeros(n_users + 1, dtype=np.int64)       # first: counts of all pairs, then starts
    for t in range(n):
        indptr[users[t] + 1] += 1
    for u in range(n_users):
        indptr[u + 1] += indptr[u]
    fill = indptr[:-1].copy()
    su = np.empty(n, dtype=np.int32)
    si = np.empty(n, dtype=np.int32)
    for x in range(n):
        t = by_item[x]
        u = users[t]
        su[fill[u]] = u
        si[fill[u]] = items[t]
        fill[u] += 1
    m = 0
    for x in range(n):
        if x == 0 or su[x] != su[x - 1] or si[x] != si[x - 1]:
            su[m] = su[x]
            si[m] = si[x]
            m += 1
    indptr[:] = 0
    indices = np.empty(m, dtype=np.int32)
    item_ptr = np.zeros(n_items + 1, dtype=np.int64)
    for t in range(m):
        indptr[su[t] + 1] += 1
        item_ptr[si[t] + 1] += 1
        indices[t] = si[t]
    for u in range(n_users):
        indptr[u + 1] += indptr[u]
    for j in range(n_items):
        item_ptr[j + 1] += item_ptr[j]
    fill = item_ptr[:-1].copy()
    item_users = np.empty(m, dtype=np.int32)
    for t in range(m):                                 # pairs sorted by user: users increase
        j = si[t]
        item_users[fill[j]] = su[t]
        fill[j] += 1
    inv_sqrt = np.zeros(n_users)
    for u in range(n_users):
        c = indptr[u + 1] - indptr[u]
        if c > 0:
            inv_sqrt[u] = 1.0 / math.sqrt(c)
    return indptr, indices, item_ptr, item_users, inv_sqrt
