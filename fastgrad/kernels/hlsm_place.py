"""Kernel placing nodes against fixed anchor positions (the multilevel HLSM start).

With shared positions only (``eps = 0``) and every anchor ``j`` at a fixed
position ``x_j``, the negative log-likelihood of one more node at ``u`` is, up
to terms free of ``u``,

    f(u) = sum_j [ m * sum_k softplus(alpha_k - D_j) + c_j D_j ],  D_j = ||u - x_j||^2,

with ``c_j`` the node's ties to anchor ``j`` summed over layers (and over both
dyads when directed) and ``m`` the dyads per pair and layer (1 undirected,
2 directed). With ``s_kj = sigmoid(alpha_k - D_j)`` and ``r_j = c_j - m sum_k s_kj``:

    grad f = 2 sum_j r_j (u - x_j),
    hess f = sum_j [ 4 m sum_k s_kj (1 - s_kj) (u - x_j)(u - x_j)^T + 2 r_j I ].

Each node is solved on its own (damped Newton with backtracking on ``f``),
so the loop over nodes is parallel and the result does not depend on the
number of threads.
"""
import numpy as np
from numba import njit, prange

from ._math import softplus_sigmoid

__all__ = ["hlsm_place_nodes", "hlsm_place_objective"]


@njit(cache=True)
def hlsm_place_objective(u, anchors, alpha, m, cols, cnts, grad, hess):
    """``f(u)`` of the module docstring, with its gradient and Hessian.

    Parameters
    ----------
    u : float64 array, shape (d,)
        Position of the node.
    anchors : float64 array, shape (n_anchors, d)
        Fixed positions ``x_j``.
    alpha : float64 array, shape (K,)
        Layer intercepts.
    m : float
        Dyads per pair and layer (1.0 undirected, 2.0 directed).
    cols : int64 array
        Anchors the node is tied to.
    cnts : float64 array
        Ties ``c_j`` to each of ``cols`` (summed over layers).
    grad : float64 array, shape (d,)
        Output: gradient.
    hess : float64 array, shape (d, d)
        Output: Hessian.

    Returns
    -------
    float
    """
    na, d = anchors.shape
    K = alpha.shape[0]
    f = 0.0
    grad[:] = 0.0
    hess[:, :] = 0.0
    diff = np.empty(d)
    for j in range(na):
        D = 0.0
        for c in range(d):
            diff[c] = u[c] - anchors[j, c]
            D += diff[c] * diff[c]
        r = 0.0
        w = 0.0
        for k in range(K):
            sp, s = softplus_sigmoid(alpha[k] - D)
            f += m * sp
            r -= m * s
            w += m * s * (1.0 - s)
        for c in range(d):
            grad[c] += 2.0 * r * diff[c]
            hess[c, c] += 2.0 * r
            for e in range(d):
                hess[c, e] += 4.0 * w * diff[c] * diff[e]
    for p in range(cols.shape[0]):
        j = cols[p]
        D = 0.0
        for c in range(d):
            diff[c] = u[c] - anchors[j, c]
            D += diff[c] * diff[c]
        f += cnts[p] * D
        for c in range(d):
            grad[c] += 2.0 * cnts[p] * diff[c]
            hess[c, c] += 2.0 * cnts[p]
    return f


@njit(cache=True)
def _solve_damped(H, g, mu, out):
    """``out = -(H + mu I)^{-1} g`` by Cholesky; False if not positive definite."""
    d = g.shape[0]
    L = np.zeros((d, d))
    for i in range(d):
        for j in range(i + 1):
            s = H[i, j] + (mu if i == j else 0.0)
            for q in range(j):
                s -= L[i, q] * L[j, q]
            if i == j:
                if not s > 0.0:
                    return False
                L[i, i] = np.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
    y = np.empty(d)
    for i in range(d):
        s = -g[i]
        for q in range(i):
            s -= L[i, q] * y[q]
        y[i] = s / L[i, i]
    for i in range(d - 1, -1, -1):
        s = y[i]
        for q in range(i + 1, d):
            s -= L[q, i] * out[q]
        out[i] = s / L[i, i]
    return True


@njit(parallel=True, cache=True)
def hlsm_place_nodes(u0, anchors, alpha, m, ptr, cols, cnts, max_newton, out):
    """Minimise ``f`` of the module docstring for each node, from ``u0``.

    Parameters
    ----------
    u0 : float64 array, shape (n_nodes, d)
        Starting positions (e.g. the mean of the tied anchors).
    anchors : float64 array, shape (n_anchors, d)
    alpha : float64 array, shape (K,)
    m : float
        1.0 (undirected) or 2.0 (directed).
    ptr : int64 array, shape (n_nodes + 1,)
        Node ``i``'s ties are ``cols[ptr[i]:ptr[i + 1]]`` with counts ``cnts[...]``.
    cols : int64 array
    cnts : float64 array
    max_newton : int
        Newton iterations per node.
    out : float64 array, shape (n_nodes, d)
        Output positions. A node with no tie to any anchor has no finite
        minimiser; it is left at ``u0``.
    """
    nn, d = u0.shape
    for i in prange(nn):
        u = u0[i].copy()
        lo, hi = ptr[i], ptr[i + 1]
        if hi == lo:
            out[i] = u
            continue
        c = cols[lo:hi]
        w = cnts[lo:hi]
        g = np.empty(d)
        H = np.empty((d, d))
        g2 = np.empty(d)
        H2 = np.empty((d, d))
        step = np.empty(d)
        trial = np.empty(d)
        f = hlsm_place_objective(u, anchors, alpha, m, c, w, g, H)
        mu = 0.0
        for _ in range(max_newton):
            gn = 0.0
            hn = 0.0
            for a in range(d):
                gn += g[a] * g[a]
                hn = max(hn, abs(H[a, a]))
            if gn <= 1e-20 * (1.0 + f * f):
                break
            if mu == 0.0:
                mu = 1e-10 * (hn + 1.0)
            ok = False
            for _try in range(60):
                if _solve_damped(H, g, mu, step):
                    for a in range(d):
                        trial[a] = u[a] + step[a]
                    ft = hlsm_place_objective(trial, anchors, alpha, m, c, w, g2, H2)
                    if ft <= f:
                        ok = True
                        break
                mu = max(mu * 10.0, 1e-8 * (hn + 1.0))
            if not ok:
                break
            done = f - ft <= 1e-12 * (1.0 + abs(f))
            u[:] = trial
            g[:] = g2
            H[:, :] = H2
            f = ft
            mu = mu * 0.1
            if done:
                break
        out[i] = u
