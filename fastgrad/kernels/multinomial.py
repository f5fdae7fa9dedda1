"""Multinomial logistic regression kernels (reference-class softmax).

Conventions (see the package docs): there are ``K`` classes coded
``0, ..., K-1``; the LAST class ``K-1`` is the reference with logit 0. For a
row ``x`` the logits are ``eta_k = coef[k] . x + intercept[k]`` for
``k < K-1`` and ``eta_{K-1} = 0``, and

    P(k | x) = exp(eta_k) / (1 + sum_{i < K-1} exp(eta_i)).

The per-row negative log-likelihood is ``lse(eta) - eta_{y}`` where the
log-sum-exp includes the reference class's 0 logit. With row weights ``w``
every kernel returns the weighted MEAN ``sum_r w_r nll_r / sum_r w_r``
(weights of ones give the plain mean) and the matching gradient / Hessian:

    d nll_r / d theta_k        = (p_rk - [y_r = k]) x~_r
    d2 nll_r / d theta_i d theta_j = p_ri ([i = j] - p_rj) x~_r x~_r^T

(``x~`` is ``x`` with a trailing 1 for the intercept). The Hessian is
positive semi-definite; each of its ``(K-1) x (K-1)`` blocks
``X~^T W_ij X~`` with ``W_ij = diag(w_r p_ri ([i = j] - p_rj))`` is symmetric
and ``W_ij = W_ji``, so only the ``K(K-1)/2`` upper blocks' upper triangles are
accumulated and then mirrored.

Dense ``X`` is an ``(n, p)`` float64 array; sparse ``X`` is given by the CSR
triplet ``(data, indices, indptr)``. Rows are processed in parallel in a fixed
number of chunks that depends only on the problem size (never on the thread
count), each with its own accumulator, followed by a fixed-order reduction: the
results are identical for any number of threads.

All functions are ``@njit`` dispatchers: callable from Python or from a user's
own ``@njit`` code. Inputs are not validated here (the front-end
:func:`fastgrad.multinomial.fit` does that).
"""
import math

import numpy as np
from numba import njit, prange

__all__ = [
    "multinomial_loss", "multinomial_loss_grad", "multinomial_proba", "multinomial_hessian",
    "multinomial_loss_csr", "multinomial_loss_grad_csr", "multinomial_proba_csr",
    "multinomial_hessian_csr",
]

_ROWS_PER_CHUNK = 1024       # loss / gradient chunks
_MAX_CHUNKS = 256
_HESS_ROWS_PER_CHUNK = 1024  # Hessian chunks (each owns a full accumulator)
_HESS_MAX_CHUNKS = 32
_HESS_BUDGET = 1 << 26       # bytes for all Hessian chunk accumulators together
_TILE = 64                   # rows per tile in the dense Hessian
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


# Flags passed from one jitted function to another as the constants True / False are
# typed Literal[bool] and make the callee compile once per value; ``bool(np.int64(v))``
# is an ordinary bool, so each core compiles once (issue 14: the first fit compiled
# _loss_grad_core four times).


# --------------------------------------------------------------------------- helpers

@njit(cache=True, inline="always")
def _n_chunks(n, rows, cap):
    c = (n + rows - 1) // rows
    return max(1, min(c, cap))


@njit(cache=True, inline="always")
def _row_logits(dense, X, data, indices, indptr, r, coef, intercept, eta):
    """Fill ``eta[:K-1]`` with the logits of row ``r``."""
    km1 = coef.shape[0]
    for k in range(km1):
        eta[k] = intercept[k]
    if dense:
        p = coef.shape[1]
        for k in range(km1):
            s = 0.0
            for a in range(p):
                s += coef[k, a] * X[r, a]
            eta[k] += s
    else:
        for t in range(indptr[r], indptr[r + 1]):
            a = indices[t]
            v = data[t]
            for k in range(km1):
                eta[k] += coef[k, a] * v


