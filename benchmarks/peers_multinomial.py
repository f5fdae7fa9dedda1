"""Multinomial logistic regression: fastgrad vs statsmodels and scikit-learn.

``run(quick=False)`` measures, side by side in one process, at n=20,000,
p=50, K=5 (quick: n=2,000, p=10, K=3):

- Hessian assembly (probabilities + Hessian) vs ``statsmodels MNLogit.hessian``;
- a full unpenalised fit vs statsmodels' Newton and each of scikit-learn's
  multinomial solvers (lbfgs, newton-cg, newton-cholesky, sag, saga with
  ``C=np.inf``), each run to a tight tolerance; the note gives every solver's
  final gap ``objective - best objective`` so "same tolerance" can be checked.

Times are the best of a few repeats after a warm-up call (compilation excluded).

``python -m benchmarks.peers_multinomial [--shapes 20000x50x5 20000x500x5]`` runs the
target comparison of issue 14 on correlated designs (Toeplitz(0.5) columns): fastgrad
(``solver="auto"``: L-BFGS whitened by the start Hessian, then exact Newton steps up to
1,500 parameters; the whitened L-BFGS alone beyond) against each
scikit-learn solver (lbfgs, newton-cg, newton-cholesky), each at the loosest ``tol`` of
``1e-4 ... 1e-10`` (newton-cholesky only up to 1,500 parameters, beyond which it
builds a dense ``K(p+1)`` Hessian costing seconds per iteration) whose mean log-loss
is within ``1e-8`` (relative) of a tightly converged reference; the ratio is against
the fastest of them. statsmodels' ``MNLogit`` Newton fit (up to 1,500 parameters) is
printed as an extra peer, outside the ratio. ``--threads 1`` runs every library on one thread (Numba, BLAS and
OpenMP), which is the robust figure on a shared 2-vCPU machine.
"""
import warnings

import numpy as np

from ._timing import best_of


