"""Partitioned objectives: persist row blocks on the workers, map a kernel, tree-reduce.

This is the one place where fastgrad talks to the cluster during a fit; the
model front-ends (glm, multinomial, mf, hlsm) supply two small functions:

- ``prepare(*blocks, **kwargs) -> part`` turns the row blocks of the input
  arrays into a kernel-ready partition (validated, contiguous float64, ...);
  it runs ONCE per block, on the worker (:func:`persist_partitions`);
- ``func(part, *args) -> result`` evaluates one partition's share of the
  objective (loss, gradient, Hessian blocks) at the broadcast parameters
  ``args``; the shares are summed over partitions (:func:`map_reduce`).

The data never leave the workers: each iteration only ``args`` go out and one
reduced result comes back (plus the partial results that the tree reduction
moves between workers). The generic solvers then run unchanged on the client.

Recovery: the persisted partitions are futures whose task graph the scheduler
keeps, so a partition lost with its worker is recomputed from the input
arrays' graph (deterministic for ``da.random`` with a seed, ``da.from_array``,
files, ...) and the objective comes out the same. If the scheduler gives up,
:class:`fastgrad.dask.WorkerLostError` is raised -- never a partial sum.
"""
import pickle
import threading

import numpy as np

from ._setup import WorkerLostError

__all__ = ["persist_partitions", "map_reduce", "release", "row_chunks", "tree_sum"]

# Numba's workqueue layer must not be entered from two threads at once: every
# fastgrad task on a worker runs its kernels under this per-process lock (it is
# never contended with one Dask thread per worker, the recommended set-up).
_KERNEL_LOCK = threading.Lock()

# ndarray arguments larger than this (bytes, times the number of tasks) are
# scattered to every worker once instead of travelling with each task
_INLINE_BYTES = 1 << 16


def row_chunks(name, arr, chunks=None):
    """Check a dask array's row chunking; 2-D arrays get one column chunk (lazily).

    Parameters
    ----------
    name : str
        Argument name for error messages.
    arr : dask.array.Array
    chunks : tuple of int, optional
        Row chunks that ``arr`` must have (those of ``X``).

    Returns
    -------
    dask.array.Array
    """
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1- or 2-dimensional, got {arr.ndim} dimensions")
    if any(np.isnan(c) for c in arr.chunks[0]):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() "
                         "first")
    if chunks is not None and tuple(arr.chunks[0]) != tuple(chunks):
        if arr.shape[0] != sum(chunks):
            raise ValueError(f"inconsistent lengths: X has {sum(chunks)} rows, {name} has "
                             f"{arr.shape[0]}")
        raise ValueError(
            f"{name} must be chunked along rows like X: X has row chunks {tuple(chunks)[:6]}"
            f"{'...' if len(chunks) > 6 else ''}, {name} has {tuple(arr.chunks[0])[:6]}"
            f"{'...' if len(arr.chunks[0]) > 6 else ''}; use {name}.rechunk({{0: X.chunks[0]}})")
    if arr.ndim == 2 and len(arr.chunks[1]) > 1:
        arr = arr.rechunk({1: -1})
    return arr


def persist_partitions(client, prepare, *arrays, **kwargs):
    """Build one kernel-ready partition per row block, held on the workers.

    Parameters
    ----------
    client : distributed.Client
    prepare : callable
        ``prepare(*blocks, **kwargs) -> part``, importable (module level). It
        receives the i-th row block (a NumPy array) of every array in
        ``arrays`` (None where the array is None) and runs on a worker.
    *arrays : dask.array.Array or None
        Arrays with identical row chunks (checked by :func:`row_chunks`).
    **kwargs
        Small constants passed to every ``prepare`` call.

    Returns
    -------
    list of distributed.Future
        One per row block, in row order. Release them with :func:`release`.
    """
    import dask
    present = [a for a in arrays if a is not None]
    nblocks = len(present[0].chunks[0])
    blocks = [None if a is None else a.to_delayed().reshape(nblocks, -1)[:, 0] for a in arrays]
    tasks = [dask.delayed(prepare, pure=False)(*[None if b is None else b[i] for b in blocks],
                                               **kwargs)
             for i in range(nblocks)]
    return client.compute(tasks)


def release(client, parts):
    """Drop persisted partitions from the workers' memory."""
    for f in parts:  # (client.cancel trips a scheduler assertion on erred futures)
        try:
            f.release()
        except Exception:  # pragma: no cover - the cluster may be gone already
            pass


def tree_sum(*results):
    """Element-wise sum of results: floats, arrays or (nested) tuples of them."""
    first = results[0]
    if isinstance(first, tuple):
        return tuple(tree_sum(*vals) for vals in zip(*results))
    total = first
    for r in results[1:]:
        total = total + r
    return total


def _locked(func, part, *args):
    with _KERNEL_LOCK:
        return func(part, *args)