@njit(cache=True, inline="always")
def _softmax_ref(eta, km1, prob):
    """Probabilities of the first ``km1`` classes into ``prob``; returns the
    log-sum-exp of ``(eta[0], ..., eta[km1-1], 0)`` (overflow-safe)."""
    m = 0.0
    for k in range(km1):
        if eta[k] > m:
            m = eta[k]
    s = math.exp(-m)
    for k in range(km1):
        e = math.exp(eta[k] - m)
        prob[k] = e
        s += e
    inv = 1.0 / s
    for k in range(km1):
        prob[k] *= inv
    return m + math.log(s)


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _loss_grad_core(dense, need_grad, X, data, indices, indptr, y, coef, intercept, w):
    km1, p = coef.shape
    n = y.shape[0]
    nch = _n_chunks(n, _ROWS_PER_CHUNK, _MAX_CHUNKS)
    # np.zeros in a parallel function is a parfor of its own (a separate gufunc to compile):
    # the buffers come zeroed from a serial helper
    part, wpart, spart, gacc = _core_buffers(nch, need_grad, km1, p)
    for c in prange(nch):
        r0 = c * n // nch
        r1 = (c + 1) * n // nch
        eta = np.empty(km1)
        prob = np.empty(km1)
        loss = 0.0
        wsum = 0.0
        spread = 0.0
        for r in range(r0, r1):
            wr = w[r]
            _row_logits(dense, X, data, indices, indptr, r, coef, intercept, eta)
            hi = 0.0
            lo = 0.0
            for k in range(km1):
                hi = max(hi, eta[k])
                lo = min(lo, eta[k])
            spread = max(spread, hi - lo)
            lse = _softmax_ref(eta, km1, prob)
            yr = y[r]
            loss += wr * (lse - (eta[yr] if yr < km1 else 0.0))
            wsum += wr
            if need_grad:
                G = gacc[c]
                for k in range(km1):
                    res = wr * (prob[k] - (1.0 if yr == k else 0.0))
                    G[k, p] += res
                    prob[k] = res
                if dense:
                    for k in range(km1):
                        res = prob[k]
                        for a in range(p):
                            G[k, a] += res * X[r, a]
                else:
                    for t in range(indptr[r], indptr[r + 1]):
                        a = indices[t]
                        v = data[t]
                        for k in range(km1):
                            G[k, a] += prob[k] * v
        part[c] = loss
        wpart[c] = wsum
        spart[c] = spread
    return _core_reduce(part, wpart, spart, gacc, need_grad, km1, p)


