"""HLSM at the machine's limit and at scale (a plain script, run by hand; not an asv suite).

    python benchmarks/hlsm_scale.py kernel            # nll+gradient pass vs NumPy, float64/32, 1 and 2 threads
    python benchmarks/hlsm_scale.py memory [n [max_iter]]  # sparse-input fit at n (default 10000): time, peak RSS
    python benchmarks/hlsm_scale.py scale [n [max_iter [tol [gtol|none]]]]   # the same at n (default 20000)
    python benchmarks/hlsm_scale.py cc [n [max_iter [controls]]]  # case-control fit (default 100 controls)
    python benchmarks/hlsm_scale.py iters [n [max_iter]]   # iterations with/without per-node preconditioning
    python benchmarks/hlsm_scale.py all

Pair evaluations are counted as K * n * (n - 1) per pass. Each timing is the best
of several repeats; "cpu-normalised" divides by the CPU time the process actually
got, which is the fairer figure when other jobs share the machine. The load
average printed with each table says how busy the machine was.
"""
import os
import resource
import subprocess
import sys
import time

import numpy as np


def _load():
    try:
        return "load average %.2f %.2f %.2f on %d cores" % (*os.getloadavg(), os.cpu_count())
    except OSError:  # pragma: no cover
        return "load average unavailable"


