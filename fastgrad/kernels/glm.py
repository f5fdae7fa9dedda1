"""GLM kernels: fused loss + gradient passes and coordinate descent.

Losses (``loss`` code): ``LOSS_SQUARED = 0`` is ``(1/2)(y - t)^2`` and
``LOSS_LOGISTIC = 1`` is ``log(1 + exp(t)) - y t`` for ``y`` in ``{0, 1}``,
with linear predictor ``t_i = x_i . coef + intercept``.

Derivatives in ``t`` (derived here, not copied from the course notes):
squared ``l' = t - y``, ``l'' = 1``; logistic ``l' = sigmoid(t) - y``,
``l'' = sigmoid(t) (1 - sigmoid(t))``.

Weights convention of every kernel: ``sw`` holds the per-sample weights *of
the sum*, i.e. the value is ``sum_i sw_i loss_i``. The front-end passes
``sw = sample_weight / sum(sample_weight)`` so that this is the weighted mean
of DESIGN.md. Penalties are not part of the loss kernels; the coordinate
descent kernels include the elastic-net penalty
``lam (l1_ratio ||w||_1 + (1 - l1_ratio)/2 ||w||^2)``.

Parallel passes split the rows into chunks of a fixed size (``CHUNK`` rows,
independent of the number of threads), accumulate per chunk and reduce the
chunks serially in order: results are bit-identical for any thread count.
"""

import numpy as np
from numba import njit, prange

from ._math import fast_softplus64, fast_softplus_sigmoid64

__all__ = [
    "LOSS_SQUARED", "LOSS_LOGISTIC",
    "glm_loss_grad", "glm_loss_grad_csr", "glm_loss", "glm_loss_csr",
    "glm_cd", "glm_cd_csc", "glm_cd_gram", "glm_col_dots", "glm_col_dots_csc",
]

LOSS_SQUARED = 0
LOSS_LOGISTIC = 1
CHUNK = 1024
# reassociation lets LLVM vectorise the row dot products; the code is the same
# for every row whatever the thread count, so results stay deterministic.
_FM = {"reassoc", "contract"}


# The logistic terms use the arithmetic-only softplus/sigmoid of ``_math`` (relative
# error below 2 ulp) instead of libm's ``exp``/``log1p``: those are calls that LLVM
# cannot inline, so every row of a pass paid two calls, a ``vzeroupper`` and the
# spill of the live AVX-512 registers around them (about 30% of a dense
# logistic pass at p=100). NaN in ``t`` gives NaN loss and gradient, ``+-inf`` the
# exact limits.

@njit(cache=True, inline="always")
def _terms(loss, y, t):
    """(loss, dloss/dt, d2loss/dt2) of one sample."""
    if loss == LOSS_LOGISTIC:
        sp, s = fast_softplus_sigmoid64(t)
        if t != t:
            s = t
        return sp - y * t, s - y, s * (1.0 - s)
    d = t - y
    return 0.5 * d * d, d, 1.0


@njit(cache=True, inline="always")
def _value(loss, y, t):
    if loss == LOSS_LOGISTIC:
        sp = fast_softplus64(t)
        if t != t:
            sp = t
        return sp - y * t
    d = t - y
    return 0.5 * d * d


