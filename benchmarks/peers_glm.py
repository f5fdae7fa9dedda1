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
4. Regularisation paths (50 ``lam`` on fastgrad's own grid, warm starts) on wide
   (500 x 5,000, iid and Toeplitz(0.5) correlated columns), tall (200,000 x 100)
   and sparse text-like (2,000 x 20,000, 0.5% non-zeros, heavy-tailed counts)
   designs: lasso, elastic net (``l1_ratio=0.5``) and L1-logistic, against R
   glmnet (``Rscript``; ``standardize=FALSE, thresh=1e-10``, timed inside R),
   celer and skglm (warm-started loops of their estimators, ``tol=1e-8``) and
   scikit-learn's ``lasso_path``/``enet_path``. fastgrad runs at its default
   ``tol=1e-8`` and at ``tol=1e-5`` (its coordinate test ``(H_j) delta_j^2 <=
   tol^2 null_loss`` then matches glmnet's ``thresh=1e-10`` on the null
   deviance). Each row's note gives ``gap = max over lam of (F_peer - F_ours) /
   F_ours`` (positive: fastgrad's objective is lower). A peer that is not
   installed is skipped. ``python -m benchmarks.peers_glm --paths wide_iid ...``
   runs only the path suite; ``python -m benchmarks.peers_glm --only loss_grad`` runs
   only task 1 (at the default thread count and at 1 thread).
"""
import os
import shutil
import subprocess
import tempfile
import time
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


# --------------------------------------------------------------------------- paths

def _toeplitz_design(n, p, rho, rng):
    """Rows with corr(x_j, x_k) = rho^|j-k| (an AR(1) across columns)."""
    X = np.empty((n, p))
    X[:, 0] = rng.standard_normal(n)
    s = np.sqrt(1.0 - rho * rho)
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + s * rng.standard_normal(n)
    return X


def _text_design(n, p, density, rng):
    """Sparse document-term counts: Zipf word frequencies, log(1 + count) weights."""
    import scipy.sparse as sp
    nnz = int(n * p * density)
    freq = 1.0 / np.arange(1, p + 1) ** 1.1
    freq /= freq.sum()
    rows = rng.integers(0, n, nnz)
    cols = rng.choice(p, size=nnz, p=freq)
    vals = np.log1p(rng.geometric(0.5, nnz).astype(float))
    X = sp.csr_matrix((vals, (rows, cols)), shape=(n, p))
    X.sum_duplicates()
    return X


def path_problem(name, seed=0):
    """(X, y_continuous, y_binary) of one named design."""
    rng = np.random.default_rng(seed)
    if name == "wide_iid":
        X = rng.standard_normal((500, 5000))
    elif name == "wide_toeplitz":
        X = _toeplitz_design(500, 5000, 0.5, rng)
    elif name == "tall":
        X = rng.standard_normal((200_000, 100))
    elif name == "text":
        X = _text_design(2000, 20000, 0.005, rng)
    elif name == "small":  # quick runs
        X = rng.standard_normal((100, 400))
    else:
        raise ValueError(name)
    n, p = X.shape
    w = np.zeros(p)
    k = min(20, p // 5)
    support = rng.choice(p, k, replace=False)
    w[support] = rng.standard_t(3, k)
    t = np.asarray(X @ w).ravel()
    sd = float(np.std(t)) or 1.0
    y = t + sd * rng.standard_t(5, n) * 0.5     # heavy-tailed noise, SNR about 4
    yb = (rng.random(n) < 1.0 / (1.0 + np.exp(-2.0 * t / sd))).astype(np.float64)
    return X, y, yb


_R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
d <- args[1]
meta <- scan(file.path(d, "meta.txt"), quiet = TRUE)
n <- meta[1]; p <- meta[2]; k <- meta[3]; alpha <- meta[4]; binom <- meta[5]; sparse <- meta[6]
reps <- meta[7]
suppressMessages(library(glmnet))
if (sparse == 1) {
  nz <- meta[8]
  con <- file(file.path(d, "X.bin"), "rb")
  i <- readBin(con, "integer", nz); j <- readBin(con, "integer", nz)
  x <- readBin(con, "double", nz); close(con)
  X <- Matrix::sparseMatrix(i = i + 1, j = j + 1, x = x, dims = c(n, p))
} else {
  con <- file(file.path(d, "X.bin"), "rb"); X <- matrix(readBin(con, "double", n * p), n, p)
  close(con)
}
con <- file(file.path(d, "y.bin"), "rb"); y <- readBin(con, "double", n); close(con)
con <- file(file.path(d, "lams.bin"), "rb"); lams <- readBin(con, "double", k); close(con)
fam <- if (binom == 1) "binomial" else "gaussian"
best <- Inf
for (r in seq_len(reps)) {
  t0 <- proc.time()[["elapsed"]]
  fit <- glmnet(X, y, family = fam, alpha = alpha, lambda = lams, standardize = FALSE,
                thresh = 1e-10, maxit = 1e6)
  best <- min(best, proc.time()[["elapsed"]] - t0)
}
B <- as.matrix(coef(fit))   # (p + 1) x k, intercept first
con <- file(file.path(d, "out.bin"), "wb"); writeBin(c(best, as.vector(B)), con); close(con)
"""


def glmnet_path(X, y, lams, l1_ratio, logistic, repeat):
    """Time R glmnet on the grid ``lams`` (inside R); (seconds, coefs (k, p), intercepts)."""
    if shutil.which("Rscript") is None:
        return None
    import scipy.sparse as sp
    n, p = X.shape
    k = len(lams)
    # glmnet's gaussian family rescales y to unit variance (and lam with it) inside, which
    # changes the balance of an elastic-net penalty: hand it y/s with (lam', alpha') chosen
    # so that its objective is s^-2 times ours at w = s w' (lam' alpha' = lam alpha / s,
    # lam' (1 - alpha') = lam (1 - alpha)), and scale the coefficients back.
    s = 1.0
    alpha = l1_ratio
    lams = np.asarray(lams, dtype=np.float64)
    if not logistic:
        s = float(np.std(y))
        y = np.asarray(y) / s
        a1, a2 = l1_ratio / s, 1.0 - l1_ratio
        alpha = a1 / (a1 + a2)
        lams = lams * (a1 + a2)
    with tempfile.TemporaryDirectory() as d:
        meta = [n, p, k, alpha, int(logistic), int(sp.issparse(X)), repeat]
        if sp.issparse(X):
            C = X.tocoo()
            meta.append(C.nnz)
            with open(os.path.join(d, "X.bin"), "wb") as f:
                C.row.astype(np.int32).tofile(f)
                C.col.astype(np.int32).tofile(f)
                C.data.astype(np.float64).tofile(f)
        else:
            np.asfortranarray(X).T.ravel().tofile(os.path.join(d, "X.bin"))  # column-major
        with open(os.path.join(d, "meta.txt"), "w") as f:
            f.write(" ".join(repr(float(m)) for m in meta))
        np.asarray(y, dtype=np.float64).tofile(os.path.join(d, "y.bin"))
        np.asarray(lams, dtype=np.float64).tofile(os.path.join(d, "lams.bin"))
        with open(os.path.join(d, "run.R"), "w") as f:
            f.write(_R_SCRIPT)
        out = subprocess.run(["Rscript", os.path.join(d, "run.R"), d], capture_output=True,
                             text=True)
        if out.returncode != 0:
            print("glmnet failed:", out.stderr[-2000:])
            return None
        res = np.fromfile(os.path.join(d, "out.bin"))
    B = res[1:].reshape(k, p + 1) * s
    return float(res[0]), B[:, 1:], B[:, 0]


def _loop_path(make, X, y, lams, repeat, logistic):
    """A warm-started loop of a scikit-learn-style estimator over ``lams``."""
    def once():
        est = make()
        coefs, icpts = [], []
        for lam in lams:
            est.set_params(**{"C": 1.0 / (X.shape[0] * lam)} if hasattr(est, "C") and
                           not hasattr(est, "alpha") else {"alpha": lam})
            est.fit(X, y)
            coefs.append(np.ravel(est.coef_).copy())
            icpts.append(float(np.ravel(getattr(est, "intercept_", 0.0))[0])
                         if np.ndim(getattr(est, "intercept_", 0.0)) else
                         float(getattr(est, "intercept_", 0.0)))
        return np.array(coefs), np.array(icpts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = make()                      # warm-up: the peers compile with Numba too
        est.set_params(**{"alpha": lams[0]} if hasattr(est, "alpha") else {})
        est.fit(X[:40], y[:40])
        return best_of(once, repeat)


def bench_path(name, kind, repeat=2, peers=("glmnet", "celer", "skglm", "sklearn"),
               n_lams=50, data=None):
    """One path task: ``kind`` in {"lasso", "enet", "logistic"} on design ``name``."""
    from fastgrad import glm
    X, y, yb = data if data is not None else path_problem(name)
    logistic = kind == "logistic"
    loss = "logistic" if logistic else "squared"
    l1 = 0.5 if kind == "enet" else 1.0
    yy = yb if logistic else y
    n, p = X.shape
    glm.path(X[:50], yy[:50], loss=loss, l1_ratio=l1, n_lams=3)  # compile
    t_def, ours = best_of(lambda: glm.path(X, yy, loss=loss, l1_ratio=l1, n_lams=n_lams),
                          repeat)
    lams = ours.lams
    t_loose, ours_l = best_of(lambda: glm.path(X, yy, loss=loss, l1_ratio=l1, lams=lams,
                                               tol=1e-5), repeat)

    def objs(coefs, icpts):
        return np.array([glm.objective(X, yy, coefs[k], icpts[k], loss=loss, lam=lams[k],
                                       l1_ratio=l1) for k in range(len(lams))])

    f_ours = objs(ours.coefs, ours.intercepts)
    f_loose = objs(ours_l.coefs, ours_l.intercepts)

    def gap(f):
        return float(np.max((f - f_ours) / np.abs(f_ours)))

    task = f"{kind} path {n_lams} lams {name} {n}x{p}"
    rows = []
    results = {}
    if "glmnet" in peers:
        g = glmnet_path(X, yy, lams, l1, logistic, repeat)
        if g is not None:
            results["R glmnet"] = (g[0], objs(g[1], g[2]))
        else:
            print("  R glmnet: skipped (Rscript not found)")
    try:
        import celer
    except ImportError:
        celer = None
    if "celer" in peers and celer is not None and not (logistic or kind == "enet"):
        t, (C, I) = _loop_path(lambda: celer.Lasso(alpha=lams[0], tol=1e-8, warm_start=True,
                                                   fit_intercept=True), X, yy, lams, 1, False)
        results["celer"] = (t, objs(C, I))
    elif "celer" in peers and celer is not None and kind == "enet":
        t, (C, I) = _loop_path(lambda: celer.ElasticNet(alpha=lams[0], l1_ratio=l1, tol=1e-8,
                                                        warm_start=True), X, yy, lams, 1,
                               False)
        results["celer"] = (t, objs(C, I))
    try:
        import skglm
    except ImportError:
        skglm = None
    if "skglm" in peers and skglm is not None:
        if logistic:
            mk = lambda: skglm.SparseLogisticRegression(alpha=lams[0], tol=1e-8,  # noqa: E731
                                                        warm_start=True, fit_intercept=True)
        elif kind == "enet":
            mk = lambda: skglm.ElasticNet(alpha=lams[0], l1_ratio=l1, tol=1e-8,  # noqa: E731
                                          warm_start=True)
        else:
            mk = lambda: skglm.Lasso(alpha=lams[0], tol=1e-8, warm_start=True)  # noqa: E731
        t, (C, I) = _loop_path(mk, X, yy, lams, 1, logistic)
        results["skglm"] = (t, objs(C, I))
    if "sklearn" in peers and not logistic:
        import scipy.sparse as sp
        from sklearn.linear_model import enet_path
        if sp.issparse(X):
            xm = np.asarray(X.mean(axis=0)).ravel()
            ym = float(np.mean(yy))
            Xs = X
            kw = dict(X_offset=xm, X_scale=np.ones(p)) if False else {}
        else:
            xm = X.mean(axis=0)
            ym = float(np.mean(yy))
            Xs = X - xm
            kw = {}
        if not sp.issparse(X):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t, (_, C, _) = best_of(lambda: enet_path(Xs, yy - ym, l1_ratio=l1, alphas=lams,
                                                         tol=1e-10, **kw), 1)
            C = C.T
            results["sklearn enet_path"] = (t, objs(C, ym - C @ xm))
    rows.append(dict(task=task, fastgrad_s=t_def, peer="fastgrad tol=1e-5", peer_s=t_loose,
                     note=f"gap {gap(f_loose):+.1e}"))
    for peer, (t, f) in results.items():
        rows.append(dict(task=task, fastgrad_s=t_def, peer=peer, peer_s=t,
                         note=f"gap {gap(f):+.1e}; vs tol=1e-5: x{t / t_loose:.2f}, gap "
                              f"{float(np.max((f - f_loose) / np.abs(f_loose))):+.1e}"))
    return rows


PATH_TASKS = [("wide_iid", "lasso"), ("wide_toeplitz", "lasso"), ("wide_iid", "enet"),
              ("wide_iid", "logistic"), ("wide_toeplitz", "logistic"), ("tall", "lasso"),
              ("text", "lasso"), ("text", "logistic")]


def run_paths(tasks=PATH_TASKS, repeat=2, peers=("glmnet", "celer", "skglm", "sklearn")):
    rows = []
    for name, kind in tasks:
        rows += bench_path(name, kind, repeat=repeat, peers=peers)
    return rows


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
            if threads == default:
                part += (run_paths([("small", "lasso"), ("small", "logistic")], repeat=1)
                         if quick else run_paths())
        finally:
            numba.set_num_threads(default)
        for r in part:
            r["task"] = f"{r['task']} [{threads} thr]"
        rows += part
    return rows


def _print(rows):
    for row in rows:
        ratio = row["peer_s"] / row["fastgrad_s"] if row["fastgrad_s"] > 0 else float("inf")
        print(f"{row['task']:<44s} fastgrad {row['fastgrad_s']*1e3:9.1f} ms | "
              f"{row['peer']:<18s} {row['peer_s']*1e3:9.1f} ms | x{ratio:6.2f}  {row['note']}",
              flush=True)


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--paths", nargs="*", help="name:kind pairs, e.g. wide_iid:lasso")
    ap.add_argument("--peers", default="glmnet,celer,skglm,sklearn")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--only", choices=["loss_grad"],
                    help="run only task 1 (the fused loss+gradient pass) at the default "
                         "thread count and at 1 thread, then exit")
    a = ap.parse_args()
    if a.only == "loss_grad":
        import numba
        from threadpoolctl import threadpool_info
        X, y_bin, _ = _data(N, P)
        default = numba.get_num_threads()
        print("BLAS:", ", ".join(f"{d['internal_api']} {d.get('version')} "
                                 f"{d.get('architecture')} ({d['num_threads']} thr)"
                                 for d in threadpool_info() if d["user_api"] == "blas"),
              "| OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s" % (
                  os.environ.get("OPENBLAS_CORETYPE"), os.environ.get("OPENBLAS_L2_SIZE")))
        for threads in sorted({default, 1}, reverse=True):
            numba.set_num_threads(threads)
            try:
                rows = bench_loss_grad(X, y_bin, repeat=max(10, a.repeat))
            finally:
                numba.set_num_threads(default)
            for r in rows:
                r["task"] = f"{r['task']} [{threads} thr]"
            _print(rows)
        raise SystemExit(0)
    tasks = [tuple(t.split(":")) for t in a.paths] if a.paths else PATH_TASKS
    t0 = time.perf_counter()
    for task in tasks:
        _print(bench_path(*task, repeat=a.repeat, peers=tuple(a.peers.split(","))))
    print(f"total {time.perf_counter() - t0:.0f} s")
