"""The penalised HLSM objective in solver coordinates, and the stages that minimise it.

:class:`_Problem` (and :class:`_ExtProblem` with node effects and covariates) is
the objective of :func:`fastgrad.hlsm.fit` on a flat rescaled vector, evaluated on a
:class:`~fastgrad.hlsm.Layers` or by an evaluator (:mod:`fastgrad.dask`);
:func:`fit_shared`, :func:`_solve_active_set` and :func:`solve` are the solver
stages, tuned by :class:`~fastgrad.hlsm.SolverOptions`.
"""
import time

import numpy as np

from .. import prox as _prox
from .._threads import threads_for
from ..solvers import proximal_gradient

__all__ = ["fit_shared", "solve"]


def _nll_grad_encoded(Yenc, b, eps, alpha, dtype=np.float64):
    """``(nll, grad_b, grad_eps, grad_alpha)`` of :class:`Layers` ``Yenc`` at ``(b, eps, alpha)``."""
    nll, grad_z, grad_alpha = Yenc.nll_grad(b[None, :, :] + eps, alpha, dtype)
    return nll, grad_z.sum(axis=0), grad_z, grad_alpha


def _group_norm_sum(eps, weights=None):
    norms = np.sqrt((eps * eps).sum(axis=-1))
    if weights is not None:
        with np.errstate(invalid="ignore"):
            norms = np.where(norms > 0, weights * norms, 0.0)  # an infinite weight keeps eps at 0
    return float(norms.sum())


class _Problem:
    """The penalised objective on a flat, rescaled vector x = [b*s_b, eps, alpha*s_a].

    The curvature of the likelihood in alpha_k grows like the number of
    dyads (n^2) and in b_i like K times that in eps_ik, while eps_ik's is of
    order n. Solving in rescaled coordinates (a diagonal preconditioner that
    leaves eps, and therefore the group-lasso prox, untouched) equalises them.

    ``evaluator`` (None: the local kernels) may supply ``nll_grad(z, alpha) ->
    (nll, grad_z, grad_alpha)`` and ``nll(z, alpha)`` computed elsewhere
    (:mod:`fastgrad.dask`).
    """

    evaluator = None
    #: precision of the pass over all pairs in ``fun`` (float32: the L-BFGS stages of large fits)
    dtype = np.float64

    def __init__(self, Yenc, directed, d, lam, scale_b=1.0, scale_alpha=1.0, weights=None, node_scale=None):
        self.weights = weights
        self.Y = Yenc
        self.directed = directed
        self.K, self.n, _ = Yenc.shape
        self.d = d
        self.lam = lam
        nb, ne = self.n * d, self.K * self.n * d
        self.sb, self.se = slice(0, nb), slice(nb, nb + ne)
        self.sa = slice(nb + ne, nb + ne + self.K)
        self.scale = np.ones(nb + ne + self.K)
        self.scale[self.sb] = scale_b
        self.scale[self.sa] = scale_alpha
        # per-node preconditioning (see _node_scales): eps_ik is stored as s_ik * eps_ik,
        # so the group-lasso prox stays exact with the per-group threshold t * lam / s_ik
        self.eps_scale = None
        if node_scale is not None:
            s_b, s_e = node_scale
            self.scale[self.sb] *= np.repeat(s_b, d)
            self.scale[self.se] = np.repeat(s_e.ravel(), d)
            self.eps_scale = s_e

    def pack(self, b, eps, alpha):
        return np.concatenate([b.ravel(), eps.ravel(), alpha.ravel()]) * self.scale

    def unpack(self, x):
        p = x / self.scale
        return (p[self.sb].reshape(self.n, self.d), p[self.se].reshape(self.K, self.n, self.d),
                np.ascontiguousarray(p[self.sa]))

    def fun(self, x):
        b, eps, alpha = self.unpack(x)
        if self.evaluator is not None:
            nll, ge, ga = self.evaluator.nll_grad(b[None] + eps, alpha)
            gb = ge.sum(axis=0)
        else:
            nll, gb, ge, ga = _nll_grad_encoded(self.Y, b, eps, alpha, self.dtype)
        return nll, np.concatenate([gb.ravel(), ge.ravel(), ga]) / self.scale

    def fun_value(self, x):
        b, eps, alpha = self.unpack(x)
        if self.evaluator is not None:
            return float(self.evaluator.nll(b[None] + eps, alpha))
        return self.Y.nll(b[None] + eps, alpha)

    def prox(self, v, t):
        if self.lam == 0.0:
            return v
        out = v.copy()
        eps = v[self.se].reshape(self.K, self.n, self.d)
        thr = t * self.lam if self.weights is None else (t * self.lam) * self.weights
        if self.eps_scale is not None:
            thr = thr / self.eps_scale
        # block soft-thresholding without prox.group_l2's input checks and broadcasts
        # (with them it was a quarter of fit_cv's time on the Florentine network)
        out[self.se] = _prox._group_l2(eps, thr).ravel()
        return out

    def smoothed(self, mu):
        """``fun`` plus the Huber-smoothed penalty ``lam sum w_ik phi_mu(||eps_ik||)``.

        ``phi_mu(r) = r - mu / 2`` for ``r >= mu``, ``r^2 / (2 mu)`` below: a
        smooth function within ``lam mu / 2`` per group of the penalty, for
        quasi-Newton steps (see :func:`fit`). Groups with infinite weight stay at 0.
        """
        K, n, d = self.K, self.n, self.d
        w = np.ones((K, n)) if self.weights is None else self.weights
        fixed = np.isinf(w)
        w = np.where(fixed, 0.0, w)
        es = np.ones((K, n)) if self.eps_scale is None else self.eps_scale

        def fun(x):
            x = x.copy()
            x[self.se].reshape(K, n, d)[fixed] = 0.0
            f, g = self.fun(x)
            eps = x[self.se].reshape(K, n, d) / es[..., None]
            r = np.sqrt((eps * eps).sum(axis=-1))
            big = r >= mu
            f += self.lam * float((w * np.where(big, r - 0.5 * mu, r * r / (2 * mu))).sum())
            geps = (self.lam * w / np.maximum(r, mu))[..., None] * eps / es[..., None]
            geps[fixed] = 0.0
            g[self.se] += geps.ravel()
            g[self.se].reshape(K, n, d)[fixed] = 0.0
            return f, g
        return fun

    def penalty(self, x):
        if self.lam == 0.0:
            return 0.0
        eps = x[self.se].reshape(self.K, self.n, self.d)
        if self.eps_scale is not None:
            eps = eps / self.eps_scale[..., None]
        return self.lam * _group_norm_sum(eps, self.weights)


