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

from ._math import softplus, softplus_sigmoid

__all__ = ["hlsm_nll_grad", "hlsm_nll", "hlsm_pair_probabilities"]


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