def numpy_nll_grad(Y, z, alpha):
    """Vectorised NumPy nll + gradient, same formulas (undirected, -1 = missing), layer by layer."""
    K, n, d = z.shape
    nll = 0.0
    gz = np.empty_like(z)
    ga = np.empty(K)
    for k in range(K):
        diff = z[k][:, None, :] - z[k][None, :, :]
        eta = alpha[k] - np.einsum("ijc,ijc->ij", diff, diff)
        obs = Y[k] >= 0
        np.fill_diagonal(obs, False)
        y = (Y[k] == 1)
        e = np.exp(-np.abs(eta))
        sp = np.maximum(eta, 0.0) + np.log1p(e)
        s = np.where(eta >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        nll += 0.5 * np.where(obs, sp - y * eta, 0.0).sum()
        r = np.where(obs, s - y, 0.0)
        ga[k] = 0.5 * r.sum()
        gz[k] = -2.0 * np.einsum("ij,ijc->ic", r, diff)
    return nll, gz, ga


def _best(f, repeat):
    best_wall, best_cpu = np.inf, np.inf
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        f()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if wall < best_wall:
            best_wall, best_cpu = wall, cpu
    return best_wall, best_cpu


def bench_kernel(n=2000, K=4, d=2, repeat=7):
    import numba

    from fastgrad import hlsm
    from fastgrad.kernels.hlsm import (hlsm_nll, hlsm_nll_fast, hlsm_nll_fast32, hlsm_nll_grad, hlsm_nll_grad_fast,
                                       hlsm_nll_grad_fast32)
    Y, truth = hlsm.simulate(n, K, dim=d, random_state=0)
    Yenc = hlsm.encode_layers(Y)
    del Y
    z = np.ascontiguousarray(truth.z)
    a = truth.alpha.copy()
    g, ga = np.empty_like(z), np.empty(K)
    g32, ga32 = np.empty_like(z), np.empty(K)
    dummy = np.zeros((1, 1, 1), dtype=np.int8)
    hlsm_nll_grad_fast(Yenc, Yenc, z, a, False, g, ga)  # compile
    hlsm_nll_grad_fast32(Yenc, Yenc, z, a, False, g32, ga32)
    hlsm_nll_grad_fast32(dummy, dummy, z, a, False, g32, ga32, False)
    hlsm_nll_grad(Yenc, Yenc, z, a, False, g, ga)
    hlsm_nll_fast(Yenc, z, a, False)
    hlsm_nll_fast32(Yenc, z, a, False)
    hlsm_nll(Yenc, z, a, False)
    f_np, g_np, _ = numpy_nll_grad(Yenc, z, a)
    f_fast = hlsm_nll_grad_fast(Yenc, Yenc, z, a, False, g, ga)
    f_32 = hlsm_nll_grad_fast32(Yenc, Yenc, z, a, False, g32, ga32)
    pairs = K * n * (n - 1)
    print(f"\n== nll+gradient pass, n={n}, K={K}, d={d}, undirected ({pairs:.3g} pair evaluations/pass)")
    print(f"   {_load()}")
    print(f"   fast vs NumPy: |dnll|/nll = {abs(f_fast - f_np) / abs(f_np):.1e}, "
          f"max|dgrad|/max|grad| = {np.abs(g - g_np).max() / np.abs(g_np).max():.1e}")
    print(f"   float32 vs NumPy: |dnll|/nll = {abs(f_32 - f_np) / abs(f_np):.1e}, "
          f"max|dgrad|/max|grad| = {np.abs(g32 - g_np).max() / np.abs(g_np).max():.1e}")
    old = numba.get_num_threads()
    rows = []
    t_np, c_np = _best(lambda: numpy_nll_grad(Yenc, z, a), 3)
    try:
        for th in (1, 2):
            if th > numba.config.NUMBA_NUM_THREADS:
                continue
            numba.set_num_threads(th)
            for name, fn in (
                    ("nll+grad fast f64", lambda: hlsm_nll_grad_fast(Yenc, Yenc, z, a, False, g, ga)),
                    ("nll+grad fast f32", lambda: hlsm_nll_grad_fast32(Yenc, Yenc, z, a, False, g32, ga32)),
                    ("non-tie pass f32", lambda: hlsm_nll_grad_fast32(dummy, dummy, z, a, False, g32, ga32, False)),
                    ("nll+grad reference", lambda: hlsm_nll_grad(Yenc, Yenc, z, a, False, g, ga)),
                    ("nll only fast f64", lambda: hlsm_nll_fast(Yenc, z, a, False)),
                    ("nll only fast f32", lambda: hlsm_nll_fast32(Yenc, z, a, False)),
                    ("nll only reference", lambda: hlsm_nll(Yenc, z, a, False))):
                w, c = _best(fn, repeat)
                rows.append((th, name, w, c))
    finally:
        numba.set_num_threads(old)
    t_np2, c_np2 = _best(lambda: numpy_nll_grad(Yenc, z, a), 3)  # NumPy again: load may have changed
    if t_np2 < t_np:
        t_np, c_np = t_np2, c_np2
    print(f"   {_load()} (after the runs)")
    print(f"   NumPy (1 thread, vectorised): {t_np * 1e3:9.1f} ms  {pairs / t_np:10.3g} pairs/s "
          f"(best of 6, before and after)")
    print(f"   {'threads':>7s} {'pass':<20s} {'ms':>9s} {'pairs/s':>10s} {'x NumPy':>8s} "
          f"{'cpu-normalised pairs/s':>23s} {'x NumPy (cpu)':>14s}")
    for th, name, w, c in rows:
        cpu_rate = pairs / (c / th) if c > 0 else float("nan")
        print(f"   {th:7d} {name:<20s} {w * 1e3:9.1f} {pairs / w:10.3g} {t_np / w:8.1f} {cpu_rate:23.3g} "
              f"{cpu_rate / (pairs / c_np):14.1f}")
    return rows


# ----------------------------------------------------------------------------- size / memory

def _fit_child(path, max_iter, tol, controls=0, seed=0, gtol=1e-4):
    """Run in a subprocess: load the sparse layers saved at ``path``, fit, print figures.

    ``controls > 0``: case-control likelihood with that many controls per node
    and layer; the exact nll at the estimate is printed as well.
    """
    import numba
    import scipy.sparse as sp

    from fastgrad import hlsm
    data = np.load(path)
    K = int(data["K"])
    layers = [sp.load_npz(f"{path}.{k}.npz").tocsr() for k in range(K)]
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = layers[0].shape[0]
    t0, c0 = time.perf_counter(), time.process_time()
    Y = layers
    if controls:
        S = hlsm.Layers(layers)
        Y = hlsm.case_control_layers(S, controls, random_state=seed)
    res = hlsm.fit(Y, lam=5.0, random_state=seed, max_iter=max_iter, tol=tol, gtol=gtol, sparse=True)
    t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
    if controls:
        print(f"case-control with {controls} controls: exact nll at the estimate "
              f"{S.nll(res.z, res.alpha):.6g}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    step = max(1, res.history.size // 10)
    print("HISTORY (iteration: objective) " + " ".join(f"{i}:{res.history[i]:.9g}"
                                                      for i in range(0, res.history.size, step)), flush=True)
    print("STAGES " + "; ".join(f"{k}: " + ", ".join(f"{a}={v:.1f}" if isinstance(v, float) else f"{a}={v}"
                                                     for a, v in st.items())
                                for k, st in res.stages.items()), flush=True)
    nnz = sum(int(sp.triu(A, 1).nnz) for A in layers)
    print(f"RESULT n={n} K={K} ties={nnz} fit_s={t_fit:.1f} n_iter={res.n_iter} "
          f"converged={res.converged} s_per_iter={t_fit / max(res.n_iter, 1):.2f} "
          f"peak_rss_MiB={peak:.0f} rss_after_loading_MiB={rss_data:.0f} "
          f"nll={res.nll:.6g} objective={res.objective:.9g} deviating={int(res.deviating.sum())} "
          f"last_rel_change={abs(res.history[-1] - res.history[-2]) / abs(res.history[-1]):.2e} "
          f"rel_change_over_last_10={(res.history[-min(11, res.history.size)] - res.history[-1]) / abs(res.history[-1]):.2e} "
          f"cpu_s={c_fit:.1f} cpu_s_per_iter_per_thread={c_fit / max(res.n_iter, 1) / numba.get_num_threads():.2f} "
          f"threads={numba.get_num_threads()}", flush=True)


def hlsm_sparse_simulate(n, K, density, seed):
    """Sparse layers from the latent space model without any dense (n, n) array.

    Shared 2-d Gaussian positions, a third of the nodes deviating in layer 0;
    candidate pairs are sampled near each node (a k-d tree query) and kept with
    the model probability, with alpha_k set for the requested density.
    """
    import scipy.sparse as sp
    from scipy.spatial import cKDTree
    rng = np.random.default_rng(seed)
    b = rng.standard_normal((n, 2)) * np.sqrt(n / 200.0)  # keeps the average degree fixed by density
    layers = []
    target = density * (n - 1)  # expected degree
    for k in range(K):
        z = b.copy()
        if k == 0:
            idx = rng.choice(n, n // 3, replace=False)
            u = rng.standard_normal((idx.size, 2))
            z[idx] += 1.5 * u / np.linalg.norm(u, axis=1, keepdims=True)
        # P(tie) = sigmoid(alpha - d^2): choose alpha so the expected degree is ~target
        tree = cKDTree(z)
        radius = 4.0
        pairs = tree.query_pairs(radius, output_type="ndarray")
        d2 = ((z[pairs[:, 0]] - z[pairs[:, 1]]) ** 2).sum(1)
        lo, hi = -20.0, 40.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            deg = 2 * (1 / (1 + np.exp(-(mid - d2)))).sum() / n
            lo, hi = (mid, hi) if deg < target else (lo, mid)
        p = 1 / (1 + np.exp(-(lo - d2)))
        keep = rng.random(p.size) < p
        i, j = pairs[keep, 0], pairs[keep, 1]
        A = sp.coo_matrix((np.ones(i.size), (i, j)), shape=(n, n))
        layers.append((A + A.T).tocsr())
    return layers


def bench_iters(n=1000, K=3, density=0.01, max_iter=3000, tol=1e-8):
    """Iterations to the stopping rule with and without per-node preconditioning (same data, lam=5)."""
    import warnings

    from fastgrad import hlsm
    S = hlsm.Layers(hlsm_sparse_simulate(n, K, density, 0))
    print(f"\n== iterations of hlsm.fit, n={n}, K={K}, density={density}, lam=5, tol={tol}, max_iter={max_iter}")
    print(f"   {_load()} (before)")
    rows = []
    for pre in (True, False):
        c0, t0 = time.process_time(), time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = hlsm.fit(S, lam=5.0, random_state=0, max_iter=max_iter, tol=tol, sparse=True,
                           solver_options={"node_precondition": pre})
        rows.append((pre, res, time.perf_counter() - t0, time.process_time() - c0))
    best = min(r.objective for _, r, _, _ in rows)
    for pre, res, w, c in rows:
        h = res.history
        at = {k: h[min(k, h.size - 1)] - best for k in (100, 300, 1000)}
        print(f"   preconditioned={pre!s:5s} n_iter={res.n_iter:5d} converged={res.converged!s:5s} wall={w:7.1f}s "
              f"cpu={c:7.1f}s objective={res.objective:.10g}  gap after 100/300/1000 it: "
              + " ".join(f"{v:.3g}" for v in at.values()))
    print(f"   {_load()} (after)")
    return rows


def bench_fit(n, K=3, density=0.01, max_iter=200, tol=1e-6, controls=0, gtol=1e-4):
    import tempfile

    import scipy.sparse as sp
    print(f"\n== sparse-input fit, n={n}, K={K}, density={density}, max_iter={max_iter}, tol={tol}, gtol={gtol}"
          + (f", case-control with {controls} controls" if controls else ""))
    t0 = time.perf_counter()
    layers = hlsm_sparse_simulate(n, K, density, 0)
    print(f"   simulated in {time.perf_counter() - t0:.1f} s (in this process; not part of the measurement)")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "layers.npz")
        np.savez(path, K=K)
        for k, A in enumerate(layers):
            sp.save_npz(f"{path}.{k}.npz", A)
        del layers
        print(f"   {_load()} (before)")
        cmd = [sys.executable, "-c",
               f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
               f"import hlsm_scale; hlsm_scale._fit_child({path!r}, {max_iter}, {tol}, {controls}, 0, {gtol})"]
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    for line in (out.stdout + out.stderr).splitlines():
        if line.startswith(("RESULT", "HISTORY", "STAGES", "case-control")) or "Error" in line or "Warning" in line:
            print("   " + line)
    print(f"   fit subprocess wall time {wall:.1f} s (incl. import and compilation); {_load()} (after)")
    return out.returncode


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "kernel"
    arg = int(sys.argv[2]) if len(sys.argv) > 2 else None
    iters = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    if what in ("kernel", "all"):
        bench_kernel()
    # memory / scale: optional tol and gtol ("none": stop on the relative objective change alone)
    tols = {}
    if what in ("memory", "scale") and len(sys.argv) > 4:
        tols["tol"] = float(sys.argv[4])
    if what in ("memory", "scale") and len(sys.argv) > 5:
        tols["gtol"] = None if sys.argv[5] == "none" else float(sys.argv[5])
    if what in ("memory", "all"):
        bench_fit(arg or 10_000, max_iter=iters, **tols)
    if what in ("scale", "all"):
        bench_fit(arg or 20_000, max_iter=iters, **tols)
    if what == "iters":
        bench_iters(arg or 1000, max_iter=iters if len(sys.argv) > 3 else 3000)
    if what == "cc":
        bench_fit(arg or 20_000, max_iter=iters, controls=int(sys.argv[4]) if len(sys.argv) > 4 else 100)