class _Extras:
    """Node effects and dyad covariates of an extended model (``sociality``/``covariates`` of :func:`fit`).

    ``mode`` None (no node effects), ``"layer"`` (one effect per node and layer)
    or ``"shared"`` (one per node, all layers). Undirected: sociality ``g``;
    directed: sender ``s`` and receiver ``r``. ``X``/``XT`` (p, n, n): covariates.
    ``position_ridge``: a Gaussian prior on the shared positions, ``position_ridge / 2 *
    ||b||^2`` added to the objective.
    """

    def __init__(self, mode, ridge, directed, K, n, X=None, position_ridge=0.0):
        self.mode, self.ridge, self.directed, self.K, self.n = mode, float(ridge), bool(directed), K, n
        self.position_ridge = float(position_ridge)
        self.X = np.zeros((0, n, n)) if X is None else X
        self.XT = np.ascontiguousarray(self.X.transpose(0, 2, 1)) if (directed and self.X.shape[0]) else self.X
        self.p = self.X.shape[0]
        per = K if mode == "layer" else 1
        self.n_effects = 0 if mode is None else per * n * (2 if directed else 1)

    @property
    def active(self):
        return self.mode is not None or self.p > 0 or self.position_ridge > 0

    def offsets(self, v):
        """(so, ro) of shape (K, n) from the flat effect vector ``v``."""
        K, n = self.K, self.n
        if self.mode is None:
            zero = np.zeros((K, n))
            return zero, zero
        per = K if self.mode == "layer" else 1
        m = per * n

        def block(part):
            blk = np.ascontiguousarray(v[part * m:(part + 1) * m]).reshape(per, n)
            return blk if per == K else np.repeat(blk, K, axis=0)
        s = block(0)
        return s, (block(1) if self.directed else s)

    def centre(self, v, alpha):
        """Move each layer's mean effect into alpha: the likelihood is unchanged and the
        ridge can only fall (the optimum has zero means; this removes the solver's residue)."""
        if self.mode is None:
            return v, alpha
        per = self.K if self.mode == "layer" else 1
        m = per * self.n
        v, alpha = v.copy(), alpha.copy()
        for part in range(2 if self.directed else 1):
            blk = v[part * m:(part + 1) * m].reshape(per, self.n)
            mu = blk.mean(axis=1, keepdims=True)
            blk -= mu
            alpha += (1.0 if self.directed else 2.0) * np.broadcast_to(mu[:, 0], (self.K,))
        return v, alpha

    def effect_grad(self, gs, gr):
        """Gradient in the flat effect vector from the (K, n) gradients in so and ro."""
        if self.mode is None:
            return np.zeros(0)
        parts = [gs, gr] if self.directed else [gs]
        if self.mode == "shared":
            parts = [q.sum(axis=0) for q in parts]
        return np.concatenate([q.ravel() for q in parts])