def _nbytes(obj):
    return len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def map_reduce(client, parts, func, *args, combine=tree_sum, fan_in=4, stats=None):
    """``combine(func(part, *args) for part in parts)``, by a tree reduction on the cluster.

    Parameters
    ----------
    client : distributed.Client
    parts : list of distributed.Future
        Partitions from :func:`persist_partitions`.
    func : callable
        ``func(part, *args) -> result``, importable (module level). It runs on
        the worker that holds ``part``, under a per-process lock (see
        :mod:`fastgrad.dask._setup`), and should return the partition's
        share of a SUM (e.g. a loss already scaled by the global ``1/n``)
        so that shares add up to the full-data value.
    *args
        Broadcast arguments (parameter vectors, scalars). Large arrays are
        scattered to all workers once per call instead of with each task.
    combine : callable, default=:func:`tree_sum`
        ``combine(*results) -> result``, associative (sum, max, set union);
        applied to groups of up to ``fan_in`` results in a fixed order, so the
        result does not depend on scheduling.
    fan_in : int, default=4
    stats : dict, optional
        Accumulates ``"calls"``, ``"bytes_out"`` (pickled arguments sent by
        the client) and ``"bytes_in"`` (pickled reduced result received).

    Returns
    -------
    The combined result (gathered to the client).

    Raises
    ------
    WorkerLostError
        If the cluster could not recover from lost workers. Exceptions raised
        by ``func`` (e.g. validation errors from ``prepare``) propagate as is.
    """
    from concurrent.futures import CancelledError  # (scattered data lost with all holders)

    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    n_tasks = len(parts)
    arr_bytes = sum(a.nbytes for a in args if isinstance(a, np.ndarray))
    bytes_out = 0
    if arr_bytes * n_tasks > _INLINE_BYTES:
        n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
        sent = [client.scatter(a, broadcast=True, hash=False) if isinstance(a, np.ndarray)
                else a for a in args]
        bytes_out += arr_bytes * n_workers
        bytes_out += _nbytes(tuple(a for a in args if not isinstance(a, np.ndarray))) * n_tasks
    else:
        sent = args
        bytes_out += _nbytes(args) * n_tasks
    try:
        # run each share where its partition lives; the restriction is loose so that a
        # partition recomputed elsewhere after a worker loss is still found (with
        # work stealing off, as in local_cluster, tasks then never move data)
        holders = client.who_has(parts)
        futs = []
        for part in parts:
            where = list(holders.get(part.key, ()))
            pin = dict(workers=where, allow_other_workers=True) if where else {}
            futs.append(client.submit(_locked, func, part, *sent, pure=False, **pin))
        while len(futs) > 1:
            futs = [client.submit(combine, *futs[i:i + fan_in], pure=False) if
                    len(futs[i:i + fan_in]) > 1 else futs[i]
                    for i in range(0, len(futs), fan_in)]
        result = futs[0].result()
    except (KilledWorker, CommClosedError, CancelledError, OSError) as exc:
        raise WorkerLostError(
            f"the dask cluster lost workers and could not recover ({type(exc).__name__}: {exc});"
            " no model was returned") from exc
    if stats is not None:
        stats["calls"] = stats.get("calls", 0) + 1
        stats["bytes_out"] = stats.get("bytes_out", 0) + bytes_out
        stats["bytes_in"] = stats.get("bytes_in", 0) + _nbytes(result)
    return result


def align_rows(X, *, n_blocks=None, **others):
    """Check ``X`` (2-D dask array) and chunk the other row arrays like it.

    A dense NumPy ``X`` is first split into ``n_blocks`` row blocks (sent to
    the workers once, in the graph).

    ``others`` maps argument names to 1-D arrays (dask or NumPy) or None. NumPy
    arrays are wrapped with ``X``'s row chunks (they travel to the workers once,
    in the graph); dask arrays must already have ``X``'s row chunks.

    Returns
    -------
    X, dict of the others (same keys)
    """
    import dask.array as da
    if not isinstance(X, da.Array):
        if type(X).__module__.split(".")[0] == "scipy":
            raise TypeError("a sparse X cannot be fitted on a dask cluster: pass a dense "
                            "NumPy or dask array")
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise TypeError(f"X must be a numeric NumPy or dask array, got dtype {X.dtype}")
        if X.ndim == 2:
            X = da.from_array(X, chunks=(-(-X.shape[0] // max(1, n_blocks or 1)), -1))
    if X.ndim != 2:
        raise ValueError(f"X must be 2-dimensional, got shape {X.shape}")
    X = row_chunks("X", X)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X is empty (shape {X.shape})")
    out = {}
    for name, a in others.items():
        if a is None:
            out[name] = None
            continue
        if not isinstance(a, da.Array):
            a = np.asarray(a)
            if a.ndim == 2 and a.shape[1] == 1:
                a = a.ravel()
            if a.ndim != 1 or a.shape[0] != X.shape[0]:
                raise ValueError(f"inconsistent lengths: X has {X.shape[0]} rows, {name} has "
                                 f"shape {a.shape}")
            a = da.from_array(a, chunks=(X.chunks[0],))
        elif a.ndim != 1:
            raise ValueError(f"{name} must be 1-dimensional, got shape {a.shape}")
        out[name] = row_chunks(name, a, X.chunks[0])
    return X, out
