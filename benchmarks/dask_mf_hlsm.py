"""Distributed MF (DSGD) and HLSM (row blocks) on a 2-worker LocalCluster against the local fits.

Reports time per epoch (MF) / per likelihood iteration (HLSM) and the bytes that cross
the network per epoch / iteration (pickled sizes, counted by the fastgrad.dask
trainers), on data larger than one worker's memory budget: each cluster's per-worker
``memory_limit`` is the footprint of a worker that has run fastgrad's kernels (measured
first on a probe cluster) plus 90% of the data size, so no single worker could hold the
data; each holds its half. Dask's spill/pause thresholds are switched off (the limit is
the hard one: the nanny kills a worker at 98% of it). ``--quick`` runs without a limit.

Run:  python benchmarks/dask_mf_hlsm.py [--quick]
"""
import argparse
import time
import warnings

import numpy as np

_IDLE = {}     # "bytes": RSS of a worker that has run the kernels (set by _measure_idle)


def _warm_up(client):
    """Run both distributed fits once on tiny data (loads the kernels on the workers)."""
    from fastgrad import hlsm
    from fastgrad.dask import fit_hlsm, fit_mf
    rng = np.random.default_rng(0)
    fit_mf(client, rng.integers(0, 30, 500), rng.integers(0, 20, 500), rng.normal(3, 1, 500),
           n_factors=4, n_epochs=1)
    warnings.simplefilter("ignore")
    fit_hlsm(client, hlsm.simulate(30, 2, random_state=0)[0], 1.0, init="random", max_iter=2)


def _measure_idle():
    cluster, client, _ = _cluster(None)
    try:
        _warm_up(client)
        _IDLE["bytes"] = _peak_rss(client)
    finally:
        client.close()
        cluster.close()


def _cluster(data_bytes, n_workers=2):
    import dask
    from distributed import Client, LocalCluster
    limit = None if data_bytes is None else int(_IDLE["bytes"] + 0.9 * data_bytes)
    dask.config.set({"distributed.worker.memory.target": False, "distributed.worker.memory.spill": False,
                     "distributed.worker.memory.pause": False, "distributed.worker.memory.terminate": 0.98,
                     "distributed.admin.system-monitor.interval": "100ms"})
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, memory_limit=limit, env={"NUMBA_NUM_THREADS": "1"})
    client = Client(cluster)
    client.wait_for_workers(n_workers)
    return cluster, client, limit


def _peak_rss(client):
    """Largest resident set size of the workers so far (bytes), as sampled every 0.1 s by
    their system monitors (``ru_maxrss`` would include the parent's peak before exec)."""
    def peak(dask_worker):
        return max(dask_worker.monitor.quantities["memory"])
    return max(client.run(peak).values())


def _stamps():
    times = [time.perf_counter()]

    def cb(it, state):
        times.append(time.perf_counter())
    return times, cb


def bench_mf(n_ratings, n_epochs, n_factors=16, n_blocks=4):
    from fastgrad import mf
    from fastgrad.dask import fit_mf
    rng = np.random.default_rng(0)
    n_users, n_items = n_ratings // 100, n_ratings // 250
    u = rng.integers(0, n_users, n_ratings)
    i = rng.integers(0, n_items, n_ratings)
    r = np.clip(np.round(3.5 + rng.normal(0, 1, n_ratings)), 1, 5)
    data_bytes = n_ratings * (4 + 4 + 8)          # the cells as the workers hold them
    # B = 4 blocks on 2 workers (2 row blocks each): a task copies one cell (1/16 of the data),
    # which keeps a worker's peak memory within its limit; B = 2 needs a cell of 1/4
    kw = dict(n_factors=n_factors, n_epochs=n_epochs, random_state=0, n_blocks=n_blocks)
    mf.fit(u[:1000], i[:1000], r[:1000], **dict(kw, n_epochs=1))     # compile outside the timings
    t_local, cb = _stamps()
    local = mf.fit(u, i, r, n_threads=2, callback=cb, **kw)
    cluster, client, limit = _cluster(data_bytes if _IDLE else None)
    try:
        _warm_up(client)
        stats = {}
        dist = fit_mf(client, u, i, r, stats=stats, **kw)
        peak = _peak_rss(client)
    finally:
        client.close()
        cluster.close()
    same = all(np.array_equal(getattr(local, a), getattr(dist, a)) for a in ("P", "Q", "user_bias", "item_bias"))
    ep_local = np.diff(t_local)[1:].mean()               # skip epoch 1 (first touch of the arrays)
    ep_dist = np.mean(stats["seconds"][1:])
    print(f"\nMF  {n_ratings:,} ratings, {n_users:,} users x {n_items:,} items, k={n_factors}, B={n_blocks}, "
          f"{n_epochs} epochs")
    print(f"  data {data_bytes / 2**20:.0f} MB; {_limit_text(limit)}; peak worker RSS (sampled) {peak / 2**20:.0f} MB")
    print(f"  time/epoch   local (2 threads) {ep_local:.3f} s   dask (2 workers x 1 thread) {ep_dist:.3f} s"
          f"   ratio {ep_dist / ep_local:.2f}")
    print(f"  bytes/epoch  between workers {np.mean(stats['bytes_between_workers'][1:]) / 2**20:.2f} MB"
          f" (item blocks), to client {np.mean(stats['bytes_to_client'][1:]) / 2**20:.2f} MB (P, Q "
          f"checkpoint), from client {np.mean(stats['bytes_from_client'][1:]) / 2**20:.2f} MB; "
          f"first epoch from client {stats['bytes_from_client'][0] / 2**20:.1f} MB (cells + params)")
    print(f"  same parameters as local bit for bit: {same}; rmse {dist.rmse(u, i, r):.6f} "
          f"vs {local.rmse(u, i, r):.6f}")
    return dict(task="mf", local_s=ep_local, dask_s=ep_dist, same=same)


