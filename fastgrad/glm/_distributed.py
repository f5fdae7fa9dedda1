"""The GLM fit on a Dask cluster: the solvers of :func:`fastgrad.glm.fit` on the client,
the objective map-reduced over row partitions by :class:`fastgrad.dask._glm.DaskGLMProblem`."""
import numpy as np

__all__ = ["fit_glm"]


def _resolve_solver(solver, lam, l1_ratio):
    from .._validation import check_choice
    from ._model import SOLVERS
    solver = check_choice(solver, "solver", SOLVERS)
    from ..dask._glm import DASK_SOLVERS
    if solver not in DASK_SOLVERS:
        raise ValueError(
            f"solver={solver!r} needs the whole data set in memory and is not available for "
            f"dask arrays; use one of {DASK_SOLVERS[1:]} (solver='auto' picks 'fista' with an "
            "L1 penalty and 'lbfgs' otherwise)")
    if solver == "auto":
        solver = "fista" if lam > 0 and l1_ratio > 0 else "lbfgs"
    return solver


def fit_glm(X, y, *, loss="squared", lam=0.0, l1_ratio=0.0, fit_intercept=True, solver="auto",
            sample_weight=None, max_iter=None, tol=1e-8, random_state=None, verbose=False,
            callback=None, warm_start=None, solver_options=None, client=None):
    """:func:`fastgrad.glm.fit` on a dask array ``X`` (row chunks), on a dask cluster.

    Parameters are those of :func:`fastgrad.glm.fit`, plus ``client`` (default:
    the current ``distributed`` client). ``y`` and ``sample_weight`` may be
    dask arrays with ``X``'s row chunks or NumPy arrays. Supported solvers:
    ``"fista"``, ``"ista"``, ``"lbfgs"``, ``"gd"``, ``"momentum"``;
    ``"auto"`` is ``"fista"`` with an L1 part and ``"lbfgs"`` otherwise.
    Every iteration sends only ``(coef, intercept)`` to the workers and gets
    back the summed loss and gradient.

    Returns
    -------
    fastgrad.glm.GLMResult
        ``info`` holds ``n_partitions``, ``map_reduce_calls`` and the client's
        ``bytes_out`` / ``bytes_in`` over the fit.
    """
    from ..dask._glm import DaskGLMProblem, prepare, weight_sum
    from ..dask._objective import align_rows, map_reduce, persist_partitions, release
    from ..dask._setup import check_client, get_client
    from .._validation import check_choice, check_scalar
    from . import _model as G
    client = get_client(client)
    loss = check_choice(loss, "loss", G._LOSSES)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept must be a bool, got {type(fit_intercept).__name__}")
    lam = check_scalar(lam, "lam", lo=0.0)
    l1_ratio = check_scalar(l1_ratio, "l1_ratio", lo=0.0, hi=1.0)
    solver = _resolve_solver(solver, lam, l1_ratio)
    workers = check_client(client)
    X, other = align_rows(X, n_blocks=2 * len(workers), y=y, sample_weight=sample_weight)
    if other["y"] is None:
        raise ValueError("y is required")
    n, p = X.shape
    lam, l1_ratio, solver, max_iter, tol = G._check_params(lam, l1_ratio, solver, max_iter, tol,
                                                           p, n)
    coef0, c0 = G._initial_point(warm_start, p, bool(fit_intercept))
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    parts = persist_partitions(client, prepare, X, other["y"], other["sample_weight"],
                               logistic=loss == "logistic")
    try:
        total = map_reduce(client, parts, weight_sum)
        if not total > 0:
            raise ValueError("sample_weight must have a positive sum")
        prob = DaskGLMProblem(client, parts, loss, bool(fit_intercept), n, p, total)
        opts = dict(solver_options or {})
        opts["presolve"] = False  # the sub-sample warm start would need rows on the client
        res = G._solve(prob, lam, l1_ratio, solver, max_iter, tol, coef0, c0, random_state,
                       verbose, callback, opts)
    finally:
        release(client, parts)
    res.info.update(n_partitions=len(parts), map_reduce_calls=prob.stats.get("calls", 0),
                    bytes_out=prob.stats.get("bytes_out", 0),
                    bytes_in=prob.stats.get("bytes_in", 0))
    return res