def _ext_nll_grad(Yenc, z, alpha, so, ro, ex, beta, with_grad=True, per_layer=False):
    """nll and gradients (z, alpha, so, ro, beta) of the extended model (see :meth:`Layers.nll_grad_ext`)."""
    return Yenc.nll_grad_ext(z, alpha, so, ro, ex.X, ex.XT, beta, with_grad, per_layer)


class _ExtProblem(_Problem):
    """:class:`_Problem` with node effects and covariates appended to x:
    ``[b*s_b, eps, alpha*s_a, effects*s_g, beta*s_beta]``; the ridges
    ``ridge / 2 * ||effects||^2`` and ``position_ridge / 2 * ||b||^2`` are part of the
    smooth function."""

    def __init__(self, Yenc, directed, d, lam, ex, scale_b=1.0, scale_alpha=1.0, weights=None, node_scale=None,
                 scale_effects=1.0, scale_beta=None):
        super().__init__(Yenc, directed, d, lam, scale_b, scale_alpha, weights, node_scale)
        self.ex = ex
        base = self.scale.size
        self.sg = slice(base, base + ex.n_effects)
        self.sbeta = slice(base + ex.n_effects, base + ex.n_effects + self.K * ex.p)
        sg = np.full(ex.n_effects, float(scale_effects))
        sbeta = np.ones(self.K * ex.p) if scale_beta is None else np.tile(scale_beta, self.K)
        self.scale = np.concatenate([self.scale, sg, sbeta])

    def pack_all(self, b, eps, alpha, effects, beta):
        return np.concatenate([b.ravel(), eps.ravel(), alpha.ravel(), np.ravel(effects), np.ravel(beta)]) * self.scale

    def pack(self, b, eps, alpha):
        return self.pack_all(b, eps, alpha, np.zeros(self.ex.n_effects), np.zeros(self.K * self.ex.p))

    def unpack_all(self, x):
        p = x / self.scale
        return (p[self.sb].reshape(self.n, self.d), p[self.se].reshape(self.K, self.n, self.d),
                np.ascontiguousarray(p[self.sa]), p[self.sg].copy(), p[self.sbeta].reshape(self.K, self.ex.p))

    def unpack(self, x):
        return self.unpack_all(x)[:3]

    def _eval(self, x, with_grad):
        b, eps, alpha, v, beta = self.unpack_all(x)
        so, ro = self.ex.offsets(v)
        z = b[None] + eps
        if self.evaluator is not None:
            out = self.evaluator.nll_grad_ext(z, alpha, so, ro, beta, with_grad)
        else:
            out = _ext_nll_grad(self.Y, z, alpha, so, ro, self.ex, beta, with_grad)
        pr = self.ex.position_ridge
        nll = out[0] + 0.5 * self.ex.ridge * float(v @ v)
        if pr:
            nll += 0.5 * pr * float((b * b).sum())
        if not with_grad:
            return nll
        _, gz, ga, gs, gr, gb = out
        gv = self.ex.effect_grad(gs, gr) + self.ex.ridge * v
        gpos = gz.sum(axis=0)
        if pr:
            gpos = gpos + pr * b
        g = np.concatenate([gpos.ravel(), gz.ravel(), ga, gv, gb.ravel()]) / self.scale
        return nll, g

    def fun(self, x):
        return self._eval(x, True)

    def fun_value(self, x):
        return self._eval(x, False)


