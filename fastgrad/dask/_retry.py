"""What the Dask back-ends share: client options, wire sizes, lost-worker recovery."""
import pickle

__all__ = ["ClientOptions", "pickled_size", "alive_workers", "with_recovery"]


def pickled_size(obj):
    """Bytes ``obj`` takes on the wire (pickle protocol 5 with out-of-band buffers, as Dask)."""
    buffers = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(b.raw().nbytes for b in buffers)


class ClientOptions:
    """A client plus the options of the ``fastgrad.dask.fit_*`` entry points that the model's
    ``fit`` does not know (``stats``, ``max_retries``), passed to ``fit`` as its ``client``."""

    def __init__(self, client, stats, max_retries):
        self.client = client
        self.stats = stats
        self.max_retries = max_retries


def alive_workers(client):
    """Addresses of the workers, sorted; raises ``WorkerLostError`` if there are none."""
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    if not workers:
        from ._setup import WorkerLostError
        raise WorkerLostError("the Dask cluster has no workers; no model is returned")
    return workers


def with_recovery(client, attempt, recover, max_retries, what, stats, n_workers):
    """``attempt()``; after losing workers: wait for ``n_workers`` (30 s at most, then go on
    with those alive), ``recover()`` and try again, ``max_retries`` times at most.

    Raises
    ------
    WorkerLostError
        When every attempt failed; other exceptions propagate unchanged.
    """
    for k in range(max_retries + 1):
        try:
            return attempt()
        except Exception as exc:       # noqa: BLE001 - any failure of the cluster
            if not _is_cluster_failure(exc):
                raise
            if k == max_retries:
                from ._setup import WorkerLostError
                raise WorkerLostError(f"{what} failed {k + 1} times (last error: {type(exc).__name__}: "
                                      f"{exc}); no model is returned") from exc
            stats["recoveries"] += 1
            try:
                client.wait_for_workers(n_workers, timeout=30)
            except TimeoutError:
                pass
            recover()


def _is_cluster_failure(exc):
    """Errors that mean lost workers or data, not a bug in the computation."""
    import concurrent.futures

    from distributed import KilledWorker
    from distributed.client import FutureCancelledError
    if isinstance(exc, KeyError):    # a scatter to a worker that the scheduler has just removed
        return str(exc.args[0] if exc.args else "").startswith(("tcp://", "tls://", "inproc://", "ucx://"))
    # CommClosedError is an OSError
    return isinstance(exc, (KilledWorker, FutureCancelledError, concurrent.futures.CancelledError, OSError,
                            TimeoutError))