def _simulate(n, p, K, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    B = rng.standard_normal((p, K)) * 0.3
    L = X @ B
    P = np.exp(L - L.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (P.cumsum(1) > rng.random(n)[:, None]).argmax(1)
    return X, y


def _mean_nll(P, y):
    return float(-np.mean(np.log(np.maximum(P[np.arange(len(y)), y], 1e-300))))


def run(quick=False):
    import statsmodels.api as sm
    from sklearn.linear_model import LogisticRegression

    from fastgrad import multinomial
    from fastgrad.kernels import multinomial_hessian, multinomial_proba

    n, p, K = (2000, 10, 3) if quick else (20000, 50, 5)
    rep = 2 if quick else 3
    X, y = _simulate(n, p, K)
    rows = []

    # ---------------------------------------------------------------- Hessian
    res = multinomial.fit(X, y)  # warm-up (compiles / loads every kernel)
    coef, b = res.coef, res.intercept
    w = np.ones(n)
    Xc = np.column_stack([np.ones(n), X])
    model = sm.MNLogit(y, Xc)
    # statsmodels' parameters at the same point: first class is its reference
    theta = np.column_stack([b, coef]).T            # (q, K-1), ours vs last class
    full = np.column_stack([theta, np.zeros(p + 1)])  # (q, K) vs last
    params = full[:, 1:] - full[:, [0]]              # vs first class
    fg = lambda: multinomial_hessian(X, multinomial_proba(X, coef, b), w, True)  # noqa: E731
    fg()
    model.hessian(params)
    t_fg, H = best_of(fg, rep + 2)
    t_sm, Hs = best_of(lambda: model.hessian(params), rep + 2)
    rows.append(dict(task=f"Hessian n={n} p={p} K={K}", fastgrad_s=t_fg,
                     peer="statsmodels MNLogit.hessian", peer_s=t_sm,
                     note=f"target >= 3x; ours is (K-1)(p+1)={H.shape[0]} square"))

    # ---------------------------------------------------------------- fits
    fits = {}
    t_ours, r = best_of(lambda: multinomial.fit(X, y), rep)
    fits["fastgrad newton"] = (t_ours, _mean_nll(r.predict_proba(X), y))
    import numba
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        t_ours_1, _ = best_of(lambda: multinomial.fit(X, y), rep)
    finally:
        numba.set_num_threads(old)
    t_ours_l, rl = best_of(lambda: multinomial.fit(X, y, solver="lbfgs"), rep)
    fits["fastgrad lbfgs"] = (t_ours_l, _mean_nll(rl.predict_proba(X), y))
    peers = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for solver in ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga"):
            est = LogisticRegression(C=np.inf, solver=solver, tol=1e-8,
                                     max_iter=300 if solver in ("sag", "saga") else 1000)
            t, m = best_of(lambda est=est: est.fit(X, y), 1 if solver in ("sag", "saga") else rep)
            peers[f"sklearn {solver}"] = (t, _mean_nll(m.predict_proba(X), y))
        t, m = best_of(lambda: model.fit(method="newton", maxiter=100, tol=1e-8, disp=0), rep)
        peers["statsmodels newton"] = (t, -m.llf / n)
    best_f = min(v[1] for v in list(fits.values()) + list(peers.values()))
    for name, (t, f) in peers.items():
        rows.append(dict(task=f"fit n={n} p={p} K={K}", fastgrad_s=t_ours, peer=name, peer_s=t,
                         note=f"gap ours {fits['fastgrad newton'][1] - best_f:.1e}, "
                              f"peer {f - best_f:.1e}"))
    # the fastest peer among those that reached the optimum to 1e-8
    ok = {k: v for k, v in peers.items() if v[1] - best_f <= 1e-8 * max(1.0, abs(best_f))}
    fastest = min(ok or peers, key=lambda k: (ok or peers)[k][0])
    rows.append(dict(task="fit vs fastest accurate peer", fastgrad_s=t_ours, peer=fastest,
                     peer_s=peers[fastest][0], note="target: speed-up >= 0.7"))
    rows.append(dict(task="fit (1 numba thread) vs fastest peer", fastgrad_s=t_ours_1,
                     peer=fastest, peer_s=peers[fastest][0],
                     note="shows the cost of thread stalls on a loaded machine"))
    rows.append(dict(task="fit (fastgrad lbfgs) vs fastest peer", fastgrad_s=t_ours_l,
                     peer=fastest, peer_s=peers[fastest][0],
                     note=f"gap {fits['fastgrad lbfgs'][1] - best_f:.1e}"))
    return rows


# --------------------------------------------------------------------------- issue 14

def _toeplitz_simulate(n, p, K, rho=0.5, seed=0):
    """Correlated design (corr(x_j, x_k) = rho^|j-k|) and labels from a softmax model."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, p))
    X[:, 0] = rng.standard_normal(n)
    s = np.sqrt(1.0 - rho * rho)
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + s * rng.standard_normal(n)
    B = rng.standard_normal((p, K)) / np.sqrt(p)
    L = X @ B
    P = np.exp(L - L.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    y = (P.cumsum(1) > rng.random(n)[:, None]).argmax(1)
    return X, y


def bench_fit_vs_sklearn(n, p, K, repeat=2, target=1e-8):
    """fastgrad vs the fastest accurate scikit-learn solver on one shape (rows of dicts)."""
    from sklearn.linear_model import LogisticRegression

    from fastgrad import multinomial
    X, y = _toeplitz_simulate(n, p, K)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        multinomial.fit(X[:500], y[:500])                       # compile / load
        multinomial.fit(X[:500], y[:500], solver="lbfgs")
        ref = multinomial.fit(X, y, solver="newton", tol=1e-15, gtol=0.0)
    f0 = _mean_nll(ref.predict_proba(X), y)

    def gap(P):
        return (_mean_nll(P, y) - f0) / f0

    t_ours, r = best_of(lambda: multinomial.fit(X, y, solver="auto"), repeat)
    g_ours = gap(r.predict_proba(X))
    peers = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for solver in ("lbfgs", "newton-cg", "newton-cholesky"):
            if solver == "newton-cholesky" and K * (p + 1) > 1500:
                continue  # forms the dense K(p+1) Hessian: seconds per iteration here
            for tol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-10):
                est = LogisticRegression(C=np.inf, solver=solver, tol=tol, max_iter=10000)
                t, m = best_of(lambda est=est: est.fit(X, y), repeat)
                g = gap(m.predict_proba(X))
                if g <= target:
                    peers[solver] = (t, tol, g)
                    break
    task = f"fit n={n} p={p} K={K} toeplitz(0.5) to {target:g}"
    rows = []
    if K * (p + 1) <= 1500:
        try:
            import statsmodels.api as sm
        except ImportError:  # pragma: no cover - optional peer
            sm = None
        if sm is not None:
            model = sm.MNLogit(y, sm.add_constant(X, has_constant="add"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t, m = best_of(lambda: model.fit(method="newton", maxiter=100, tol=1e-8, disp=0),
                               repeat)
            g = (-m.llf / n - f0) / f0
            rows.append(dict(task=task, fastgrad_s=t_ours, peer="statsmodels newton tol=1e-8",
                             peer_s=t, note=f"extra peer, gap {g:+.1e}"))
    for solver, (t, tol, g) in peers.items():
        rows.append(dict(task=task, fastgrad_s=t_ours, peer=f"sklearn {solver} tol={tol:g}",
                         peer_s=t, note=f"gap ours {g_ours:+.1e} ({r.solver}, {r.n_iter} it), "
                                        f"peer {g:+.1e}"))
    if peers:
        best = min(peers, key=lambda k: peers[k][0])
        rows.append(dict(task=task, fastgrad_s=t_ours, peer=f"FASTEST sklearn {best}",
                         peer_s=peers[best][0], note="target ratio >= 1.5"))
    return rows


def _print(rows):
    for row in rows:
        ratio = row["peer_s"] / row["fastgrad_s"]
        print(f"{row['task']:<44s} fastgrad {row['fastgrad_s']*1e3:8.1f} ms | "
              f"{row['peer']:<32s} {row['peer_s']*1e3:8.1f} ms | x{ratio:5.2f}  {row['note']}",
              flush=True)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", nargs="*", default=["20000x50x5", "20000x500x5"])
    ap.add_argument("--threads", type=int, default=0, help="0: library defaults")
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    import contextlib
    ctx = contextlib.nullcontext()
    if a.threads:
        import numba
        from threadpoolctl import threadpool_limits
        numba.set_num_threads(a.threads)
        ctx = threadpool_limits(a.threads)
    with ctx:
        for shape in a.shapes:
            n, p, K = (int(v) for v in shape.split("x"))
            _print(bench_fit_vs_sklearn(n, p, K, repeat=a.repeat))