@njit(cache=True)
def _core_reduce(part, wpart, spart, gacc, need_grad, km1, p):
    """The chunk sums of :func:`_loss_grad_core` added in chunk order (a serial helper: array
    expressions in the parallel kernel would each be a parfor of their own)."""
    nch = part.shape[0]
    total = 0.0
    wtot = 0.0
    spread = 0.0
    for c in range(nch):
        total += part[c]
        wtot += wpart[c]
        spread = max(spread, spart[c])
    grad_coef = np.zeros((km1, p))
    grad_int = np.zeros(km1)
    if need_grad:
        for c in range(nch):
            for k in range(km1):
                for a in range(p):
                    grad_coef[k, a] += gacc[c, k, a]
                grad_int[k] += gacc[c, k, p]
        grad_coef /= wtot
        grad_int /= wtot
    return total / wtot, grad_coef, grad_int, spread


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _proba_core(dense, X, data, indices, indptr, n, coef, intercept):
    km1 = coef.shape[0]
    out = np.empty((n, km1 + 1))
    nch = _n_chunks(n, _ROWS_PER_CHUNK, _MAX_CHUNKS)
    for c in prange(nch):
        eta = np.empty(km1)
        prob = np.empty(km1)
        for r in range(c * n // nch, (c + 1) * n // nch):
            _row_logits(dense, X, data, indices, indptr, r, coef, intercept, eta)
            lse = _softmax_ref(eta, km1, prob)
            for k in range(km1):
                out[r, k] = prob[k]
            out[r, km1] = math.exp(-lse)
    return out


@njit(cache=True, inline="always")
def _row_block_weights(proba, w, r, km1, scale, wt, col):
    """``wt[blk, col] = w_r p_ri ([i = j] - p_rj) * scale`` for the upper blocks."""
    blk = 0
    for i in range(km1):
        pi = proba[r, i] * w[r] * scale
        for j in range(i, km1):
            if i == j:
                wt[blk, col] = pi * (1.0 - proba[r, i])
            else:
                wt[blk, col] = -pi * proba[r, j]
            blk += 1


@njit(cache=True, inline="always")
def _hess_setup(n, p, proba, fit_intercept):
    """Sizes and zeroed per-chunk accumulators ``(nch, nblk, q, q)`` of a Hessian."""
    km1 = proba.shape[1] - 1
    q = p + 1 if fit_intercept else p
    nblk = km1 * (km1 + 1) // 2
    per = 8 * nblk * q * q
    cap = max(1, min(_HESS_MAX_CHUNKS, _HESS_BUDGET // max(per, 1)))
    nch = _n_chunks(n, _HESS_ROWS_PER_CHUNK, cap)
    return km1, q, nblk, nch, _zeros4(nch, nblk, q, q)


@njit(cache=True)
def _zeros4(a, b, c, d):
    """``np.zeros((a, b, c, d))`` outside the parallel kernels (there it would be a parfor)."""
    return np.zeros((a, b, c, d))


@njit(cache=True)
def _core_buffers(nch, need_grad, km1, p):
    """Zeroed partial sums of :func:`_loss_grad_core` (see :func:`_zeros4`)."""
    return np.zeros(nch), np.zeros(nch), np.zeros(nch), np.zeros((nch if need_grad else 0, km1, p + 1))


@njit(cache=True, parallel=True)
def _reduce_and_mirror(acc, km1, q):
    """Sum the chunk accumulators (fixed order) and build the symmetric
    ``((K-1) q, (K-1) q)`` Hessian from the upper triangles of the upper blocks."""
    nch = acc.shape[0]
    nblk = acc.shape[1]
    m = km1 * q
    H = np.empty((m, m))
    for blk in prange(nblk):
        # recover (i, j) from the block number
        i = 0
        start = 0
        while start + (km1 - i) <= blk:
            start += km1 - i
            i += 1
        j = i + (blk - start)
        for a in range(q):
            for b in range(a, q):
                s = 0.0
                for c in range(nch):
                    s += acc[c, blk, a, b]
                H[i * q + a, j * q + b] = s
                H[i * q + b, j * q + a] = s
                H[j * q + a, i * q + b] = s
                H[j * q + b, i * q + a] = s
    return H


@njit(cache=True, inline="always")
def _weight_total(w):
    s = 0.0
    for r in range(w.shape[0]):
        s += w[r]
    return s


# --------------------------------------------------------------------------- dense

@njit(cache=True)
def multinomial_loss(X, y, coef, intercept, sample_weight):
    """Weighted mean negative log-likelihood (dense ``X``).

    Parameters
    ----------
    X : ndarray, shape (n, p), float64
    y : ndarray, shape (n,), int64
        Class codes in ``0..K-1``; ``K-1`` is the reference class.
    coef : ndarray, shape (K-1, p)
    intercept : ndarray, shape (K-1,)
        Zeros for a model without intercept.
    sample_weight : ndarray, shape (n,)
        Non-negative row weights with a positive sum (ones for the plain mean).

    Returns
    -------
    float
        ``sum_r w_r (lse_r - eta_{r, y_r}) / sum_r w_r``.
    """
    e = np.empty(0)
    ei = np.empty(0, dtype=np.int64)
    return _loss_grad_core(bool(np.int64(1)), bool(np.int64(0)), np.ascontiguousarray(X), e, ei,
                           ei, y, coef, intercept, sample_weight)[0]


@njit(cache=True)
def multinomial_loss_grad(X, y, coef, intercept, sample_weight):
    """Weighted mean negative log-likelihood and its gradient (dense ``X``).

    Parameters are as in :func:`multinomial_loss`.

    Returns
    -------
    loss : float
    grad_coef : ndarray, shape (K-1, p)
        ``sum_r w_r (p_rk - [y_r = k]) x_r / sum_r w_r``.
    grad_intercept : ndarray, shape (K-1,)
        ``sum_r w_r (p_rk - [y_r = k]) / sum_r w_r``.
    """
    loss, grad_coef, grad_int, _ = _loss_grad_spread(X, y, coef, intercept,
                                                                sample_weight)
    return loss, grad_coef, grad_int


@njit(cache=True)
def _loss_grad_spread(X, y, coef, intercept, sample_weight):
    """As :func:`multinomial_loss_grad`, also returning the largest log-odds between
    any two classes over all rows, ``max_r (max_k eta_rk - min_k eta_rk)``
    (``eta_{K-1} = 0`` included): the fit's separation monitor, at no extra pass
    over ``X``. Private (not exported by ``fastgrad.kernels``)."""
    e = np.empty(0)
    ei = np.empty(0, dtype=np.int64)
    return _loss_grad_core(bool(np.int64(1)), bool(np.int64(1)), np.ascontiguousarray(X), e, ei,
                           ei, y, coef, intercept, sample_weight)


@njit(cache=True)
def multinomial_proba(X, coef, intercept):
    """Class probabilities, shape ``(n, K)`` (last column: the reference class)."""
    e = np.empty(0)
    ei = np.empty(0, dtype=np.int64)
    return _proba_core(bool(np.int64(1)), np.ascontiguousarray(X), e, ei, ei, X.shape[0], coef,
                       intercept)


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _hessian_dense_acc(X, proba, w, fit_intercept, scale):
    n, p = X.shape
    km1, q, nblk, nch, acc = _hess_setup(n, p, proba, fit_intercept)
    for c in prange(nch):
        r0 = c * n // nch
        r1 = (c + 1) * n // nch
        xt = np.empty((q, _TILE))
        wt = np.empty((nblk, _TILE))
        prod = np.empty(_TILE)
        A = acc[c]
        for t0 in range(r0, r1, _TILE):
            T = min(_TILE, r1 - t0)
            for r in range(T):
                for a in range(p):
                    xt[a, r] = X[t0 + r, a]
                if fit_intercept:
                    xt[p, r] = 1.0
                _row_block_weights(proba, w, t0 + r, km1, scale, wt, r)
            for a in range(q):
                for b in range(a, q):
                    for r in range(T):
                        prod[r] = xt[a, r] * xt[b, r]
                    for k in range(nblk):
                        s = 0.0
                        for r in range(T):
                            s += prod[r] * wt[k, r]
                        A[k, a, b] += s
    return acc


@njit(cache=True)
def multinomial_hessian(X, proba, sample_weight, fit_intercept):
    """Hessian of the weighted mean negative log-likelihood (dense ``X``).

    Parameters
    ----------
    X : ndarray, shape (n, p), float64
    proba : ndarray, shape (n, K)
        Class probabilities at the current parameters (e.g. from
        :func:`multinomial_proba`); only the first ``K-1`` columns are read.
    sample_weight : ndarray, shape (n,)
    fit_intercept : bool
        Whether the parameter vector of each class ends with an intercept.

    Returns
    -------
    ndarray, shape ((K-1) q, (K-1) q)
        With ``q = p + fit_intercept`` and the parameters ordered class by
        class, ``theta = [coef[0], intercept[0], coef[1], intercept[1], ...]``
        (i.e. ``theta.reshape(K-1, q)``). Block ``(i, j)`` is
        ``X~^T diag(w_r p_ri ([i = j] - p_rj)) X~ / sum_r w_r``.
    """
    km1 = proba.shape[1] - 1
    q = X.shape[1] + (1 if fit_intercept else 0)
    acc = _hessian_dense_acc(X, proba, sample_weight, fit_intercept,
                             1.0 / _weight_total(sample_weight))
    return _reduce_and_mirror(acc, km1, q)


# --------------------------------------------------------------------------- CSR

@njit(cache=True)
def multinomial_loss_csr(data, indices, indptr, y, coef, intercept, sample_weight):
    """As :func:`multinomial_loss` for a CSR matrix ``(data, indices, indptr)``
    with ``coef.shape[1]`` columns."""
    e = np.empty((0, 0))
    return _loss_grad_core(bool(np.int64(0)), bool(np.int64(0)), e, data, indices, indptr, y,
                           coef, intercept,
                           sample_weight)[0]


@njit(cache=True)
def multinomial_loss_grad_csr(data, indices, indptr, y, coef, intercept, sample_weight):
    """As :func:`multinomial_loss_grad` for a CSR matrix ``(data, indices, indptr)``
    with ``coef.shape[1]`` columns."""
    loss, grad_coef, grad_int, _ = _loss_grad_spread_csr(
        data, indices, indptr, y, coef, intercept, sample_weight)
    return loss, grad_coef, grad_int


@njit(cache=True)
def _loss_grad_spread_csr(data, indices, indptr, y, coef, intercept, sample_weight):
    """As ``_loss_grad_spread`` for a CSR matrix ``(data, indices, indptr)``."""
    e = np.empty((0, 0))
    return _loss_grad_core(bool(np.int64(0)), bool(np.int64(1)), e, data, indices, indptr, y,
                           coef, intercept, sample_weight)


@njit(cache=True)
def multinomial_proba_csr(data, indices, indptr, coef, intercept):
    """As :func:`multinomial_proba` for a CSR matrix ``(data, indices, indptr)``."""
    e = np.empty((0, 0))
    return _proba_core(bool(np.int64(0)), e, data, indices, indptr, indptr.shape[0] - 1, coef,
                       intercept)


@njit(cache=True, parallel=True)
def _hessian_csr_acc(data, indices, indptr, n_features, proba, w, fit_intercept, scale):
    n = indptr.shape[0] - 1
    p = n_features
    km1, q, nblk, nch, acc = _hess_setup(n, p, proba, fit_intercept)
    for c in prange(nch):
        wt = np.empty((nblk, 1))
        A = acc[c]
        for r in range(c * n // nch, (c + 1) * n // nch):
            _row_block_weights(proba, w, r, km1, scale, wt, 0)
            start = indptr[r]
            stop = indptr[r + 1]
            for s in range(start, stop):
                a = indices[s]
                va = data[s]
                for t in range(s, stop):
                    b = indices[t]
                    v = va * data[t]
                    lo = min(a, b)
                    hi = max(a, b)
                    for k in range(nblk):
                        A[k, lo, hi] += wt[k, 0] * v
                if fit_intercept:
                    for k in range(nblk):
                        A[k, a, p] += wt[k, 0] * va
            if fit_intercept:
                for k in range(nblk):
                    A[k, p, p] += wt[k, 0]
    return acc


@njit(cache=True)
def multinomial_hessian_csr(data, indices, indptr, n_features, proba, sample_weight,
                            fit_intercept):
    """As :func:`multinomial_hessian` for a CSR matrix ``(data, indices, indptr)``
    with ``n_features`` columns (indices must be free of duplicates)."""
    km1 = proba.shape[1] - 1
    q = n_features + (1 if fit_intercept else 0)
    acc = _hessian_csr_acc(data, indices, indptr, n_features, proba, sample_weight,
                           fit_intercept, 1.0 / _weight_total(sample_weight))
    return _reduce_and_mirror(acc, km1, q)