def _curvature_scales(Yenc, b, alpha, directed, rng, n_pairs=100_000):
    """Diagonal preconditioner: sqrt of curvature ratios (alpha : eps and b : eps)."""
    K, n, d = Yenc.shape[0], b.shape[0], b.shape[1]
    m = min(n_pairs, n * (n - 1))
    i = rng.integers(0, n, size=m)
    j = rng.integers(0, n - 1, size=m)
    j = j + (j >= i)
    d2 = ((b[i] - b[j]) ** 2).sum(axis=1)
    h_alpha, h_pos = 0.0, 0.0
    pairs_per_layer = n * (n - 1) / (1 if directed else 2)
    for k in range(K):
        p = 0.5 * (1.0 + np.tanh(0.5 * (alpha[k] - d2)))
        w = p * (1.0 - p)
        h_alpha += pairs_per_layer * w.mean()
        # d^2 nll / d z_ic^2 ~ sum_j p(1-p) 4 (z_ic - z_jc)^2 over the node's partners
        h_pos += (n - 1) * (2 if directed else 1) * (w * 4.0 * d2 / d).mean()
    h_alpha /= K
    h_pos /= K
    if not (h_alpha > 0 and h_pos > 0):
        return float(np.sqrt(K)), 1.0
    return float(np.sqrt(K)), float(np.sqrt(h_alpha / h_pos))


def _node_scales(Yenc, directed, smooth=1.0):
    """Per-node diagonal preconditioner from degrees.

    The curvature of the likelihood in ``z_ik`` grows with the number of
    partners near node i in layer k, roughly its degree there; with one global
    step the low-degree nodes (on the periphery of a large-diameter graph) move
    far too slowly. Returns ``(s_b (n,), s_e (K, n))``: the square roots of
    ``(deg_ik + c_k)`` relative to the layer mean (``c_k = smooth * (mean
    degree + 1)`` keeps isolated nodes finite), and of their sum over layers
    for the shared positions. Measured on a simulated large-diameter graph
    (n=1000, K=3, 1% density, lam=5; ``benchmarks/hlsm_scale.py iters``):
    with ``smooth=0.05`` 1586 iterations to the default tolerances and within
    0.2 of the optimum (objective ~5.2e4) after 100; without it, 5000
    iterations end 0.065 above that and 100 end 58 above it.
    """
    deg = Yenc.degrees()
    c = smooth * (deg.mean(axis=1, keepdims=True) + 1.0)
    h = deg + c
    s_e = np.sqrt(h / h.mean(axis=1, keepdims=True))
    hb = h.sum(axis=0)
    s_b = np.sqrt(hb / hb.mean())
    return s_b, s_e


def _restricted(prob, x, active):
    """The penalised objective as a smooth function of the entries of x outside the zero
    groups (``active`` (K, n) False: eps_ik fixed at 0): ``(fun, keep)``."""
    K, n, d, lam = prob.K, prob.n, prob.d, prob.lam
    es = np.ones((K, n)) if prob.eps_scale is None else prob.eps_scale
    w = np.ones((K, n)) if prob.weights is None else np.where(np.isinf(prob.weights), 0.0, prob.weights)
    keep = np.ones(x.size, dtype=bool)
    keep[prob.se] = np.repeat(active.ravel(), d)
    wa = np.where(active, w, 0.0)

    def fun(xr):
        full = np.zeros(x.size)
        full[keep] = xr
        f, g = prob.fun(full)
        eps = full[prob.se].reshape(K, n, d) / es[..., None]
        r = np.sqrt((eps * eps).sum(axis=-1))
        f += lam * float((wa * r).sum())
        g[prob.se] += ((lam * wa / np.maximum(r, 1e-300))[..., None] * eps / es[..., None]).ravel()
        return f, g[keep]
    return fun, keep