def bench_hlsm(n, n_iter, K=3):
    from fastgrad import ConvergenceWarning, hlsm
    from fastgrad.dask import fit_hlsm
    Y, _ = hlsm.simulate(n, K, random_state=0)
    Yenc = hlsm.encode_layers(Y)
    del Y
    data_bytes = Yenc.nbytes
    kw = dict(init="random", random_state=0, max_iter=n_iter)
    warnings.simplefilter("ignore", ConvergenceWarning)
    small = Yenc[:, :50, :50].copy()
    hlsm.fit(small, 1.0, **kw)                                            # compile
    t_local, cb = _stamps()
    local = hlsm.fit(Yenc, 1.0, callback=cb, **kw)
    cluster, client, limit = _cluster(data_bytes if _IDLE else None)
    try:
        _warm_up(client)
        stats = {}
        t_dist, cb = _stamps()
        dist = fit_hlsm(client, Yenc, 1.0, stats=stats, callback=cb, **kw)
        peak = _peak_rss(client)
    finally:
        client.close()
        cluster.close()
    it_local, it_dist = np.diff(t_local)[1:].mean(), np.diff(t_dist)[1:].mean()
    calls = stats["calls"] / dist.n_iter
    z_mb = K * n * 2 * 8 / 2**20
    print(f"\nHLSM  n={n:,} nodes, K={K} layers, d=2, {dist.n_iter} iterations "
          f"({calls:.2f} likelihood evaluations per iteration)")
    print(f"  data {data_bytes / 2**20:.0f} MB (int8 layers); {_limit_text(limit)}; "
          f"peak worker RSS (sampled) {peak / 2**20:.0f} MB")
    print(f"  time/iteration  local (2 threads) {it_local:.3f} s   dask (2 workers x 1 thread) {it_dist:.3f} s"
          f"   ratio {it_dist / it_local:.2f}")
    print(f"  bytes/iteration  to workers {stats['bytes_out'] / dist.n_iter / 2**20:.2f} MB, from workers "
          f"{stats['bytes_in'] / dist.n_iter / 2**20:.2f} MB (z is {z_mb:.2f} MB); "
          f"row blocks scattered once: {stats['bytes_scattered'] / 2**20:.1f} MB")
    print(f"  objective dask - local: {dist.objective - local.objective:.3e} (relative "
          f"{abs(dist.objective - local.objective) / abs(local.objective):.1e})")
    return dict(task="hlsm", local_s=it_local, dask_s=it_dist)


def _limit_text(limit):
    if limit is None:
        return "no worker memory limit (--quick)"
    return (f"worker memory_limit {limit / 2**20:.0f} MB = footprint with kernels "
            f"{_IDLE['bytes'] / 2**20:.0f} MB + 90% of the data")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    args = ap.parse_args(argv)
    import os
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cores")
    if not args.quick:
        _measure_idle()
    if args.quick:
        bench_mf(400_000, 3)
        bench_hlsm(600, 5)
    else:
        bench_mf(8_000_000, 4)
        bench_hlsm(5000, 6)
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
