"""The multinomial fit on a Dask cluster: Newton or L-BFGS on the client, the objective
map-reduced by :class:`fastgrad.dask._multinomial.DaskMultinomialProblem`; ``prepare`` builds
each partition's local problem on its worker."""
import numpy as np

__all__ = ["fit_multinomial"]


def _prepare(X, y, w, *, classes, fit_intercept):
    from . import _model as M
    design = M._Design(X, "X")
    y = M._check_y(y)
    _, codes = M._encode(y, classes)
    if w is None:
        w = np.ones(design.n)
    else:
        w = np.ascontiguousarray(w, dtype=np.float64)
        if not np.all(np.isfinite(w)):
            raise ValueError("sample_weight contains NaN or infinite values")
        if np.any(w < 0):
            raise ValueError("sample_weight must be non-negative")
    part = M._Problem(design, codes, w, len(classes), 0.0, fit_intercept)
    part.wsum = float(w.sum())
    return part


def fit_multinomial(X, y, *, lam=0.0, fit_intercept=True, solver="newton", sample_weight=None,
                    max_iter=None, tol=None, gtol=None, check_separation=True, verbose=False,
                    callback=None, warm_start=None, client=None):
    """:func:`fastgrad.multinomial.fit` on a dask array ``X`` (row chunks), on a dask cluster.

    Parameters are those of :func:`fastgrad.multinomial.fit` plus ``client``
    (default: the current ``distributed`` client). ``y`` and
    ``sample_weight`` may be dask arrays with ``X``'s row chunks or NumPy
    arrays. Newton sums the partitions' ``(K-1)(p+1)`` square Hessians, so
    each Newton iteration moves ``O((K-1)^2 q^2)`` numbers per partition;
    L-BFGS moves only gradients. ``check_separation`` is not available on a
    cluster (it needs all rows at once): use ``lam > 0`` when the classes may
    be separable.

    Returns
    -------
    fastgrad.multinomial.MultinomialResult
    """
    from ..dask._multinomial import DaskMultinomialProblem, class_weights, classes_of
    from ..dask._objective import align_rows, map_reduce, persist_partitions, release
    from ..dask._setup import check_client, get_client
    from .._validation import as_float_array, check_choice, check_scalar
    from ..solvers import newton
    from . import _model as M
    client = get_client(client)
    lam = check_scalar(lam, "lam", lo=0.0)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept must be a bool, got {type(fit_intercept).__name__}")
    solver = check_choice(solver, "solver", ("newton", "lbfgs", "auto"))
    workers = check_client(client)
    X, other = align_rows(X, n_blocks=2 * len(workers), y=y, sample_weight=sample_weight)
    if other["y"] is None:
        raise ValueError("y is required")
    n, p = X.shape
    classes = classes_of(other["y"])
    if len(classes) < 2:
        raise ValueError(f"y must contain at least two classes, got {len(classes)}")
    q = p + (1 if fit_intercept else 0)
    if solver == "auto":   # as the local fit
        solver = "lbfgs+newton" if (len(classes) - 1) * q <= M._NEWTON_MAX_DIM else "lbfgs"
    newtonish = solver != "lbfgs"
    max_iter = check_scalar(100 if max_iter is None and solver == "newton" else
                            1000 if max_iter is None else max_iter, "max_iter", kind="int", lo=0)
    tol = check_scalar((1e-10 if newtonish else 1e-12) if tol is None else tol, "tol",
                       lo=0.0)
    gtol = check_scalar((1e-12 if newtonish else 1e-7) if gtol is None else gtol, "gtol",
                        lo=0.0)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    parts = persist_partitions(client, _prepare, X, other["y"], other["sample_weight"],
                               classes=classes, fit_intercept=bool(fit_intercept))
    try:
        prob = DaskMultinomialProblem(client, parts, map_reduce(client, parts, class_weights), lam, p,
                            bool(fit_intercept))
        if not prob.total > 0:
            raise ValueError("sample_weight must not be all zero (the sum of the weights is "
                             "zero)")
        if warm_start is None:
            theta0 = prob.start()
        else:
            c0, i0 = warm_start
            c0 = as_float_array(c0, "warm_start coef", ndim=2)
            i0 = as_float_array(i0, "warm_start intercept", ndim=1)
            if c0.shape != (prob.km1, p) or i0.shape != (prob.km1,):
                raise ValueError(f"warm_start must have shapes ({prob.km1}, {p}) and "
                                 f"({prob.km1},), got {c0.shape} and {i0.shape}")
            theta0 = (np.column_stack([c0, i0]) if fit_intercept else c0).ravel()

        cb = None
        if callback is not None:
            def cb(it, theta):
                coef, intercept = prob.split(theta)
                return bool(callback(it, {"coef": coef, "intercept": intercept}))

        name = f"fastgrad.dask multinomial (solver={solver!r})"
        if solver == "newton":
            res = newton(prob.fun, theta0, hess=prob.hess, max_iter=max_iter, tol=tol,
                         gtol=gtol, callback=cb, verbose=verbose, name=name)
        else:
            # the local fit's preconditioner, from the same strided rows (sent to the client)
            step = M._precond_step(n, q)
            Xs = np.asarray(X[::step].compute(), dtype=np.float64)
            ws = (np.ones(Xs.shape[0]) if other["sample_weight"] is None else
                  np.asarray(other["sample_weight"][::step].compute(), dtype=np.float64))
            pre = M._KroneckerPreconditioner(Xs, ws, prob.class_weights, lam, bool(fit_intercept))
            if solver == "lbfgs":
                res = M._lbfgs_preconditioned(prob.fun, pre, theta0, cb, max_iter=max_iter,
                                              tol=tol, gtol=gtol, verbose=verbose, name=name)
            else:
                res = M._lbfgs_then_newton(prob.fun, prob.hess, pre, theta0, cb,
                                           max_iter=max_iter, tol=tol, gtol=gtol,
                                           verbose=verbose, name=name)
    finally:
        release(client, parts)
    coef, intercept = prob.split(res.x)
    loss = float(res.objective) - 0.5 * lam * float(np.sum(coef * coef))
    info = dict(res.info, separation_check=None, n_partitions=len(parts),
                map_reduce_calls=prob.stats.get("calls", 0),
                bytes_out=prob.stats.get("bytes_out", 0), bytes_in=prob.stats.get("bytes_in", 0))
    return M.MultinomialResult(coef=coef, intercept=intercept, classes=classes, lam=lam,
                               fit_intercept=bool(fit_intercept), objective=float(res.objective),
                               loss=loss, n_iter=res.n_iter, converged=bool(res.converged),
                               history=res.history, solver=solver, separated=False,
                               message=res.message, info=info)
