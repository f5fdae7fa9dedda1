"""Distributed L2-logistic regression on data larger than one worker's memory limit.

A plain script (not asv)::

    python benchmarks/dask_scale.py [--n 2000000] [--p 50] [--memory-limit 700MiB]

Two worker processes (one Dask thread and one Numba thread each) with a
memory limit below the size of ``X``; ``X`` is generated ON the workers with
``dask.array.random`` (the client never holds it) and persisted there in row
blocks. (A worker process with Numba, SciPy and distributed loaded already
takes ~200 MiB, so the limit must exceed X/2 + 200 MiB: the default X of 763
MiB is 1.09x one worker's limit.) The fit is :func:`fastgrad.glm.fit` on the
dask array (L-BFGS, one map-reduce of loss + gradient per function
evaluation). For comparison the same model is fitted locally (2 Numba threads)
on an in-memory sample of ``--local-n`` rows.

Printed per iteration: wall time (median of the gaps between solver
callbacks), and bytes moved: arguments sent by the client, the reduced result
received, and partial results moved between workers by the tree reduction (the
workers' ``transfer_outgoing_bytes_total``). ``X`` itself never moves.
Timings on a shared machine are noisy: the script prints the load average.
"""
import argparse
import os
import time
import warnings

import numpy as np


def _transfer_bytes(client):
    return sum(client.run(lambda dask_worker: dask_worker.transfer_outgoing_bytes_total).values())


def _stamps(store):
    def cb(it, state):
        store.append(time.perf_counter())
        return False
    return cb


def _per_iter(stamps):
    gaps = np.diff(stamps)
    return float(np.median(gaps)) if gaps.size else float("nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--p", type=int, default=50)
    ap.add_argument("--chunk-rows", type=int, default=100_000)
    ap.add_argument("--memory-limit", default="700MiB")
    ap.add_argument("--local-n", type=int, default=100_000)
    ap.add_argument("--max-iter", type=int, default=15)
    ap.add_argument("--lam", type=float, default=1e-4)
    args = ap.parse_args(argv)

    import dask
    import dask.array as da
    from dask.utils import parse_bytes
    from distributed import Client

    import fastgrad.dask as fd
    from fastgrad import glm

    n, p = args.n, args.p
    x_bytes = n * p * 8
    limit = parse_bytes(args.memory_limit)
    print(f"load average: {os.getloadavg()}  cores: {os.cpu_count()}")
    print(f"X: {n} x {p} float64 = {x_bytes / 2**20:.0f} MiB; worker memory limit "
          f"{limit / 2**20:.0f} MiB (X is {x_bytes / limit:.2f}x one worker's limit)")

    # Keep the limit real (a worker above 98% of it is killed) but do not spill the
    # partitions to disk or pause: every iteration reads all of them.
    cfg = {"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
           "distributed.worker.memory.pause": False, "distributed.worker.memory.terminate": 0.98}
    with dask.config.set(cfg), \
            fd.local_cluster(2, numba_threads=1, memory_limit=args.memory_limit) as cluster, \
            Client(cluster) as client:
        rng = da.random.default_rng(0)
        X = rng.standard_normal((n, p), chunks=(args.chunk_rows, p))
        w_true = np.linspace(-1.0, 1.0, p) / np.sqrt(p)
        t = X @ w_true
        y = (rng.random(n, chunks=(args.chunk_rows,)) < 1.0 / (1.0 + da.exp(-t))).astype(float)

        # warm up the workers' kernels on a tiny problem (compilation out of the timings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            glm.fit(X[:2000], y[:2000], loss="logistic", lam=args.lam, max_iter=2)

        stamps, transfer, mem = [], [], {}

        def cb(it, state):
            stamps.append(time.perf_counter())
            transfer.append(_transfer_bytes(client))
            if it == 2:
                info = client.scheduler_info(n_workers=-1)["workers"]
                mem.update({a: w["metrics"]["memory"] for a, w in info.items()})
            return False

        tb0 = _transfer_bytes(client)
        t0 = time.perf_counter()
        res = glm.fit(X, y, loss="logistic", lam=args.lam, solver="lbfgs",
                      max_iter=args.max_iter, tol=1e-12, callback=cb)
        t_total = time.perf_counter() - t0
        calls = res.info["map_reduce_calls"]
        # after iteration 1 the partitions are in place: what moves is the reduction
        tb_iter = (transfer[-1] - transfer[0]) / max(1, len(transfer) - 1)
        tb_load = transfer[0] - tb0

    # the local fit on an in-memory sample (same model, same solver)
    rs = np.random.default_rng(1)
    Xl = rs.standard_normal((args.local_n, p))
    yl = (rs.random(args.local_n) < 1.0 / (1.0 + np.exp(-(Xl @ w_true)))).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        glm.fit(Xl[:2000], yl[:2000], loss="logistic", lam=args.lam, solver="lbfgs", max_iter=2)
    lstamps = []
    t0 = time.perf_counter()
    loc = glm.fit(Xl, yl, loss="logistic", lam=args.lam, solver="lbfgs", max_iter=args.max_iter,
                  tol=1e-12, callback=_stamps(lstamps), solver_options={"presolve": False})
    t_local = time.perf_counter() - t0

    d_it, l_it = _per_iter(stamps), _per_iter(lstamps)
    print(f"\ndistributed: {res.n_iter} iterations, {calls} map-reduces, {t_total:.2f} s total "
          f"(incl. generating and persisting X on the workers)")
    print(f"  time per iteration      {d_it * 1e3:8.1f} ms  ({d_it / n * 1e6 * 1e3:.1f} ms per "
          "million rows)")
    per_it = calls / max(1, res.n_iter)
    print(f"  map-reduces per iteration {per_it:.2f} (L-BFGS line search)")
    out_it, in_it = (res.info[k] / calls * per_it for k in ("bytes_out", "bytes_in"))
    print(f"  client -> workers       {out_it:8.0f} B per iteration")
    print(f"  workers -> client       {in_it:8.0f} B per iteration")
    print(f"  worker <-> worker       {tb_iter:8.0f} B per iteration (tree reduction; "
          f"X is {x_bytes / 2**20:.0f} MiB)")
    print(f"  worker <-> worker while generating + persisting X (once): {tb_load / 2**20:.1f} MiB")
    if mem:
        print("  worker memory (RSS)     " + ", ".join(f"{m / 2**20:.0f} MiB" for m in mem.values())
              + f" of {limit / 2**20:.0f} MiB each")
    print(f"local (2 Numba threads, n={args.local_n}): {loc.n_iter} iterations, {t_local:.2f} s")
    print(f"  time per iteration      {l_it * 1e3:8.1f} ms  ({l_it / args.local_n * 1e6 * 1e3:.1f}"
          " ms per million rows)")
    print(f"ratio per million rows (distributed / local): {(d_it / n) / (l_it / args.local_n):.2f}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