def _solve_active_set(prob, x0, lam, max_iter, tol, gtol, accelerate, verbose, stages, work, opts):
    """Minimise the penalised objective by L-BFGS rounds alternating with proximal gradient
    (which adds and removes groups and applies the stopping rule of :func:`fit`, so the
    optimum is that of proximal gradient alone).

    Round r: proximal gradient for at most ``opts.prox_iter_per_round`` iterations (all of
    ``max_iter`` in the last round); if it has not converged, L-BFGS from its end point on

    * the objective restricted to the groups that are non-zero there (smooth: each
      ``||eps_ik||`` away from 0), while they are at most ``opts.max_active_share`` of all;
    * with more (some of them small, where the restricted problem is badly conditioned:
      curvature ``lam / ||eps_ik||``), once proximal gradient alone has run
      ``opts.prox_iter_many_active`` iterations without converging, the Huber-smoothed
      penalty (:meth:`_Problem.smoothed`, width ``opts.smooth_mu``, ten times narrower
      each such round), whose end point is kept if the penalised objective is lower there.

    ``lam = 0`` starts with L-BFGS on the (smooth) whole problem. Returns the last
    proximal-gradient :class:`SolverResult` with ``n_iter`` the total of its rounds and
    the ``history`` of all rounds.
    """
    from ..solvers import lbfgs
    K, n, d = prob.K, prob.n, prob.d
    # L-BFGS rounds no tighter than the fit's own stopping rule needs (a loose fit, e.g. a
    # fold of fit_cv with tol=1e-5, must not pay for 1e-11): the final proximal-gradient
    # round decides convergence at ``tol`` either way
    qn_tol = max(opts.qn_tol, 1e-3 * tol)
    qn_max_iter = min(opts.qn_max_iter, max_iter)
    x = x0
    hist, n_prox, n_qn, n_fev, n_smooth = [], 0, 0, 0, 0
    t_qn, t_pg = 0.0, 0.0
    sol = None
    many = False  # more non-zero groups than max_active_share: smoothed rounds, after a long prox run
    mu = opts.smooth_mu
    gmap_ref = step = None
    for rnd in range(opts.max_rounds):
        fun = None
        smoothed = False
        t1 = time.perf_counter()
        if rnd > 0 or lam == 0:
            if lam == 0:
                fun, keep = prob.fun, np.ones(x.size, dtype=bool)
            else:
                active = np.any(x[prob.se].reshape(K, n, d) != 0.0, axis=-1)
                if active.mean() <= opts.max_active_share:
                    fun, keep = _restricted(prob, x, active)
                elif many:
                    fun, keep, smoothed = prob.smoothed(mu), np.ones(x.size, dtype=bool), True
                    mu *= 0.1
                else:
                    many = True  # proximal gradient alone first: it often converges
        if fun is not None:
            with threads_for(work):
                qn = lbfgs(fun, x[keep], tol=qn_tol, gtol=0.0, max_iter=qn_max_iter, m=20, warn=False,
                           name="hlsm quasi-Newton")
            x_qn = x.copy()
            x_qn[keep] = qn.x
            # the smoothed minimiser is not the penalised one: keep it only if it is better
            # there than the last proximal-gradient round's end point x, whose objective
            # that round recorded (so the objective of the rounds keeps going down)
            if not smoothed or prob.fun_value(x_qn) + prob.penalty(x_qn) < sol.history[-1]:
                x = x_qn
            n_qn += qn.n_iter
            n_fev += qn.info.get("n_fev") or 0
            n_smooth += smoothed
            t_qn += time.perf_counter() - t1
        last = rnd == opts.max_rounds - 1
        per_round = opts.prox_iter_many_active if many and not smoothed else opts.prox_iter_per_round
        budget = max_iter - n_prox if last else min(per_round, max_iter - n_prox)
        t1 = time.perf_counter()
        with threads_for(work):
            sol = proximal_gradient(prob.fun, x, prox=prob.prox, penalty=prob.penalty, fun_value=prob.fun_value,
                                    accelerate=accelerate, max_iter=max(budget, 1), tol=tol, gtol=gtol,
                                    verbose=verbose, warn=last or budget >= max_iter - n_prox,
                                    gmap_ref=gmap_ref, step=step, name="hlsm.fit")
        # later rounds test the gradient mapping on the first round's scale: the stopping
        # rule of one uninterrupted proximal-gradient run (a round's own first step is
        # smaller, and would make its test stricter the more rounds there are)
        gmap_ref = gmap_ref or sol.info.get("gmap_ref")
        step = sol.info.get("step")  # and start from the last round's step size
        t_pg += time.perf_counter() - t1
        n_prox += sol.n_iter
        hist.append(sol.history if not hist else sol.history[1:])
        x = sol.x
        if sol.converged or n_prox >= max_iter:
            break
    stages["quasi-Newton"] = {"n_iter": n_qn, "n_fev": n_fev, "seconds": t_qn, "smoothed rounds": n_smooth}
    stages["proximal gradient"] = {"n_iter": n_prox, "n_fev": None, "seconds": t_pg}
    stages["proximal gradient rounds"] = rnd + 1
    sol.n_iter = n_prox
    sol.history = np.concatenate(hist)
    return sol


def _stage_record(sol, t_start):
    """Iterations, function evaluations and seconds of one solver stage (``HLSMResult.stages``)."""
    return {"n_iter": sol.n_iter, "n_fev": sol.info.get("n_fev"), "seconds": time.perf_counter() - t_start}


