"""GLM peer comparison: fastgrad vs NumPy and scikit-learn, measured side by side.

``python benchmarks/compare.py glm``.
Every timing is the best of a few repeats after a warm-up call (so Numba
compilation is excluded); both sides of a row run in the same process, one
right after the other.

Tasks
-----
1. Fused loss + gradient pass (logistic, dense ``n=200,000, p=100``) vs NumPy's
   two matrix-vector products ``X @ w`` and ``X.T @ r`` for the same quantities.
2. L2-logistic regression (``n=200,000, p=100, lam=1e-4``) to a relative
   objective accuracy of ``1e-8`` (against a tightly converged reference):
   fastgrad's default solver vs the fastest scikit-learn solver (``lbfgs`` or
   ``newton-cholesky``, each at the loosest ``tol`` that reaches the accuracy).
3. Lasso path of 50 values (``eps=1e-3``) on the same design with a
   continuous response: ``fastgrad.glm.path`` vs ``sklearn.linear_model.lasso_path``
   on the same grid; the note gives the largest relative objective difference.
"""
import warnings

import numpy as np

from ._timing import best_of

N, P = 200_000, 100
QUICK_N = 20_000


def _data(n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    w = rng.normal(size=p) * 2.0 / np.sqrt(p)
    t = X @ w + 0.3
    y_bin = (rng.random(n) < 1.0 / (1.0 + np.exp(-t))).astype(np.float64)
    w_sparse = w * (rng.random(p) < 0.2)
    y_lin = X @ w_sparse + rng.normal(size=n)
    return X, y_bin, y_lin


def bench_loss_grad(X, y, repeat):
    from fastgrad.kernels import LOSS_LOGISTIC, glm_loss_grad
    n, p = X.shape
    sw = np.full(n, 1.0 / n)
    w = np.random.default_rng(1).normal(size=p) * 0.1
    g = np.empty(p)
    empty = np.empty(0)

    def ours():
        return glm_loss_grad(X, y, sw, w, 0.0, LOSS_LOGISTIC, g, empty)

    def numpy_two_matvecs():
        t = X @ w
        return X.T @ t

    def numpy_full():
        t = X @ w
        return np.mean(np.logaddexp(0.0, t) - y * t), X.T @ (1.0 / (1.0 + np.exp(-t)) - y) / n

    ours()
    numpy_two_matvecs()
    t_ours, _ = best_of(ours, repeat)
    t_mv, _ = best_of(numpy_two_matvecs, repeat)
    t_full, _ = best_of(numpy_full, repeat)
    return [
        dict(task=f"fused logistic loss+grad n={n} p={p}", fastgrad_s=t_ours,
             peer="numpy X@w + X.T@r", peer_s=t_mv, note="target speed-up >= 1.6"),
        dict(task=f"fused logistic loss+grad n={n} p={p}", fastgrad_s=t_ours,
             peer="numpy full loss+grad", peer_s=t_full, note=""),
    ]


def bench_logistic(X, y, repeat, lam=1e-4, target=1e-8):
    from sklearn.linear_model import LogisticRegression

    from fastgrad import glm
    n = X.shape[0]
    ref = glm.fit(X, y, loss="logistic", lam=lam, solver="newton", tol=1e-16,
                  solver_options={"hessian_subsample": None})
    fstar = ref.objective

    def gap(coef, c):
        return (glm.objective(X, y, coef, c, loss="logistic", lam=lam) - fstar) / abs(fstar)

    glm.fit(X[:3000], y[:3000], loss="logistic", lam=lam)  # compile
    ours = None
    for tol in (1e-6, 1e-8, 1e-10, 1e-12):
        t, r = best_of(lambda: glm.fit(X, y, loss="logistic", lam=lam, tol=tol), repeat)
        g = gap(r.coef, r.intercept)
        if g <= target:
            ours = (t, r.solver, tol, g, r.n_iter)
            break
    peers = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for solver in ("lbfgs", "newton-cholesky"):
            for tol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10):
                m = LogisticRegression(C=1.0 / (n * lam), solver=solver, tol=tol, max_iter=10000)
                t, m = best_of(lambda: m.fit(X, y), repeat)
                g = gap(m.coef_[0], m.intercept_[0])
                if g <= target:
                    peers.append((t, solver, tol, g))
                    break
    best = min(peers)
    return [dict(task=f"L2 logistic n={n} p={X.shape[1]} lam={lam:g} to {target:g}",
                 fastgrad_s=ours[0], peer=f"sklearn {best[1]} (tol={best[2]:g})", peer_s=best[0],
                 note=(f"fastgrad {ours[1]} tol={ours[2]:g} gap={ours[3]:.1e} iters={ours[4]}; "
                       f"sklearn gap={best[3]:.1e}; other sklearn: "
                       + ", ".join(f"{s} {t*1e3:.0f}ms" for t, s, _, _ in peers)
                       + "; target ratio <= 0.5"))]


def bench_lasso_path(X, y, repeat, n_lams=50):
    from sklearn.linear_model import lasso_path

    from fastgrad import glm
    n = X.shape[0]
    Xc = X - X.mean(axis=0)
    yc = y - y.mean()
    lam_max = float(np.max(np.abs(Xc.T @ yc))) / n
    lams = lam_max * np.logspace(0, -3, n_lams)
    glm.path(Xc[:500], yc[:500], lams=lams, fit_intercept=False)  # compile
    t_ours, ours = best_of(lambda: glm.path(Xc, yc, lams=lams, fit_intercept=False), repeat)
    t_sk, (_, coefs, _) = best_of(lambda: lasso_path(Xc, yc, alphas=lams), repeat)

    def obj(w, lam):
        r = yc - Xc @ w
        return 0.5 * float(r @ r) / n + lam * float(np.abs(w).sum())

    diff = max(abs(obj(ours.coefs[k], lams[k]) - obj(coefs[:, k], lams[k])) / obj(coefs[:, k], lams[k])
               for k in range(n_lams))
    better = sum(obj(ours.coefs[k], lams[k]) <= obj(coefs[:, k], lams[k]) + 1e-15
                 for k in range(n_lams))
    return [dict(task=f"lasso path {n_lams} lams n={n} p={X.shape[1]}", fastgrad_s=t_ours,
                 peer="sklearn lasso_path", peer_s=t_sk,
                 note=(f"max rel objective diff {diff:.1e}, fastgrad objective <= sklearn's at "
                       f"{better}/{n_lams} lams; target ratio <= 1"))]


def run(quick=False):
    """Run all GLM comparisons; returns a list of dicts (see benchmarks/compare.py).

    The fastgrad side runs with Numba's default thread count and again with one
    thread (on a shared machine the latter can be faster); the peers run with
    their defaults (multi-threaded BLAS).
    """
    import numba
    n = QUICK_N if quick else N
    repeat = 2 if quick else 3
    X, y_bin, y_lin = _data(n, P)
    rows = []
    default = numba.get_num_threads()
    for threads in sorted({default, 1}, reverse=True):
        numba.set_num_threads(threads)
        try:
            part = bench_loss_grad(X, y_bin, repeat=5 if quick else 10)
            part += bench_logistic(X, y_bin, repeat)
            part += bench_lasso_path(X, y_lin, repeat)
        finally:
            numba.set_num_threads(default)
        for r in part:
            r["task"] = f"{r['task']} [{threads} thr]"
        rows += part
    return rows
