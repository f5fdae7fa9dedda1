"""Client look-up, worker threading checks and a safe local cluster.

Threading
---------
Numba's ``workqueue`` threading layer (its fallback when neither TBB nor
OpenMP is available) aborts the process if two threads enter a parallel
region at once -- which is what a Dask worker with several threads would do.
fastgrad's supported set-up is therefore:

- worker *processes* with ONE Dask thread each
  (``LocalCluster(processes=True, threads_per_worker=1)``, or
  ``dask worker --nworkers N --nthreads 1``); every worker process keeps its
  own Numba thread pool, sized with ``NUMBA_NUM_THREADS`` so that the pools
  of the workers on one machine do not oversubscribe its cores
  (:func:`local_cluster` sets it to ``cores // n_workers``);
- in addition, every fastgrad task runs its kernels under a per-process lock
  (see :mod:`fastgrad.dask._objective`), so even a worker with several
  threads never has two fastgrad kernels in a Numba parallel region at once.
  The lock does not cover *other* Numba code run concurrently on the same
  worker: ``check_client(client, on_unsafe="raise")`` refuses such workers
  when their layer is ``workqueue``.

:func:`check_client`, called by every distributed fit, probes each worker's
Numba threading layer and thread counts.
"""
import os

__all__ = ["WorkerLostError", "check_client", "get_client", "local_cluster"]


class WorkerLostError(RuntimeError):
    """A distributed fit could not recover from lost workers.

    Dask recomputes lost partitions from their task graph and re-runs lost
    tasks, so losing a worker usually costs only time; this error is raised
    when the scheduler gives up (a task was on too many workers that died,
    ``distributed.KilledWorker``) or the connection to the cluster is lost.
    No partial model is returned.
    """


def get_client(client=None):
    """``client`` if given, else the current ``distributed`` client.

    Raises
    ------
    ValueError
        If no client is given and none is active (a current client that is closing or
        closed does not count), or the given client is closing or closed.
    """
    from distributed import Client
    if client is not None:
        if not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        if client.status in _CLOSED:
            raise ValueError(f"client is {client.status}: pass an open distributed.Client")
        return client
    from distributed import get_client as _current
    try:
        current = _current()
    except ValueError:
        current = None
    if current is None or current.status in _CLOSED:
        raise ValueError(
            "fitting on a dask array needs a dask.distributed Client: create one first, e.g. "
            "`from distributed import Client; client = Client(fastgrad.dask.local_cluster())`, "
            "or pass client=") from None
    return current


_CLOSED = ("closing", "closed")


_PROBE = {}


def _probe_worker():
    """Run on a worker: (threading layer, numba threads) after one parallel launch."""
    import numba
    import numpy as np
    fn = _PROBE.get("fn")
    if fn is None:
        @numba.njit(parallel=True, cache=False)
        def fn(a):
            s = 0.0
            for i in numba.prange(a.shape[0]):
                s += a[i]
            return s
        _PROBE["fn"] = fn
    fn(np.ones(4))
    return numba.threading_layer(), numba.get_num_threads()


def check_client(client=None, on_unsafe="lock"):
    """Check that the workers can run fastgrad's Numba kernels safely.

    Parameters
    ----------
    client : distributed.Client, optional
        Default: the current client.
    on_unsafe : {"lock", "raise"}, default="lock"
        What to do if a worker has more than one thread while its Numba
        threading layer is ``workqueue`` (not thread-safe): ``"lock"`` accepts
        it, since fastgrad tasks serialise their kernel calls with a
        per-process lock (such a worker then runs one fastgrad kernel at a
        time); ``"raise"`` raises ``ValueError``.

    Returns
    -------
    dict
        ``{worker address: {"nthreads", "layer", "numba_threads", "safe"}}``
        where ``safe`` is False for a multi-threaded ``workqueue`` worker.

    Raises
    ------
    ValueError
        If the cluster has no workers, or (``on_unsafe="raise"``) a worker is unsafe.
    """
    if on_unsafe not in ("lock", "raise"):
        raise ValueError(f"on_unsafe must be 'lock' or 'raise', got {on_unsafe!r}")
    client = get_client(client)
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if not workers:
        raise ValueError("the dask cluster has no workers")
    probes = client.run(_probe_worker)
    out = {}
    for addr, w in workers.items():
        layer, nthreads_numba = probes.get(addr, ("unknown", 0))
        nthreads = int(w.get("nthreads", 1))
        out[addr] = {"nthreads": nthreads, "layer": layer, "numba_threads": nthreads_numba,
                     "safe": not (nthreads > 1 and layer == "workqueue")}
    unsafe = [a for a, v in out.items() if not v["safe"]]
    if unsafe and on_unsafe == "raise":
        raise ValueError(
            f"dask workers {unsafe} run several threads with Numba's 'workqueue' threading "
            "layer, which must not be entered from two threads at once; start the workers "
            "with one thread each (LocalCluster(processes=True, threads_per_worker=1) or "
            "`dask worker --nthreads 1`) or use the 'omp'/'tbb' layer (NUMBA_THREADING_LAYER)")
    return out


def local_cluster(n_workers=2, *, numba_threads=None, memory_limit="auto", **kwargs):
    """A ``distributed.LocalCluster`` in fastgrad's safe set-up.

    Worker processes with one Dask thread each, no dashboard, and
    ``NUMBA_NUM_THREADS = numba_threads`` (default ``max(1, cores // n_workers)``)
    in every worker, so the workers' Numba pools share the cores. The scheduler
    runs with work stealing off, so that a task never copies a persisted data
    partition to another worker (fastgrad submits each partition's task to the
    worker holding it; on your own cluster set
    ``distributed.scheduler.work-stealing: False`` for the same guarantee).

    Parameters
    ----------
    n_workers : int, default=2
    numba_threads : int, optional
    memory_limit : str or int, default="auto"
        Per worker, as in ``LocalCluster``.
    **kwargs
        Passed to ``LocalCluster`` (they override the defaults above).
    """
    from distributed import LocalCluster
    if numba_threads is None:
        numba_threads = max(1, (os.cpu_count() or 1) // max(1, int(n_workers)))
    env = dict(kwargs.pop("env", {}) or {})
    env.setdefault("NUMBA_NUM_THREADS", str(int(numba_threads)))
    opts = dict(n_workers=n_workers, processes=True, threads_per_worker=1,
                dashboard_address=None, memory_limit=memory_limit, env=env)
    opts.update(kwargs)
    import dask
    with dask.config.set({"distributed.scheduler.work-stealing": False}):
        return LocalCluster(**opts)