def fit_shared(Yenc, directed, b0, alpha0, rng, opts, *, tol=1e-9, max_iter=2000, evaluator=None):
    """Fit the shared configuration (``eps = 0``: ``lam >= lam_max``) by L-BFGS.

    The problem is smooth, and quasi-Newton steps handle what slows proximal
    gradient down on large networks: the strong coupling of the intercepts
    with the overall scale of the configuration and the long-wavelength modes
    of large-diameter graphs. Same rescaled coordinates as :func:`fit`.
    Returns ``(b, alpha, SolverResult)``.
    """
    from ..solvers import lbfgs
    K, n, _ = Yenc.shape
    d = b0.shape[1]
    eps0 = np.zeros((K, n, d))
    scale_b, scale_alpha = _curvature_scales(Yenc, b0, alpha0, directed, rng)
    prob = _Problem(Yenc, directed, d, 0.0, scale_b, scale_alpha, None,
                    _node_scales(Yenc, directed, opts.node_smooth) if opts.node_precondition else None)
    prob.evaluator = evaluator
    if evaluator is None:
        prob.dtype = np.dtype(opts.stage_dtype).type
    x_full = prob.pack(b0, eps0, alpha0)
    keep = np.ones(x_full.size, dtype=bool)
    keep[prob.se] = False

    def fun(xr):
        x = np.zeros_like(x_full)
        x[keep] = xr
        f, g = prob.fun(x)
        return f, g[keep]

    with threads_for(K * n * n):
        sol = lbfgs(fun, x_full[keep], tol=tol, gtol=0.0, max_iter=max_iter, m=20, warn=False,
                    name="hlsm shared configuration")
    x = np.zeros_like(x_full)
    x[keep] = sol.x
    b, _, alpha = prob.unpack(x)
    return b - b.mean(axis=0), np.ascontiguousarray(alpha), sol


def solve(prob, x0, *, lam, staged, max_iter, tol, gtol, accelerate, verbose, callback, stages, opts):
    """Minimise ``prob`` from ``x0``: the solver stages of :func:`fastgrad.hlsm.fit`.

    After a multilevel start with ``lam > 0`` (``staged``), L-BFGS on the
    Huber-smoothed penalty first (proximal gradient alone needs hundreds of
    iterations on large networks; it then only has to settle which deviations
    are exactly zero); otherwise L-BFGS rounds on the non-zero groups
    (:func:`_solve_active_set`; proximal gradient alone took 1611 iterations, 17 s, on
    a 400-node network at ``lam = 1e6`` where the rounds take 1.5 s); then proximal
    gradient, whose stopping rule decides convergence.
    Returns the proximal-gradient :class:`~fastgrad.solvers.SolverResult`.
    """
    from ..solvers import lbfgs
    K, n = prob.K, prob.n
    work = K * n * n
    cb = None
    if callback is not None:
        def cb(it, x):
            b, eps, alpha = prob.unpack(x)
            return callback(it, {"b": b.copy(), "eps": eps.copy(), "alpha": alpha.copy()})
    sol = None
    if lam > 0 and staged and opts.smooth_stage:
        t1 = time.perf_counter()
        if prob.evaluator is None:
            prob.dtype = np.dtype(opts.stage_dtype).type
        with threads_for(work):
            smooth = lbfgs(prob.smoothed(opts.smooth_mu), x0, tol=opts.smooth_tol, gtol=0.0,
                           max_iter=opts.smooth_max_iter, m=20, warn=False, name="hlsm smoothed")
        prob.dtype = np.float64
        x0 = smooth.x
        stages["smoothed L-BFGS"] = _stage_record(smooth, t1)
    elif opts.quasi_newton and callback is None and prob.evaluator is None:
        sol = _solve_active_set(prob, x0, lam, max_iter, tol, gtol, accelerate, verbose, stages, work, opts)
    t1 = time.perf_counter()
    if sol is None:
        with threads_for(work):
            sol = proximal_gradient(prob.fun, x0, prox=prob.prox, penalty=prob.penalty, fun_value=prob.fun_value,
                                    accelerate=accelerate, max_iter=max_iter, tol=tol, gtol=gtol, callback=cb,
                                    verbose=verbose, name="hlsm.fit")
    if "quasi-Newton" not in stages:
        stages["proximal gradient"] = _stage_record(sol, t1)
    return sol
