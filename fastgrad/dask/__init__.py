"""Scale-out on Dask (``dask.distributed``): the same fits on a cluster.

Optional: install with ``pip install fastgrad[dask]``. ``import fastgrad`` never
imports dask; this subpackage does.

Design
------
Data (dask arrays of row chunks) are persisted on the workers once; every solver
iteration the client sends the small parameter vector, each worker evaluates the
fastgrad Numba kernels on the partitions it holds, and the partial losses,
gradients (and Hessian blocks) are summed by a tree reduction
(:func:`fastgrad.dask.map_reduce`). The generic solvers in
:mod:`fastgrad.solvers` then run unchanged on the client. Only parameters and
gradients cross the network, never the data.

Threading: Numba's default ``workqueue`` threading layer must not be entered from
several threads at once. Run workers as processes with one Dask thread each,
``LocalCluster(processes=True, threads_per_worker=1)``; every worker process then
keeps its own Numba thread pool. :func:`check_client` verifies this and
:func:`local_cluster` starts such a cluster.
"""
try:
    import dask  # noqa: F401
    import dask.array  # noqa: F401
    import distributed  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised with dask absent
    raise ImportError(
        "fastgrad.dask needs dask[array] and distributed; install them with "
        "`pip install fastgrad[dask]`") from exc

from ._setup import WorkerLostError, check_client, get_client, local_cluster

__all__ = [
    # core (glm / multinomial)
    "WorkerLostError",
    "check_client",
    "get_client",
    "local_cluster",
    "fit_glm",
    "fit_multinomial",
    "map_reduce",
    "persist_partitions",
    # mf / hlsm (appended by their module owner)
    "fit_mf",
    "fit_hlsm",
]


def __getattr__(name):
    # The model entry points import the model front-ends (and numba) only when used.
    # The entry points are the families' distributed fits (fastgrad.<family>._distributed),
    # imported only when used; the back-ends here never import a model front-end.
    if name in ("fit_glm", "fit_multinomial", "fit_mf", "fit_hlsm"):
        from importlib import import_module
        return getattr(import_module(f"fastgrad.{name[4:]}._distributed"), name)
    if name in ("map_reduce", "persist_partitions"):
        from . import _objective
        return getattr(_objective, name)
    raise AttributeError(f"module 'fastgrad.dask' has no attribute {name!r}")