@njit(cache=True, inline="always")
def _nchunks(n):
    return max(1, (n + CHUNK - 1) // CHUNK)


@njit(parallel=True, cache=True, fastmath=_FM)
def glm_loss_grad(X, y, sw, coef, intercept, loss, grad, curv):
    """Weighted loss and its gradient in one pass over a dense ``X``.

    Parameters
    ----------
    X : float64 array, shape (n, p)
        Design matrix; C-contiguous is fastest (each row is read once).
    y : float64 array, shape (n,)
        Targets (``{0, 1}`` for the logistic loss).
    sw : float64 array, shape (n,)
        Weights of the sum (``1/n`` each for a plain mean).
    coef : float64 array, shape (p,)
    intercept : float
    loss : int
        ``LOSS_SQUARED`` (0) or ``LOSS_LOGISTIC`` (1).
    grad : float64 array, shape (p,)
        Output: ``sum_i sw_i l'(t_i) x_i``.
    curv : float64 array, shape (n,) or (0,)
        Output if of length n: ``sw_i l''(t_i)`` (Newton/IRLS weights);
        pass an empty array to skip.

    Returns
    -------
    value : float
        ``sum_i sw_i loss(y_i, t_i)``.
    grad_intercept : float
        ``sum_i sw_i l'(t_i)``.
    """
    n, p = X.shape
    nch = _nchunks(n)
    want_curv = curv.shape[0] == n
    if nch == 1:  # small input (e.g. a mini-batch): no parallel launch
        for j in range(p):
            grad[j] = 0.0
        return _rows_dense(X, y, sw, coef, intercept, loss, grad, curv, want_curv, 0, n)
    acc = np.zeros((nch, p + 2))
    for k in prange(nch):
        i0 = k * CHUNK
        g = np.zeros(p)
        val, gc = _rows_dense(X, y, sw, coef, intercept, loss, g, curv, want_curv, i0,
                              min(n, i0 + CHUNK))
        _store(acc, k, g, gc, val)
    return _reduce(acc, grad, p)


@njit(cache=True, inline="always", fastmath=_FM)
def _rows_dense(X, y, sw, coef, intercept, loss, g, curv, want_curv, i0, i1):
    """Accumulate rows ``i0:i1`` into ``g``; return (value, grad_intercept)."""
    p = X.shape[1]
    val = 0.0
    gc = 0.0
    for i in range(i0, i1):
        t = 0.0
        for j in range(p):
            t += X[i, j] * coef[j]
        t += intercept
        lv, d1, d2 = _terms(loss, y[i], t)
        s = sw[i]
        val += s * lv
        r = s * d1
        gc += r
        for j in range(p):
            g[j] += r * X[i, j]
        if want_curv:
            curv[i] = s * d2
    return val, gc


@njit(cache=True, inline="always")
def _store(acc, k, g, gc, val):
    """Chunk ``k``'s partial gradient, intercept gradient and value into ``acc[k]``."""
    p = g.shape[0]
    for j in range(p):
        acc[k, j] = g[j]
    acc[k, p] = gc
    acc[k, p + 1] = val


@njit(cache=True)
def _reduce(acc, grad, p):
    for j in range(p):
        grad[j] = 0.0
    gc = 0.0
    val = 0.0
    for k in range(acc.shape[0]):
        for j in range(p):
            grad[j] += acc[k, j]
        gc += acc[k, p]
        val += acc[k, p + 1]
    return val, gc


@njit(parallel=True, cache=True, fastmath=_FM)
def glm_loss_grad_csr(data, indices, indptr, y, sw, coef, intercept, loss, grad, curv):
    """:func:`glm_loss_grad` for a CSR matrix given by ``data, indices, indptr``.

    ``p`` is ``coef.shape[0]``; all other arguments and the return value are as
    in :func:`glm_loss_grad`.
    """
    n = indptr.shape[0] - 1
    p = coef.shape[0]
    nch = _nchunks(n)
    want_curv = curv.shape[0] == n
    if nch == 1:
        for j in range(p):
            grad[j] = 0.0
        return _rows_csr(data, indices, indptr, y, sw, coef, intercept, loss, grad, curv,
                         want_curv, 0, n)
    acc = np.zeros((nch, p + 2))
    for k in prange(nch):
        i0 = k * CHUNK
        g = np.zeros(p)
        val, gc = _rows_csr(data, indices, indptr, y, sw, coef, intercept, loss, g, curv,
                            want_curv, i0, min(n, i0 + CHUNK))
        _store(acc, k, g, gc, val)
    return _reduce(acc, grad, p)


@njit(cache=True, inline="always", fastmath=_FM)
def _rows_csr(data, indices, indptr, y, sw, coef, intercept, loss, g, curv, want_curv, i0, i1):
    val = 0.0
    gc = 0.0
    for i in range(i0, i1):
        t = 0.0
        for q in range(indptr[i], indptr[i + 1]):
            t += data[q] * coef[indices[q]]
        t += intercept
        lv, d1, d2 = _terms(loss, y[i], t)
        s = sw[i]
        val += s * lv
        r = s * d1
        gc += r
        for q in range(indptr[i], indptr[i + 1]):
            g[indices[q]] += r * data[q]
        if want_curv:
            curv[i] = s * d2
    return val, gc


@njit(parallel=True, cache=True, fastmath=_FM)
def glm_loss(X, y, sw, coef, intercept, loss):
    """Weighted loss ``sum_i sw_i loss(y_i, x_i . coef + intercept)`` only (dense)."""
    n = X.shape[0]
    nch = _nchunks(n)
    if nch == 1:
        return _vrows_dense(X, y, sw, coef, intercept, loss, 0, n)
    acc = np.zeros(nch)
    for k in prange(nch):
        i0 = k * CHUNK
        acc[k] = _vrows_dense(X, y, sw, coef, intercept, loss, i0, min(n, i0 + CHUNK))
    return _sum_ordered(acc)


@njit(cache=True, inline="always", fastmath=_FM)
def _vrows_dense(X, y, sw, coef, intercept, loss, i0, i1):
    p = X.shape[1]
    val = 0.0
    for i in range(i0, i1):
        t = 0.0
        for j in range(p):
            t += X[i, j] * coef[j]
        val += sw[i] * _value(loss, y[i], t + intercept)
    return val


@njit(parallel=True, cache=True, fastmath=_FM)
def glm_loss_csr(data, indices, indptr, y, sw, coef, intercept, loss):
    """:func:`glm_loss` for a CSR matrix."""
    n = indptr.shape[0] - 1
    nch = _nchunks(n)
    if nch == 1:
        return _vrows_csr(data, indices, indptr, y, sw, coef, intercept, loss, 0, n)
    acc = np.zeros(nch)
    for k in prange(nch):
        i0 = k * CHUNK
        acc[k] = _vrows_csr(data, indices, indptr, y, sw, coef, intercept, loss, i0,
                            min(n, i0 + CHUNK))
    return _sum_ordered(acc)


@njit(cache=True, inline="always", fastmath=_FM)
def _vrows_csr(data, indices, indptr, y, sw, coef, intercept, loss, i0, i1):
    val = 0.0
    for i in range(i0, i1):
        t = 0.0
        for q in range(indptr[i], indptr[i + 1]):
            t += data[q] * coef[indices[q]]
        val += sw[i] * _value(loss, y[i], t + intercept)
    return val


@njit(cache=True)
def _sum_ordered(a):
    s = 0.0
    for k in range(a.shape[0]):
        s += a[k]
    return s


# ---------------------------------------------------------------------------
# coordinate descent
# ---------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _soft(z, t):
    if z > t:
        return z - t
    if z < -t:
        return z + t
    return 0.0


@njit(cache=True, inline="always")
def _penalty(coef, l1, l2):
    a = 0.0
    b = 0.0
    for j in range(coef.shape[0]):
        a += abs(coef[j])
        b += coef[j] * coef[j]
    return l1 * a + 0.5 * l2 * b


@njit(cache=True, fastmath=_FM)
def _cd_core(X, data, indices, indptr, sparse, n, y, sw, loss, lam, l1_ratio,
             fit_intercept, coef, intercept, max_iter, tol, history):
    """Proximal-Newton coordinate descent (glmnet's IRLS-CD) on dense or CSC X.

    Outer iteration: quadratic model of the loss at the current point with
    per-sample gradient ``g_i = sw_i l'(t_i)`` and curvature ``v_i = sw_i l''(t_i)``;
    inner cyclic coordinate descent on model + penalty with active-set sweeps;
    for the logistic loss, an Armijo backtracking line search along the
    resulting direction (Tseng & Yun). The squared loss model is exact, so one
    outer iteration solves it.

    The intercept is kept optimal for the model after every coordinate move
    (moving ``w_j`` along ``x_j - xbar_j`` in the ``v``-weighted metric), with
    lazy bookkeeping so that a sparse column costs ``O(nnz_j)``.
    """
    p = coef.shape[0]
    l1 = lam * l1_ratio
    l2 = lam * (1.0 - l1_ratio)
    t = np.empty(n)
    g = np.empty(n)
    v = np.empty(n)
    dts = np.empty(n)
    rr = np.empty(n)  # g + v * dts: the model's per-sample gradient, kept in step with dts
    hx2 = np.empty(p)
    a = np.zeros(p)
    beta = coef.copy()
    active = np.empty(p, dtype=np.int64)
    anderson = ANDERSON_M
    snaps = np.empty((anderson + 1, p))
    work = np.empty(n)
    c = intercept
    n_iter = 0
    n_sweeps = 0
    converged = False
    F = 0.0
    max_sweeps = max(1000, 100 * max_iter)
    for outer in range(max_iter + 1):
        # --- quadratic model at (coef, c)
        for i in range(n):
            t[i] = c
        if sparse:
            for j in range(p):
                cj = coef[j]
                if cj != 0.0:
                    for q in range(indptr[j], indptr[j + 1]):
                        t[indices[q]] += data[q] * cj
        else:
            for j in range(p):
                cj = coef[j]
                if cj != 0.0:
                    for i in range(n):
                        t[i] += X[i, j] * cj
        fl = 0.0
        V = 0.0
        G = 0.0
        for i in range(n):
            lv, d1, d2 = _terms(loss, y[i], t[i])
            fl += sw[i] * lv
            g[i] = sw[i] * d1
            v[i] = sw[i] * d2
            V += v[i]
            G += g[i]
            dts[i] = 0.0
            rr[i] = g[i]
        F = fl + _penalty(coef, l1, l2)
        if outer == 0:
            history[0] = F
        else:
            history[outer] = F
        if converged or outer == max_iter:
            break
        for j in range(p):
            s2 = 0.0
            s1 = 0.0
            if sparse:
                for q in range(indptr[j], indptr[j + 1]):
                    xv = data[q]
                    vi = v[indices[q]]
                    s2 += vi * xv * xv
                    s1 += vi * xv
            else:
                for i in range(n):
                    xv = X[i, j]
                    s2 += v[i] * xv * xv
                    s1 += v[i] * xv
            hx2[j] = s2
            a[j] = s1
        center = fit_intercept and V > 0.0
        dc = -G / V if center else 0.0
        for j in range(p):
            beta[j] = coef[j]
        # --- inner coordinate descent
        full = True
        n_active = p
        for j in range(p):
            active[j] = j
        first_max = -1.0
        n_snap = 0
        while n_sweeps < max_sweeps:
            n_sweeps += 1
            maxch = 0.0
            for jj in range(n_active):
                j = active[jj]
                H = hx2[j]
                if center:
                    H -= a[j] * a[j] / V
                    if H < 0.0:
                        H = 0.0
                den = H + l2
                if den <= 0.0:
                    continue
                s = dc * a[j]
                if sparse:
                    for q in range(indptr[j], indptr[j + 1]):
                        r = indices[q]
                        s += data[q] * rr[r]
                else:
                    for i in range(n):
                        s += X[i, j] * rr[i]
                b = beta[j]
                # grad of the model in beta_j includes the ridge term at beta
                bn = _soft(H * b - s, l1) / den
                delta = bn - b
                if delta != 0.0:
                    beta[j] = bn
                    if sparse:
                        for q in range(indptr[j], indptr[j + 1]):
                            r = indices[q]
                            dq = data[q] * delta
                            dts[r] += dq
                            rr[r] += v[r] * dq
                    else:
                        for i in range(n):
                            dq = X[i, j] * delta
                            dts[i] += dq
                            rr[i] += v[i] * dq
                    if center:
                        dc -= delta * a[j] / V
                    ch = den * delta * delta
                    if ch > maxch:
                        maxch = ch
            if full:
                if first_max < 0.0:
                    first_max = maxch
                if maxch <= tol:
                    break
                n_active = 0
                for j in range(p):
                    if beta[j] != 0.0:
                        active[n_active] = j
                        n_active += 1
                full = False
                n_snap = 0
                for jj in range(n_active):
                    snaps[0, jj] = beta[active[jj]]
            elif maxch <= tol:
                full = True
                n_active = p
                for j in range(p):
                    active[j] = j
            elif anderson > 0:
                n_snap += 1
                for jj in range(n_active):
                    snaps[n_snap, jj] = beta[active[jj]]
                if n_snap == anderson:
                    dc = _anderson_step(X, data, indices, indptr, sparse, n, g, v, dts, rr, a, V,
                                        center, dc, beta, active, n_active, snaps, anderson,
                                        l1, l2, work)
                    n_snap = 0
                    for jj in range(n_active):
                        snaps[0, jj] = beta[active[jj]]
        # --- step along (beta - coef, dc)
        n_iter += 1
        if loss == LOSS_SQUARED:
            for j in range(p):
                coef[j] = beta[j]
            c += dc
            converged = True
            continue
        pen_old = _penalty(coef, l1, l2)
        pen_new = _penalty(beta, l1, l2)
        slope = pen_new - pen_old
        for i in range(n):
            slope += g[i] * (dts[i] + dc)
        step = 1.0
        accepted = False
        for _ in range(40):
            fl_new = 0.0
            for i in range(n):
                fl_new += sw[i] * _value(loss, y[i], t[i] + step * (dts[i] + dc))
            pen_s = 0.0
            if step == 1.0:
                pen_s = pen_new
            else:
                a1 = 0.0
                a2 = 0.0
                for j in range(p):
                    wj = coef[j] + step * (beta[j] - coef[j])
                    a1 += abs(wj)
                    a2 += wj * wj
                pen_s = l1 * a1 + 0.5 * l2 * a2
            if fl_new + pen_s <= F + 1e-4 * step * slope or step < 1e-10:
                # no strict decrease: x is optimal to machine precision
                accepted = fl_new + pen_s < F
                break
            step *= 0.5
        if not accepted:
            converged = True  # no decrease possible at machine precision
            n_iter -= 1
            continue
        move = V * (step * dc) * (step * dc)
        for j in range(p):
            d = step * (beta[j] - coef[j])
            H = hx2[j] + l2
            if H * d * d > move:
                move = H * d * d
            coef[j] += d
        c += step * dc
        if first_max <= tol and move <= tol:
            converged = True
    return c, n_iter, converged, n_sweeps


ANDERSON_M = 5


@njit(cache=True, fastmath=_FM)
def _anderson_step(X, data, indices, indptr, sparse, n, g, v, dts, rr, a, V, center, dc, beta,
                   active, na, snaps, m, l1, l2, work):
    """Anderson extrapolation of the active-set CD iterates (Bertrand & Massias 2021).

    ``snaps[0..m]`` hold ``m + 1`` successive sweeps' ``beta[active]``. With the
    differences ``U_k = snaps[k+1] - snaps[k]``, ``z = (U U')^-1 1`` and
    ``c = z / sum(z)``, the extrapolated point is ``sum_k c_k snaps[k+1]``. It is
    taken (``beta``, ``dts = X(beta - coef)``, ``rr = g + v dts`` and the model
    intercept step ``dc`` updated) only if it lowers the CD model
    ``sum_i g_i u_i + v_i u_i^2 / 2 + pen`` (``u = dts + dc``), so every accepted step
    is a descent step of the same strictly convex model and CD's convergence is
    unaffected. Returns ``dc``.
    """
    # Gram of the differences (m x m) and a small Gaussian elimination
    C = np.zeros((m, m))
    for k in range(m):
        for k2 in range(k, m):
            s = 0.0
            for jj in range(na):
                s += (snaps[k + 1, jj] - snaps[k, jj]) * (snaps[k2 + 1, jj] - snaps[k2, jj])
            C[k, k2] = s
            C[k2, k] = s
    tr = 0.0
    for k in range(m):
        tr += C[k, k]
    if not tr > 0.0:
        return dc
    for k in range(m):
        C[k, k] += 1e-10 * tr
    z = np.ones(m)
    for k in range(m):  # elimination with partial pivoting
        piv = k
        for r in range(k + 1, m):
            if abs(C[r, k]) > abs(C[piv, k]):
                piv = r
        if abs(C[piv, k]) <= 1e-300:
            return dc
        if piv != k:
            for q in range(m):
                tmp = C[k, q]
                C[k, q] = C[piv, q]
                C[piv, q] = tmp
            tmp = z[k]
            z[k] = z[piv]
            z[piv] = tmp
        for r in range(k + 1, m):
            f = C[r, k] / C[k, k]
            for q in range(k, m):
                C[r, q] -= f * C[k, q]
            z[r] -= f * z[k]
    for k in range(m - 1, -1, -1):
        s = z[k]
        for q in range(k + 1, m):
            s -= C[k, q] * z[q]
        z[k] = s / C[k, k]
    zs = 0.0
    for k in range(m):
        zs += z[k]
    if zs == 0.0 or not np.isfinite(zs):
        return dc
    # extrapolated point (stored in snaps[0]) and the model change
    dpen = 0.0
    dadc = 0.0
    for i in range(n):
        work[i] = 0.0
    for jj in range(na):
        e = 0.0
        for k in range(m):
            e += z[k] * snaps[k + 1, jj]
        e /= zs
        snaps[0, jj] = e
        j = active[jj]
        d = e - beta[j]
        if d != 0.0:
            dpen += l1 * (abs(e) - abs(beta[j])) + 0.5 * l2 * (e * e - beta[j] * beta[j])
            dadc += a[j] * d
            if sparse:
                for q in range(indptr[j], indptr[j + 1]):
                    work[indices[q]] += data[q] * d
            else:
                for i in range(n):
                    work[i] += X[i, j] * d
    dc_new = dc - dadc / V if center else dc
    dm = dpen
    for i in range(n):
        u0 = dts[i] + dc
        u1 = dts[i] + work[i] + dc_new
        dm += g[i] * (u1 - u0) + 0.5 * v[i] * (u1 * u1 - u0 * u0)
    if not dm < 0.0:
        return dc
    for i in range(n):
        dts[i] += work[i]
        rr[i] += v[i] * work[i]
    for jj in range(na):
        beta[active[jj]] = snaps[0, jj]
    return dc_new


@njit(cache=True)
def glm_cd(X, y, sw, loss, lam, l1_ratio, fit_intercept, coef, intercept, max_iter, tol, history):
    """Elastic-net coordinate descent for a dense ``X`` (covariance-free).

    Minimises ``sum_i sw_i loss(y_i, x_i.w + c) + lam (l1_ratio ||w||_1 +
    (1 - l1_ratio)/2 ||w||^2)`` over ``w`` (and ``c`` if ``fit_intercept``):
    glmnet-style proximal Newton (IRLS) outer iterations with cyclic,
    active-set coordinate descent inside and a line search for the logistic
    loss. Residual-type quantities are updated per coordinate in ``O(n)``.

    Parameters
    ----------
    X : float64 array, shape (n, p)
        Fortran-ordered is fastest (columns are read contiguously).
    y, sw : float64 arrays, shape (n,)
        Targets and weights of the sum (see module docstring).
    loss : int
        ``LOSS_SQUARED`` or ``LOSS_LOGISTIC``.
    lam, l1_ratio : float
        Penalty strength (>= 0) and mix in [0, 1].
    fit_intercept : bool
        Fit an unpenalised intercept.
    coef : float64 array, shape (p,)
        Start point on entry, solution on exit (modified in place).
    intercept : float
        Starting intercept (ignored if ``fit_intercept`` is False).
    max_iter : int
        Maximum outer (proximal Newton) iterations.
    tol : float
        Absolute tolerance on ``max_j (H_j + l2) * delta_j^2`` for a full sweep
        (and on the outer step), ``H_j`` the coordinate curvature.
    history : float64 array, shape (max_iter + 1,)
        Output: objective at the start and after every outer iteration.

    Returns
    -------
    intercept : float
    n_iter : int
        Outer iterations performed (``history[:n_iter + 1]`` is filled).
    converged : bool
    n_sweeps : int
        Total coordinate sweeps.
    """
    empty_f = np.empty(0)
    empty_i = np.empty(0, dtype=np.int64)
    c = intercept if fit_intercept else 0.0
    # one specialisation of the core: X typed Fortran-ordered (an (n, 1) slice is typed C
    # and is copied; a Fortran X is used as is) and the flag a plain bool, not a literal
    return _cd_core(np.asfortranarray(X), empty_f, empty_i, empty_i, bool(np.int64(0)),
                    X.shape[0], y, sw, loss,
                    lam, l1_ratio, fit_intercept, coef, c, max_iter, tol, history)


@njit(cache=True)
def glm_cd_csc(data, indices, indptr, n, y, sw, loss, lam, l1_ratio, fit_intercept,
               coef, intercept, max_iter, tol, history):
    """:func:`glm_cd` for a sparse ``X`` in CSC form (``data, indices, indptr``
    of the columns, i.e. the CSR arrays of ``X.T``), with ``n`` rows.

    Each coordinate step costs ``O(nnz)`` of its column.
    """
    X = np.asfortranarray(np.empty((0, 0)))
    c = intercept if fit_intercept else 0.0
    return _cd_core(X, data, indices.astype(np.int64), indptr.astype(np.int64),
                    bool(np.int64(1)), n,
                    y, sw, loss, lam, l1_ratio, fit_intercept, coef, c, max_iter, tol,
                    history)


@njit(cache=True)
def glm_cd_gram(G, b, lam, l1_ratio, coef, max_iter, tol, history):
    """Covariance-mode coordinate descent for a quadratic + elastic net.

    Minimises ``(1/2) w'Gw - b'w + lam (l1_ratio ||w||_1 + (1-l1_ratio)/2 ||w||^2)``;
    with ``G = X' S X`` and ``b = X' S y`` (``S`` the weights of the sum, X and
    y centred for an intercept) this is the squared-loss problem up to a
    constant. Each coordinate costs ``O(p)`` and only when it moves.

    Parameters
    ----------
    G : float64 array, shape (p, p)
        Symmetric positive semi-definite.
    b : float64 array, shape (p,)
    lam, l1_ratio : float
    coef : float64 array, shape (p,)
        Start on entry, solution on exit.
    max_iter : int
        Maximum number of full sweeps.
    tol : float
        Absolute tolerance on ``max_j (G_jj + l2) delta_j^2`` of a full sweep.
    history : float64 array, shape (max_iter + 1,)
        Output: objective (quadratic + penalty) at the start and after each full sweep.

    Returns
    -------
    n_iter : int
        Full sweeps performed.
    converged : bool
    """
    p = b.shape[0]
    l1 = lam * l1_ratio
    l2 = lam * (1.0 - l1_ratio)
    grad = np.empty(p)
    for k in range(p):
        s = -b[k]
        for j in range(p):
            s += G[k, j] * coef[j]
        grad[k] = s
    active = np.empty(p, dtype=np.int64)
    history[0] = _gram_obj(grad, b, coef, l1, l2)
    n_iter = 0
    converged = False
    n_inner = 0
    while n_iter < max_iter:
        # full sweep
        # plain (non-literal) flag and count: one specialisation of _gram_sweep
        maxch = _gram_sweep(G, grad, coef, l1, l2, active, p, bool(np.int64(1)))
        n_iter += 1
        history[n_iter] = _gram_obj(grad, b, coef, l1, l2)
        if maxch <= tol:
            converged = True
            break
        na = np.int64(0)
        for j in range(p):
            if coef[j] != 0.0:
                active[na] = j
                na += 1
        while n_inner < 1000 * max(1, max_iter):
            n_inner += 1
            if _gram_sweep(G, grad, coef, l1, l2, active, na, bool(np.int64(0))) <= tol:
                break
    return n_iter, converged


@njit(cache=True)
def _gram_sweep(G, grad, coef, l1, l2, active, na, full):
    p = coef.shape[0]
    maxch = 0.0
    for jj in range(na):
        j = jj if full else active[jj]
        den = G[j, j] + l2
        if den <= 0.0:
            continue
        b = coef[j]
        bn = _soft(G[j, j] * b - grad[j], l1) / den
        delta = bn - b
        if delta != 0.0:
            coef[j] = bn
            for k in range(p):
                grad[k] += delta * G[j, k]
            ch = den * delta * delta
            if ch > maxch:
                maxch = ch
    return maxch


@njit(cache=True)
def _gram_obj(grad, b, coef, l1, l2):
    # grad = G w - b  =>  (1/2) w'Gw - b'w = (1/2) w'(grad - b)
    s = 0.0
    for j in range(coef.shape[0]):
        s += coef[j] * (grad[j] - b[j])
    return 0.5 * s + _penalty(coef, l1, l2)


@njit(parallel=True, cache=True, fastmath=_FM)
def glm_col_dots(X, r, cols, out):
    """``out[k] = X[:, cols[k]] . r`` for a Fortran-ordered ``X`` (columns read
    contiguously; one thread per column, so the result does not depend on the
    thread count). The screening check of the CD solvers: ``X_S' r`` on a subset
    ``S`` of the features.

    Parameters
    ----------
    X : float64 array, shape (n, p), Fortran-ordered
    r : float64 array, shape (n,)
    cols : int64 array, shape (m,)
        Column indices in ``[0, p)``.
    out : float64 array, shape (m,)
        Output.
    """
    n = X.shape[0]
    for k in prange(cols.shape[0]):
        j = cols[k]
        s = 0.0
        for i in range(n):
            s += X[i, j] * r[i]
        out[k] = s


@njit(parallel=True, cache=True, fastmath=_FM)
def glm_col_dots_csc(data, indices, indptr, r, cols, out):
    """:func:`glm_col_dots` for a CSC ``X`` (``data, indices, indptr`` of its columns)."""
    for k in prange(cols.shape[0]):
        j = cols[k]
        s = 0.0
        for q in range(indptr[j], indptr[j + 1]):
            s += data[q] * r[indices[q]]
        out[k] = s
