"""The GLM objective, its solvers and :func:`fit` / :func:`path`."""
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import (as_float_array, check_choice, check_consistent_length, check_finite,
                          check_scalar)
from .._threads import serial_blas
from .._warnings import ConvergenceWarning

__all__ = ["fit", "path", "GLMResult", "GLMPath", "objective", "loss_and_grad", "SOLVERS"]

SOLVERS = ("auto", "cd", "fista", "ista", "newton", "lbfgs", "gd", "momentum",
           "sgd", "adagrad", "adam")
_SMOOTH_ONLY = ("newton", "lbfgs", "gd", "momentum", "sgd", "adagrad", "adam")
_LOSSES = ("squared", "logistic")
_DEFAULT_MAX_ITER = {"cd": 1000, "fista": 10000, "ista": 10000, "newton": 100, "lbfgs": 1000,
                     "gd": 10000, "momentum": 10000, "sgd": 100, "adagrad": 100, "adam": 100}
_NEWTON_MAX_P = 1000
_PRESOLVE_MIN_N = 100_000
_COL_DOTS_SERIAL_FACTOR = 8


# ---------------------------------------------------------------------------
# result objects
# ---------------------------------------------------------------------------

@dataclass
class GLMResult:
    """A fitted linear or logistic regression.

    Attributes
    ----------
    coef : ndarray, shape (p,)
        Coefficients ``w``.
    intercept : float
        Intercept ``c`` (0.0 if ``fit_intercept=False``).
    objective : float
        Final objective value (DESIGN.md scaling).
    n_iter : int
        Iterations (outer iterations for ``"cd"``, epochs for stochastic solvers).
    converged : bool
        Whether the solver's stopping rule was met.
    history : ndarray
        Objective at the start and after each iteration (NaN where a
        stochastic solver has no full objective).
    solver : str
        The solver actually used (``"auto"`` resolved).
    loss : str
        ``"squared"`` or ``"logistic"``.
    lam, l1_ratio : float
        Penalty parameters.
    fit_intercept : bool
    message : str
        Why the solver stopped.
    info : dict
        Solver-specific extras.
    """

    coef: np.ndarray
    intercept: float
    objective: float
    n_iter: int
    converged: bool
    history: np.ndarray
    solver: str
    loss: str = "squared"
    lam: float = 0.0
    l1_ratio: float = 0.0
    fit_intercept: bool = True
    message: str = ""
    info: dict = field(default_factory=dict)

    def decision_function(self, X):
        """Linear predictor ``X @ coef + intercept``, shape (n,)."""
        X = _check_X(X, p=self.coef.shape[0])
        return np.asarray(X @ self.coef).ravel() + self.intercept

    def predict_proba(self, X):
        """``P(y = 1 | x) = sigmoid(x.w + c)`` (logistic loss only), shape (n,)."""
        if self.loss != "logistic":
            raise ValueError("predict_proba is only defined for loss='logistic'")
        t = self.decision_function(X)
        # overflow-safe sigmoid
        e = np.exp(-np.abs(t))
        return np.where(t >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def predict(self, X):
        """Predictions: ``X @ coef + intercept`` (squared) or 0/1 labels (logistic)."""
        t = self.decision_function(X)
        if self.loss == "logistic":
            return (t > 0).astype(np.int64)
        return t


@dataclass
class GLMPath:
    """A regularisation path (from :func:`path`).

    Attributes
    ----------
    lams : ndarray, shape (k,)
        Decreasing penalty values.
    coefs : ndarray, shape (k, p)
        Coefficients for each ``lam``.
    intercepts : ndarray, shape (k,)
    objectives : ndarray, shape (k,)
    n_iters : ndarray of int, shape (k,)
    converged : ndarray of bool, shape (k,)
    solver, loss : str
    l1_ratio : float
    fit_intercept : bool
    """

    lams: np.ndarray
    coefs: np.ndarray
    intercepts: np.ndarray
    objectives: np.ndarray
    n_iters: np.ndarray
    converged: np.ndarray
    solver: str
    loss: str
    l1_ratio: float
    fit_intercept: bool

    def __getitem__(self, k):
        """The k-th fit as a :class:`GLMResult` (history holds its final objective)."""
        return GLMResult(coef=self.coefs[k].copy(), intercept=float(self.intercepts[k]),
                         objective=float(self.objectives[k]), n_iter=int(self.n_iters[k]),
                         converged=bool(self.converged[k]),
                         history=np.array([self.objectives[k]]), solver=self.solver,
                         loss=self.loss, lam=float(self.lams[k]), l1_ratio=self.l1_ratio,
                         fit_intercept=self.fit_intercept)

    def __len__(self):
        return self.lams.shape[0]


# ---------------------------------------------------------------------------
# validation and the prepared problem
# ---------------------------------------------------------------------------

def _is_sparse(X):
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover
        return False
    return sp.issparse(X)


def _check_X(X, p=None):
    if _is_sparse(X):
        X = X.tocsr()
        if X.dtype != np.float64:
            X = X.astype(np.float64)
        if not X.has_canonical_format:
            X = X.copy()
            X.sum_duplicates()
        check_finite(X.data, "X")
    else:
        X = np.asarray(X)
        if X.dtype == np.float64 and X.ndim == 2 and X.flags.c_contiguous:
            # fast path: NaN/inf propagate into the sum (one read, no temporary);
            # only if it is not finite (NaN/inf, or overflow) run the full check
            if not np.isfinite(np.add.reduce(X, axis=None)):
                check_finite(X, "X")
        else:
            X = as_float_array(X, "X", ndim=2)
    if X.shape[0] == 0:
        raise ValueError("X is empty (0 samples)")
    if X.shape[1] == 0:
        raise ValueError("X has 0 features")
    if p is not None and X.shape[1] != p:
        raise ValueError(f"X has {X.shape[1]} features, but the model has {p}")
    return X


def _gram_rows(A):
    """``A.T @ A`` by a BLAS ``syrk`` on A's own memory layout (no copy)."""
    from scipy.linalg.blas import dsyrk
    if A.flags.c_contiguous:
        G = dsyrk(1.0, A.T, trans=0)  # A.T is Fortran-ordered: G = A.T @ A
    else:
        G = dsyrk(1.0, np.asfortranarray(A), trans=1)
    return np.triu(G) + np.triu(G, 1).T


class _dynamic_chunks:
    """Hand the kernels' row chunks to threads dynamically, four at a time.

    On a shared, loaded machine a thread that is descheduled then no longer
    holds up the whole pass. Results do not change: every chunk has its own
    accumulator and chunks are reduced in a fixed order.
    """

    def __enter__(self):
        import numba
        self.old = numba.get_parallel_chunksize()
        numba.set_parallel_chunksize(4)

    def __exit__(self, *exc):
        import numba
        numba.set_parallel_chunksize(self.old)
        return False


class _Problem:
    """Validated data plus lazily built layouts shared by every solve (and a path)."""

    def __init__(self, X, y, loss, fit_intercept, sample_weight):
        from ..kernels import glm as K
        self.K = K
        self.loss = check_choice(loss, "loss", _LOSSES)
        self.code = K.LOSS_SQUARED if self.loss == "squared" else K.LOSS_LOGISTIC
        if not isinstance(fit_intercept, (bool, np.bool_)):
            raise TypeError(f"fit_intercept must be a bool, got {type(fit_intercept).__name__}")
        self.fit_intercept = bool(fit_intercept)
        X = _check_X(X)
        self.sparse = _is_sparse(X)
        y = as_float_array(np.asarray(y).astype(np.float64) if np.asarray(y).dtype == bool else y,
                           "y", ndim=1)
        check_consistent_length(X=X if not self.sparse else np.empty(X.shape[0]), y=y)
        if self.loss == "logistic" and not np.all((y == 0.0) | (y == 1.0)):
            raise ValueError("y must contain only 0 and 1 for loss='logistic'")
        n, p = X.shape
        if sample_weight is None:
            sw = np.full(n, 1.0 / n)
            self.weighted = False
        else:
            sw = as_float_array(sample_weight, "sample_weight", ndim=1)
            check_consistent_length(X=np.empty(n), sample_weight=sw)
            if np.any(sw < 0):
                raise ValueError("sample_weight must be non-negative")
            tot = float(sw.sum())
            if not tot > 0:
                raise ValueError("sample_weight must have a positive sum")
            sw = sw / tot
            self.weighted = True
        self.X, self.y, self.sw, self.n, self.p = X, y, sw, n, p
        self._csc = None
        self._fortran = None
        self._gram = None

    # --- layouts -----------------------------------------------------------
    @property
    def csc(self):
        if self._csc is None:
            self._csc = self.X.tocsc()
            self._csc.sort_indices()
        return self._csc

    @property
    def fortran(self):
        if self._fortran is None:
            self._fortran = np.asfortranarray(self.X)
        return self._fortran

    def gram(self):
        """Weighted, centred (if intercept) ``G = X'SX``, ``b = X'Sy``, means and var(y)."""
        if self._gram is None:
            X, sw, y = self.X, self.sw, self.y
            if self.sparse:
                G = np.asarray((X.T @ X.multiply(sw[:, None]).tocsr()).toarray())
                b = np.asarray(X.T @ (sw * y)).ravel()
                xbar = np.asarray(X.T @ sw).ravel()
            else:
                if self.weighted:
                    G = _gram_rows(X * np.sqrt(sw)[:, None])
                else:
                    G = _gram_rows(X) * (1.0 / self.n)
                b = X.T @ (sw * y)
                xbar = X.T @ sw
            if self.fit_intercept:
                ybar = float(sw @ y)
                G = G - np.outer(xbar, xbar)
                b = b - xbar * ybar
            else:
                ybar = 0.0
                xbar = np.zeros(self.p)
            G = 0.5 * (G + G.T)
            yvar = float(sw @ (y - ybar) ** 2)
            self._gram = (np.ascontiguousarray(G), b, xbar, ybar, yvar)
        return self._gram

    # --- screening helpers ---------------------------------------------------
    def col_norms(self):
        """Euclidean norms of the columns of X."""
        if getattr(self, "_norms", None) is None:
            if self.sparse:
                A = self.csc
                self._norms = np.sqrt(np.asarray(A.multiply(A).sum(axis=0)).ravel())
            else:
                X = self.fortran
                self._norms = np.sqrt(np.einsum("ij,ij->j", X, X))
        return self._norms

    def col_dots(self, cols, r):
        """``X[:, cols]' r`` (all columns if ``cols`` is None), column by column."""
        if cols is None:
            cols = np.arange(self.p, dtype=np.int64)
        out = np.empty(cols.shape[0])
        from .._threads import threads_for
        nnz = self.csc.nnz if self.sparse else self.n
        # memory-bound and short: a parallel launch pays off only on large passes (a
        # descheduled thread on a loaded machine costs a whole time slice, ~4 ms)
        work = nnz * cols.shape[0] // (self.p if self.sparse else 1)
        with _dynamic_chunks(), threads_for(work // _COL_DOTS_SERIAL_FACTOR):
            if self.sparse:
                A = self.csc
                self.K.glm_col_dots_csc(A.data, A.indices, A.indptr, r, cols, out)
            else:
                self.K.glm_col_dots(self.fortran, r, cols, out)
        return out

    def residual(self, coef, c):
        """``t = Xw + c``, ``r = sw l'(t)`` and the curvatures ``sw l''(t)`` (logistic)
        from the non-zero coefficients only."""
        nz = np.flatnonzero(coef)
        if nz.size:
            A = self.csc[:, nz] if self.sparse else self.fortran[:, nz]
            t = np.asarray(A @ coef[nz]).ravel() + c
        else:
            t = np.full(self.n, float(c))
        if self.loss == "squared":
            return t, self.sw * (t - self.y), None
        s = 0.5 * (1.0 + np.tanh(0.5 * t))  # sigmoid without overflow
        return t, self.sw * (s - self.y), self.sw * (s * (1.0 - s))

    def loss_from_t(self, t):
        if self.loss == "squared":
            d = t - self.y
            return 0.5 * float(self.sw @ (d * d))
        return float(self.sw @ (np.logaddexp(0.0, t) - self.y * t))

    # --- smooth part -------------------------------------------------------
    def loss_grad(self, coef, c, grad, curv):
        K = self.K
        with _dynamic_chunks():
            if self.sparse:
                X = self.X
                return K.glm_loss_grad_csr(X.data, X.indices, X.indptr, self.y, self.sw, coef,
                                           c, self.code, grad, curv)
            return K.glm_loss_grad(self.X, self.y, self.sw, coef, c, self.code, grad, curv)

    def loss_value(self, coef, c):
        K = self.K
        with _dynamic_chunks():
            if self.sparse:
                X = self.X
                return K.glm_loss_csr(X.data, X.indices, X.indptr, self.y, self.sw, coef, c,
                                      self.code)
            return K.glm_loss(self.X, self.y, self.sw, coef, c, self.code)

    def null_loss(self):
        """Loss with ``w = 0`` and the best intercept: the scale of tolerances."""
        if getattr(self, "_null", None) is None:
            self._null = self._null_loss()
        return self._null

    def _null_loss(self):
        ybar = float(self.sw @ self.y) if self.fit_intercept else None
        if self.loss == "squared":
            m = ybar if ybar is not None else 0.0
            return 0.5 * float(self.sw @ (self.y - m) ** 2)
        if ybar is None:
            return math.log(2.0)
        if ybar <= 0.0 or ybar >= 1.0:
            return 0.0
        return -(ybar * math.log(ybar) + (1 - ybar) * math.log(1 - ybar))

    def lam_max(self, l1_ratio):
        """Smallest ``lam`` with an all-zero solution (``l1_ratio`` floored at 1e-3)."""
        sw, y = self.sw, self.y
        if self.fit_intercept:
            ybar = float(sw @ y)
            if self.loss == "squared":
                d = ybar - y
            else:
                d = ybar - y  # sigmoid(logit(ybar)) - y
        else:
            d = -y if self.loss == "squared" else 0.5 - y
        g = np.asarray(self.X.T @ (sw * d)).ravel()
        return float(np.max(np.abs(g))) / max(l1_ratio, 1e-3)


def _penalty(coef, lam, l1_ratio):
    return lam * (l1_ratio * float(np.abs(coef).sum()) + 0.5 * (1.0 - l1_ratio) * float(coef @ coef))


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------

def loss_and_grad(X, y, coef, intercept=0.0, *, loss="squared", sample_weight=None):
    """Mean loss (weighted as in DESIGN.md) and its gradient, in one pass over ``X``.

    Returns
    -------
    value : float
    grad_coef : ndarray, shape (p,)
    grad_intercept : float
    """
    prob = _Problem(X, y, loss, True, sample_weight)
    coef = as_float_array(coef, "coef", ndim=1)
    if coef.shape[0] != prob.p:
        raise ValueError(f"coef has length {coef.shape[0]}, X has {prob.p} features")
    intercept = check_scalar(intercept, "intercept")
    grad = np.empty(prob.p)
    val, gc = prob.loss_grad(coef, intercept, grad, np.empty(0))
    return float(val), grad, float(gc)


def objective(X, y, coef, intercept=0.0, *, loss="squared", lam=0.0, l1_ratio=0.0,
              sample_weight=None):
    """The objective of DESIGN.md at ``(coef, intercept)``."""
    lam = check_scalar(lam, "lam", lo=0.0)
    l1_ratio = check_scalar(l1_ratio, "l1_ratio", lo=0.0, hi=1.0)
    val, _, _ = loss_and_grad(X, y, coef, intercept, loss=loss, sample_weight=sample_weight)
    return val + _penalty(np.asarray(coef, dtype=np.float64), lam, l1_ratio)


def _check_params(lam, l1_ratio, solver, max_iter, tol, p, n):
    lam = check_scalar(lam, "lam", lo=0.0)
    l1_ratio = check_scalar(l1_ratio, "l1_ratio", lo=0.0, hi=1.0)
    solver = check_choice(solver, "solver", SOLVERS)
    if solver == "auto":
        if lam > 0 and l1_ratio > 0:
            solver = "cd"
        elif p <= _NEWTON_MAX_P and n <= 2 * max(20000, 100 * p):
            solver = "newton"  # exact Hessians are cheap next to the passes over X
        else:
            solver = "lbfgs"
    if solver in _SMOOTH_ONLY and lam > 0 and l1_ratio > 0:
        raise ValueError(
            f"solver={solver!r} needs a smooth objective and cannot handle an L1 penalty "
            f"(lam={lam}, l1_ratio={l1_ratio}); use solver='cd', 'fista' or 'ista'")
    if max_iter is None:
        max_iter = _DEFAULT_MAX_ITER[solver]
    max_iter = check_scalar(max_iter, "max_iter", kind="int", lo=1)
    tol = check_scalar(tol, "tol", lo=0.0)
    return lam, l1_ratio, solver, max_iter, tol


def _initial_point(warm_start, p, fit_intercept):
    if warm_start is None:
        return np.zeros(p), 0.0
    if isinstance(warm_start, (GLMResult,)):
        coef, c = warm_start.coef, warm_start.intercept
    elif isinstance(warm_start, tuple) and len(warm_start) == 2:
        coef, c = warm_start
    else:
        coef, c = warm_start, 0.0
    coef = as_float_array(coef, "warm_start coef", ndim=1, copy=True)
    if coef.shape[0] != p:
        raise ValueError(f"warm_start has {coef.shape[0]} coefficients, X has {p} features")
    c = check_scalar(c, "warm_start intercept") if fit_intercept else 0.0
    return coef, c


def fit(X, y, *, loss="squared", lam=0.0, l1_ratio=0.0, fit_intercept=True, solver="auto",
        sample_weight=None, max_iter=None, tol=1e-8, random_state=None, verbose=False,
        callback=None, warm_start=None, solver_options=None, client=None):
    """Fit a regularised linear (``loss="squared"``) or logistic regression.

    Parameters
    ----------
    X : array_like, shape (n, p), or scipy.sparse matrix, or dask array
        Design matrix (sparse input is used as CSR; CSC is built for ``"cd"``).
        A dask array (row chunks) is fitted on the current ``dask.distributed``
        client by :func:`fastgrad.dask.fit_glm`: same objective, solvers
        ``"fista"``, ``"ista"``, ``"lbfgs"``, ``"gd"``, ``"momentum"``
        (``"auto"``: FISTA with an L1 part, L-BFGS otherwise).
    y : array_like, shape (n,)
        Targets; ``{0, 1}`` (or bool) for the logistic loss.
    loss : {"squared", "logistic"}, default="squared"
    lam : float, default=0.0
        Penalty strength ``>= 0``.
    l1_ratio : float, default=0.0
        Elastic-net mix in ``[0, 1]``: 1 is the lasso, 0 is ridge.
    fit_intercept : bool, default=True
        Fit an unpenalised intercept.
    solver : str, default="auto"
        One of :data:`SOLVERS` (see the module docstring). A smooth-only
        solver with ``lam > 0`` and ``l1_ratio > 0`` raises ``ValueError``.
    sample_weight : array_like, shape (n,), optional
        Non-negative weights (normalised internally to sum to ``n``).
    max_iter : int, optional
        Iteration budget (epochs for stochastic solvers); solver-specific default.
    tol : float, default=1e-8
        Stopping tolerance. For ``"cd"``: the largest curvature-weighted
        coordinate change ``sqrt(H_j) |delta_j|`` of a full sweep relative to
        ``sqrt(null loss)`` (the loss at ``w = 0``); for the
        other solvers: the relative objective change (``"newton"``: half the
        squared Newton decrement relative to the objective). The stochastic
        solvers run ``max_iter`` epochs unless ``solver_options`` has a ``tol``.
    random_state : None, int or numpy.random.Generator
        Shuffling of the stochastic solvers.
    verbose : bool, default=False
        Show progress.
    callback : callable, optional
        ``callback(iteration, state) -> bool`` with ``state`` a dict holding
        ``coef`` and ``intercept``; returning True stops.
    warm_start : GLMResult, (coef, intercept) or coef array, optional
        Starting point.
    solver_options : dict, optional
        Extra keyword arguments for the solver (e.g. ``learning_rate``,
        ``batch_size`` for the stochastic ones; ``momentum`` for ``"momentum"``).
    client : distributed.Client, optional
        Fit on this dask cluster (:func:`fastgrad.dask.fit_glm`); a NumPy ``X``
        is then sent to the workers once, in row blocks. A dask array ``X``
        uses the current client by default.

    Returns
    -------
    GLMResult

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import glm
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5)); y = X @ [1.0, 0, 0, -2.0, 0] + 0.1 * rng.normal(size=200)
    >>> res = glm.fit(X, y, lam=0.05, l1_ratio=1.0)
    >>> np.round(res.coef, 2)
    array([ 0.95,  0.  ,  0.  , -1.96,  0.  ])
    """
    if client is not None or type(X).__module__.split(".")[0] == "dask":  # on a cluster
        from ..dask import fit_glm  # the public distributed fit (needs the fastgrad[dask] extra)
        return fit_glm(X, y, loss=loss, lam=lam, l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                       solver=solver, sample_weight=sample_weight, max_iter=max_iter, tol=tol,
                       random_state=random_state, verbose=verbose, callback=callback,
                       warm_start=warm_start, solver_options=solver_options, client=client)
    prob = _Problem(X, y, loss, fit_intercept, sample_weight)
    lam, l1_ratio, solver, max_iter, tol = _check_params(lam, l1_ratio, solver, max_iter, tol,
                                                         prob.p, prob.n)
    coef0, c0 = _initial_point(warm_start, prob.p, prob.fit_intercept)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    with serial_blas():
        return _solve(prob, lam, l1_ratio, solver, max_iter, tol, coef0, c0, random_state,
                      verbose, callback, dict(solver_options or {}))


def path(X, y, *, loss="squared", l1_ratio=1.0, lams=None, n_lams=100, lam_min_ratio=None,
         fit_intercept=True, solver="auto", sample_weight=None, max_iter=None, tol=1e-8,
         verbose=False, solver_options=None):
    """Regularisation path on a decreasing grid of ``lam`` with warm starts (as glmnet).

    Parameters
    ----------
    X, y, loss, l1_ratio, fit_intercept, solver, sample_weight, max_iter, tol
        As in :func:`fit` (``l1_ratio`` defaults to 1, the lasso).
    lams : array_like, optional
        Penalty values (sorted decreasingly). Default: ``n_lams`` values
        log-spaced from ``lam_max`` (the smallest ``lam`` with all
        coefficients zero; for ``l1_ratio < 1e-3`` it is computed with 1e-3)
        down to ``lam_min_ratio * lam_max``.
    n_lams : int, default=100
    lam_min_ratio : float, optional
        Default ``1e-4`` if ``n > p`` else ``1e-2`` (glmnet's choice).
    verbose : bool, default=False
        Print one line per ``lam``.

    Returns
    -------
    GLMPath
    """
    prob = _Problem(X, y, loss, fit_intercept, sample_weight)
    l1c = check_scalar(l1_ratio, "l1_ratio", lo=0.0, hi=1.0)
    if lams is None:
        n_lams = check_scalar(n_lams, "n_lams", kind="int", lo=1)
        if lam_min_ratio is None:
            lam_min_ratio = 1e-4 if prob.n > prob.p else 1e-2
        lam_min_ratio = check_scalar(lam_min_ratio, "lam_min_ratio", lo=0.0, hi=1.0, lo_open=True)
        lmax = prob.lam_max(l1c)
        if lmax <= 0:
            lmax = 1.0
        lams = lmax * np.logspace(0.0, math.log10(lam_min_ratio), n_lams) if n_lams > 1 \
            else np.array([lmax])
    else:
        lams = as_float_array(lams, "lams", ndim=1)
        if lams.size == 0:
            raise ValueError("lams is empty")
        if np.any(lams < 0):
            raise ValueError("lams must be non-negative")
        lams = np.sort(lams)[::-1].copy()
    k = lams.shape[0]
    coefs = np.empty((k, prob.p))
    intercepts = np.empty(k)
    objectives = np.empty(k)
    n_iters = np.empty(k, dtype=np.int64)
    conv = np.empty(k, dtype=bool)
    opts = dict(solver_options or {})
    with serial_blas():
        _path_loop(prob, lams, l1c, solver, max_iter, tol, opts, verbose, coefs, intercepts,
                   objectives, n_iters, conv)
    used = _check_params(float(lams[-1]), l1c, solver, max_iter, tol, prob.p, prob.n)[2]
    return GLMPath(lams=lams, coefs=coefs, intercepts=intercepts, objectives=objectives,
                   n_iters=n_iters, converged=conv, solver=used, loss=prob.loss,
                   l1_ratio=l1c, fit_intercept=prob.fit_intercept)


def _path_loop(prob, lams, l1c, solver, max_iter, tol, opts, verbose, coefs, intercepts,
               objectives, n_iters, conv):
    coef, c = np.zeros(prob.p), 0.0
    k = lams.shape[0]
    state = {}  # screening: the previous solution's gradient, lam and ever-active set
    for i, lam in enumerate(lams):
        lam_i, l1_i, solver_i, max_iter_i, tol_i = _check_params(float(lam), l1c, solver,
                                                                 max_iter, tol, prob.p, prob.n)
        o = dict(opts)
        if solver_i == "cd":
            o["_screen_state"] = state
        res = _solve(prob, lam_i, l1_i, solver_i, max_iter_i, tol_i, coef, c, None, False, None,
                     o)
        coef, c = res.coef, res.intercept
        coefs[i], intercepts[i], objectives[i] = coef, c, res.objective
        n_iters[i], conv[i] = res.n_iter, res.converged
        if verbose:
            print(f"path {i + 1:4d}/{k}  lam {lam:.4g}  nnz {int(np.count_nonzero(coef))}  "
                  f"objective {res.objective:.10g}  iters {res.n_iter}", flush=True)


# ---------------------------------------------------------------------------
# solving
# ---------------------------------------------------------------------------

def _solve(prob, lam, l1_ratio, solver, max_iter, tol, coef0, c0, random_state, verbose,
           callback, opts):
    obj = None
    if solver == "cd":
        screen = opts.pop("screen", True)
        state = opts.pop("_screen_state", None)
        info = {}
        if (screen and not _use_gram(prob) and callback is None and not verbose
                and lam * l1_ratio > 0):
            coef, c, n_iter, converged, history, message, obj, info = _solve_cd_screened(
                prob, lam, l1_ratio, max_iter, tol, coef0, c0, state)
        else:
            coef, c, n_iter, converged, history, message = _solve_cd(
                prob, lam, l1_ratio, max_iter, tol, coef0, c0, verbose, callback)
            if state is not None:
                state.clear()
        if _use_gram(prob) and len(history):
            obj = float(history[-1])  # exact quadratic expansion: no pass over X needed
    else:
        coef, c, n_iter, converged, history, message, info = _solve_generic(
            prob, lam, l1_ratio, solver, max_iter, tol, coef0, c0, random_state, verbose,
            callback, opts)
        if solver not in ("sgd", "adagrad", "adam") and len(history):
            obj = float(info.pop("_objective"))  # the solver's own value at its final x
    if obj is None:
        obj = float(prob.loss_value(coef, c)) + _penalty(coef, lam, l1_ratio)
    return GLMResult(coef=coef, intercept=float(c), objective=obj, n_iter=int(n_iter),
                     converged=bool(converged), history=np.asarray(history, dtype=np.float64),
                     solver=solver, loss=prob.loss, lam=lam, l1_ratio=l1_ratio,
                     fit_intercept=prob.fit_intercept, message=message, info=info)


def _use_gram(prob):
    return prob.loss == "squared" and prob.n > prob.p and prob.p <= 5000


def _solve_cd(prob, lam, l1_ratio, max_iter, tol, coef0, c0, verbose, callback):
    from ..solvers._common import Progress
    K = prob.K
    coef = coef0.copy()
    # the kernels test curvature-weighted squared coordinate changes: compare
    # them with (tol * sqrt(null loss))^2, so tol is a relative coordinate change
    tol_abs = tol * tol * max(prob.null_loss(), 1e-300)
    stepwise = callback is not None or verbose
    gram = _use_gram(prob)
    if gram:
        G, b, xbar, ybar, yvar = prob.gram()
        const = 0.5 * yvar

        def run(k, hist):
            n_it, conv = K.glm_cd_gram(G, b, lam, l1_ratio, coef, k, tol_abs, hist)
            return n_it, conv
    else:
        c_box = [c0 if prob.fit_intercept else 0.0]
        const = 0.0

        def run(k, hist):
            if prob.sparse:
                A = prob.csc
                c, n_it, conv, _ = K.glm_cd_csc(A.data, A.indices, A.indptr, prob.n, prob.y,
                                                prob.sw, prob.code, lam, l1_ratio,
                                                prob.fit_intercept, coef, c_box[0], k, tol_abs,
                                                hist)
            else:
                c, n_it, conv, _ = K.glm_cd(prob.fortran, prob.y, prob.sw, prob.code, lam,
                                            l1_ratio, prob.fit_intercept, coef, c_box[0], k,
                                            tol_abs, hist)
            c_box[0] = c
            return n_it, conv

    def intercept():
        if gram:
            return ybar - float(xbar @ coef) if prob.fit_intercept else 0.0
        return c_box[0]

    if not stepwise:
        hist = np.empty(max_iter + 1)
        n_iter, converged = run(max_iter, hist)
        history = hist[:n_iter + 1] + const
        message = "converged" if converged else "max_iter reached"
    else:
        progress = Progress(verbose, max_iter, "cd")
        history = []
        n_iter, converged, message = 0, False, "max_iter reached"
        hist = np.empty(2)
        try:
            while n_iter < max_iter:
                k, conv = run(1, hist)
                if not history:
                    history.append(hist[0] + const)
                if k == 0:
                    converged = conv
                    break
                n_iter += 1
                history.append(hist[1] + const)
                progress.update(n_iter, history[-1])
                if conv:
                    converged = True
                    message = "converged"
                    break
                if callback is not None and callback(n_iter, {"coef": coef.copy(),
                                                              "intercept": intercept()}):
                    message = "stopped by callback"
                    break
        finally:
            progress.close()
    if not converged and message == "max_iter reached":
        warnings.warn(f"cd did not converge within max_iter={max_iter} iterations; increase "
                      "max_iter or loosen tol", ConvergenceWarning, stacklevel=4)
    return coef, intercept(), n_iter, converged, history, message


def _solve_cd_screened(prob, lam, l1_ratio, max_iter, tol, coef0, c0, state):
    """Coordinate descent on a working set grown by the sequential strong rule and
    checked against the optimality conditions of every feature (glmnet).

    The working set is the features that were ever non-zero on the path plus the
    strong set ``|grad_j(previous solution)| >= l1_ratio (2 lam - lam_prev)``
    (Tibshirani et al. 2012). After CD converges on it, a feature outside the set
    violates the optimality conditions if the first coordinate step of an
    unscreened sweep would move it by more than the tolerance,
    ``(|grad_j| - l1)^2 / (H_j + l2) > tol_abs`` (``H_j`` its curvature).
    Violators join the set and CD restarts from the current point, until there
    are none: the result satisfies the unscreened solver's stopping rule on every
    feature (and equals its result whenever the unscreened sweeps would not have
    moved the screened-out features).

    The gradients ``grad_j = x_j' r`` of the features outside the set are not all
    recomputed at every check: with ``g_ref = X' r_ref`` from the last full pass,
    ``|grad_j| <= |g_ref_j| + ||x_j|| ||r - r_ref||`` (Cauchy-Schwarz), and only
    the features whose bound exceeds the threshold are computed exactly (a full
    pass, which resets the reference, when they are many).
    """
    K = prob.K
    p = prob.p
    fi = prob.fit_intercept
    l1 = lam * l1_ratio
    l2 = lam * (1.0 - l1_ratio)
    tol_abs = tol * tol * max(prob.null_loss(), 1e-300)
    if state is None:
        state = {}
    coef = coef0.copy()
    c = c0 if fi else 0.0
    norms = prob.col_norms()

    def exceed(cols, r, thr):
        """The features of ``cols`` with ``|x_j' r| > thr`` and their ``x_j' r``."""
        if cols.size == 0:
            return cols, np.empty(0)
        ref = state.get("ref")
        if ref is not None:
            d = r - ref[0]
            dn = math.sqrt(float(d @ d))
            if dn == 0.0:          # the reference is exact here (a path's next lam)
                vals = ref[1][cols]
                keep = np.abs(vals) > thr
                return cols[keep], vals[keep]
            bound = np.abs(ref[1][cols]) + norms[cols] * dn
            cand = cols[bound > thr]
        if ref is None or cand.size > max(p // 8, 64):
            g = prob.col_dots(None, r)
            state["ref"] = (r.copy(), g)
            vals = g[cols]
            keep = np.abs(vals) > thr
            return cols[keep], vals[keep]
        vals = prob.col_dots(cand, r)
        keep = np.abs(vals) > thr
        return cand[keep], vals[keep]

    if state.get("r") is not None and np.array_equal(state["coef"], coef) and \
            state.get("c") == c:
        r, lam_prev = state["r"], state["lam"]   # the previous lam's solution
        t = None
    else:
        t, r, _ = prob.residual(coef, c)
        if np.any(coef):
            lam_prev = lam
        else:  # from zero, the rule's previous lam is lam_max
            _, g0 = exceed(np.arange(p), r, -1.0)
            lam_prev = float(np.max(np.abs(g0))) / l1_ratio if p else lam
    lam_prev = max(lam_prev, lam)
    ever = state.get("ever")
    if ever is None or ever.shape[0] != p:
        ever = np.zeros(p, dtype=bool)
    ws = ever | (coef != 0.0)
    strong, _ = exceed(np.flatnonzero(~ws), r, l1_ratio * (2.0 * lam - lam_prev))
    ws[strong] = True
    history = []
    n_iter = 0
    converged = True
    rounds = 0
    hist = np.empty(max_iter + 1)
    while True:
        rounds += 1
        idx = np.flatnonzero(ws)
        sub = coef[idx].copy()
        if prob.sparse:
            A = prob.csc[:, idx]
            c_new, k, conv, _ = K.glm_cd_csc(A.data, A.indices, A.indptr, prob.n, prob.y,
                                             prob.sw, prob.code, lam, l1_ratio, fi, sub, c,
                                             max_iter, tol_abs, hist)
        else:
            Xs = np.asfortranarray(prob.fortran[:, idx])
            c_new, k, conv, _ = K.glm_cd(Xs, prob.y, prob.sw, prob.code, lam, l1_ratio, fi,
                                         sub, c, max_iter, tol_abs, hist)
        if not history:
            history.append(hist[0])
        history.extend(hist[1:k + 1])
        n_iter += k
        converged = converged and conv
        coef[idx] = sub
        c = c_new if fi else 0.0
        t, r, curv = prob.residual(coef, c)
        cand, vals = exceed(np.flatnonzero(~ws), r, l1)
        if cand.size:
            H = _curvatures(prob, cand, curv)
            ex = np.abs(vals) - l1
            cand = cand[ex * ex > tol_abs * (H + l2)]
        if cand.size == 0:
            break
        ws[cand] = True
    obj = prob.loss_from_t(t) + _penalty(coef, lam, l1_ratio)
    ever |= coef != 0.0
    state.update(r=r, coef=coef.copy(), c=c, lam=lam, ever=ever)
    message = "converged" if converged else "max_iter reached"
    if not converged:
        warnings.warn(f"cd did not converge within max_iter={max_iter} iterations; increase "
                      "max_iter or loosen tol", ConvergenceWarning, stacklevel=4)
    if history:
        history[-1] = obj
    info = {"working_set": int(ws.sum()), "screen_rounds": rounds}
    return coef, c, n_iter, converged, np.asarray(history), message, obj, info


def _curvatures(prob, cols, curv):
    """Coordinate curvatures ``H_j`` of the CD model for the columns ``cols``
    (centred for an intercept), from the per-sample curvatures ``curv``
    (``sw`` for the squared loss)."""
    v = prob.sw if prob.loss == "squared" else curv
    if prob.sparse:
        A = prob.csc[:, cols]
        h2 = np.asarray(A.multiply(A).T @ v).ravel()
        h1 = np.asarray(A.T @ v).ravel()
    else:
        A = prob.fortran[:, cols]
        h2 = (A * A).T @ v
        h1 = A.T @ v
    if prob.fit_intercept:
        V = float(v.sum())
        if V > 0:
            h2 = np.maximum(h2 - h1 * h1 / V, 0.0)
    return h2


def _solve_generic(prob, lam, l1_ratio, solver, max_iter, tol, coef0, c0, random_state,
                   verbose, callback, opts):
    from .. import solvers as S
    from ..prox import l1 as prox_l1
    p, fi = prob.p, prob.fit_intercept
    l1 = lam * l1_ratio
    l2 = lam * (1.0 - l1_ratio)
    x0 = np.concatenate([coef0, [c0]]) if fi else coef0.copy()
    grad = np.empty(p)
    empty = np.empty(0)
    cache = {"x": None, "curv": None}
    want_curv = solver == "newton"

    def split(x):
        return x[:p], (float(x[p]) if fi else 0.0)

    def fun(x):
        w, c = split(x)
        curv = np.empty(prob.n) if want_curv else empty
        val, gc = prob.loss_grad(w, c, grad, curv)
        g = np.empty_like(x)
        g[:p] = grad + l2 * w
        if fi:
            g[p] = gc
        if want_curv:
            cache["x"], cache["curv"] = x.copy(), curv
        return val + 0.5 * l2 * float(w @ w), g

    def fun_value(x):
        w, c = split(x)
        return float(prob.loss_value(w, c)) + 0.5 * l2 * float(w @ w)

    presolved = None
    if opts.pop("presolve", True) and solver in ("lbfgs", "newton") and \
            prob.n >= _PRESOLVE_MIN_N and not np.any(x0):
        x0, presolved = _presolve(prob, l2, solver, x0, tol)

    cb = None
    if callback is not None:
        def cb(it, x):
            w, c = split(x)
            return callback(it, {"coef": w.copy(), "intercept": c})

    common = dict(callback=cb, verbose=verbose, name=solver)
    if solver in ("fista", "ista"):
        if l1 > 0:
            def prox(v, t):
                out = v.copy()
                out[:p] = prox_l1(v[:p], t * l1)
                return out

            def penalty(x):
                return l1 * float(np.abs(x[:p]).sum())
        else:
            prox = penalty = None
        opts.setdefault("gtol", None)
        res = S.proximal_gradient(fun, x0, prox=prox, penalty=penalty, fun_value=fun_value,
                                  accelerate=solver == "fista", max_iter=max_iter, tol=tol,
                                  **common, **opts)
    elif solver == "newton":
        rows = _hessian_rows(prob, opts.pop("hessian_subsample", "auto"))
        Xsub = prob.X if rows is None else prob.X[rows]
        if not prob.sparse:
            Xsub = np.ascontiguousarray(Xsub.T)  # (p, m): Z @ Z.T is a fast BLAS syrk
        memo = {}
        # the line search's value at the new point comes with its gradient from the
        # same (memory-bound) pass, so an accepted step costs one pass over X
        fun_memo = _remember_last(fun)

        def hess(x):
            if cache["x"] is None or not np.array_equal(cache["x"], x):
                fun_memo(x)
            k = memo.setdefault("k", 0)
            memo["k"] = k + 1
            if rows is None:
                return _hessian(prob, cache["curv"], l2, None, Xsub)
            # progressive sampling: far from the optimum a rough Hessian does as
            # well, so the sample doubles from m/8 up to m over the iterations
            m = min(rows.size, max(rows.size >> 3, 1) << k)
            sub = Xsub[:, :m] if not prob.sparse else Xsub[:m]
            return _hessian(prob, cache["curv"], l2, rows[:m], sub)
        res = S.newton(fun_memo, x0, hess=hess, fun_value=lambda x: fun_memo(x)[0],
                       max_iter=max_iter, tol=tol, **common, **opts)
        res.info["hessian_rows"] = prob.n if rows is None else int(rows.size)
    elif solver == "lbfgs":
        # the wrapper and SciPy both evaluate the start point: one pass suffices
        res = S.lbfgs(_remember_last(fun), x0, max_iter=max_iter, tol=tol, **common, **opts)
    elif solver == "gd":
        opts.setdefault("gtol", None)
        res = S.gradient_descent(fun, x0, fun_value=fun_value, max_iter=max_iter, tol=tol,
                                 **common, **opts)
    elif solver == "momentum":
        opts.setdefault("gtol", None)
        res = S.heavy_ball(fun, x0, fun_value=fun_value, max_iter=max_iter, tol=tol, **common,
                           **opts)
    else:  # sgd / adagrad / adam
        res = _solve_stochastic(prob, solver, l2, x0, max_iter, tol, random_state, fun_value,
                                common, opts)
    w, c = split(res.x)
    hist = np.asarray(res.history, dtype=np.float64)
    info = dict(res.info)
    info["_objective"] = res.objective
    if presolved is not None:
        info["presolve_rows"] = presolved
    return (w.copy(), c, res.n_iter, res.converged, hist, res.message, info)


def _remember_last(fun):
    """``fun`` that returns its previous result when called again at the same point."""
    last = {"x": None, "out": None}

    def wrapped(x):
        if last["x"] is None or not np.array_equal(last["x"], x):
            last["out"] = fun(x)
            last["x"] = x.copy()
        return last["out"]
    return wrapped


def _hessian_rows(prob, subsample):
    """Rows of a fixed sub-sample for the Hessian (None: use all rows).

    ``"auto"`` uses ``m = max(20000, 100 p)`` rows when ``n > 2 m``: the Hessian
    of a sum is estimated to relative accuracy ~ ``sqrt(p / m)``, so Newton
    still converges fast (linearly, at that rate, once close) while each
    Hessian costs ``m p^2`` instead of ``n p^2`` (sub-sampled Newton, Byrd et
    al. 2011). The first Newton iterations use a prefix of m/8, m/4, ... rows.
    The gradient and objective are always exact.
    """
    if subsample is None or subsample is False:
        return None
    if isinstance(subsample, str):
        check_choice(subsample, "hessian_subsample", ("auto",))
        m = max(20000, 100 * prob.p)
        if prob.n <= 2 * m:
            return None
    else:
        m = check_scalar(subsample, "hessian_subsample", kind="int", lo=1)
        if m >= prob.n:
            return None
    # a random sample whose every prefix is a random sample too (see hess)
    return np.random.default_rng(0).choice(prob.n, size=m, replace=False)


def _presolve(prob, l2, solver, x0, tol):
    """Warm start for a large-``n`` smooth solve: the same fit on a 5% sub-sample.

    Its solution is within the sampling error of the full one, which saves the
    full-data solver its first, least productive iterations (each a pass over X).
    """
    m = min(max(5000, prob.n // 20), prob.n // 2)
    if m < 1:
        return x0, None
    rows = np.random.default_rng(0).choice(prob.n, size=m, replace=False)
    rows.sort()
    sw = prob.sw[rows]
    if not sw.sum() > 0:
        return x0, None
    sub = _Problem.__new__(_Problem)
    sub.__dict__.update(prob.__dict__)
    sub.X, sub.y, sub.n, sub.sw = prob.X[rows], prob.y[rows], m, sw / sw.sum()
    sub._csc = sub._fortran = sub._gram = sub._null = sub._norms = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = _solve_generic(sub, l2, 0.0, solver, 200, max(tol, 1e-6), x0[:prob.p],
                             float(x0[prob.p]) if prob.fit_intercept else 0.0, None, False,
                             None, {"presolve": False})
    x = np.concatenate([res[0], [res[1]]]) if prob.fit_intercept else res[0]
    return (x, m) if np.all(np.isfinite(x)) else (x0, None)


def _hessian(prob, curv, l2, rows, Xsub):
    """Hessian of the smooth objective in ``(w, c)`` from the curvatures ``sw_i l''_i``,
    estimated from the rows ``rows`` (all if None); ``Xsub`` is ``X[rows]``, stored
    transposed (``(p, m)``, C-ordered) when dense."""
    p = prob.p
    if rows is None:
        d, scale = curv, 1.0
    else:
        d = curv[rows]
        ws = float(prob.sw[rows].sum())
        scale = 1.0 / ws if ws > 0 else 1.0
    m = p + 1 if prob.fit_intercept else p
    H = np.empty((m, m))
    if prob.sparse:
        Xd = Xsub.multiply(d[:, None]).tocsr()
        H[:p, :p] = (Xsub.T @ Xd).toarray()
        hc = np.asarray(Xsub.T @ d).ravel()
    else:
        Z = Xsub * np.sqrt(d)
        H[:p, :p] = Z @ Z.T
        hc = Xsub @ d
    if prob.fit_intercept:
        H[:p, p] = hc
        H[p, :p] = hc
        H[p, p] = float(d.sum())
    if scale != 1.0:
        H *= scale
    H[np.arange(p), np.arange(p)] += l2
    return H


def _solve_stochastic(prob, method, l2, x0, max_iter, tol, random_state, fun_value, common, opts):
    from .. import solvers as S
    p, fi, n = prob.p, prob.fit_intercept, prob.n
    opts = dict(opts)
    if opts.get("learning_rate") is None:
        # a safe step from the largest per-sample curvature (sgd), the usual defaults otherwise
        if prob.sparse:
            rn = np.asarray(prob.X.multiply(prob.X).sum(axis=1)).ravel()
        else:
            rn = np.einsum("ij,ij->i", prob.X, prob.X)
        curv = 1.0 if prob.loss == "squared" else 0.25
        L = curv * (float(rn.max()) + (1.0 if fi else 0.0)) + l2
        opts["learning_rate"] = {"sgd": 0.5 / L, "adagrad": 0.5, "adam": 0.01}[method]
    grad = np.empty(p)
    empty = np.empty(0)
    sw = prob.sw

    def grad_batch(x, idx):
        w = x[:p]
        c = float(x[p]) if fi else 0.0
        swb = sw[idx]
        swb = swb * (n / idx.shape[0])
        if prob.sparse:
            Xb = prob.X[idx]
            _, gc = prob.K.glm_loss_grad_csr(Xb.data, Xb.indices, Xb.indptr, prob.y[idx], swb,
                                             w, c, prob.code, grad, empty)
        else:
            _, gc = prob.K.glm_loss_grad(prob.X[idx], prob.y[idx], swb, w, c, prob.code, grad,
                                         empty)
        g = np.empty_like(x)
        g[:p] = grad + l2 * w
        if fi:
            g[p] = gc
        return g

    return S.sgd(grad_batch, x0, n, method=method, n_epochs=max_iter,
                 tol=opts.pop("tol", 0.0) if "tol" in opts else 0.0, fun_value=fun_value,
                 random_state=random_state, **common, **opts)
