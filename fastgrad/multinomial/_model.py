"""The multinomial objective, its Hessian blocks and :func:`fit`."""
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._threads import serial_blas, threads_for
from .._validation import as_float_array, check_choice, check_consistent_length, check_scalar
from .._warnings import ConvergenceWarning

__all__ = [
    "fit", "MultinomialResult", "PerfectSeparationWarning", "loss_and_grad", "hessian",
    "objective",
]

_NEWTON_MAX_DIM = 1500   # solver="auto": Newton up to this many parameters
_SATURATION = 30.0       # log-odds beyond which separation is suspected during a fit
_SATURATION_FINAL = 15.0  # ... and checked after a Newton fit whose steps did not shrink
_SATURATION_LBFGS = 25.0  # ... and after an L-BFGS fit
_SUBSAMPLE_DP = 0.1      # Newton: sub-sampled Hessians while max |dP| per step exceeds this
_SUBSAMPLE_MIN_PER_PARAM = 20  # ... from at least this many rows per parameter
_PRECOND_ROWS_PER_COL = 8   # L-BFGS preconditioner: Gram matrix of every s-th row, at least
_PRECOND_MIN_ROWS = 2048    # ... max(this, 8 q) rows
_PRECOND_MAX_Q = 2000       # beyond this many columns only the Gram matrix's diagonal


class PerfectSeparationWarning(ConvergenceWarning):
    """The classes are (quasi-)separable, so the unpenalised MLE does not exist."""


# --------------------------------------------------------------------------- validation

def _is_sparse(X):
    try:
        import scipy.sparse as sp
    except ImportError:  # pragma: no cover - scipy is a dependency
        return False
    return sp.issparse(X)


class _Design:
    """Validated design matrix: dense C-contiguous float64 or CSR parts."""

    def __init__(self, X, name="X"):
        if _is_sparse(X):
            X = X.tocsr().astype(np.float64)
            if X.ndim != 2:
                raise ValueError(f"{name} must be 2-dimensional")
            if not X.has_canonical_format:
                X = X.copy()
                X.sum_duplicates()
            if not np.all(np.isfinite(X.data)):
                raise ValueError(f"{name} contains NaN or infinite values")
            self.sparse = True
            self.csr = X
            self.data = np.ascontiguousarray(X.data)
            # one index dtype, so the kernels compile once for CSR input
            self.indices = np.ascontiguousarray(X.indices, dtype=np.int64)
            self.indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
            self.dense = None
        else:
            if isinstance(X, np.ndarray) and X.dtype.kind in "OUS":
                raise TypeError(f"{name} must be numeric array-like, got dtype {X.dtype}")
            self.dense = as_float_array(X, name, ndim=2)
            self.sparse = False
        self.n, self.p = (self.csr.shape if self.sparse else self.dense.shape)
        if self.n == 0:
            raise ValueError(f"{name} has no rows")

    def proba(self, coef, intercept):
        from ..kernels import multinomial as kern
        if self.sparse:
            return kern.multinomial_proba_csr(self.data, self.indices, self.indptr, coef, intercept)
        return kern.multinomial_proba(self.dense, coef, intercept)

    def logits(self, coef, intercept):
        """Logits of the K-1 non-reference classes, shape (n, K-1)."""
        M = self.csr @ coef.T if self.sparse else self.dense @ coef.T
        return np.asarray(M) + intercept

    def with_ones(self):
        """``[X, 1]`` as a scipy.sparse CSR matrix (for the separation LP)."""
        import scipy.sparse as sp
        base = self.csr if self.sparse else sp.csr_matrix(self.dense)
        return sp.hstack([base, np.ones((self.n, 1))], format="csr")


def _check_y(y, n=None):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-dimensional, got shape {y.shape}")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinite values")
    if y.dtype.kind == "O":
        if any(v is None or (isinstance(v, float) and not np.isfinite(v)) for v in y):
            raise ValueError("y contains missing (None/NaN) values")
    return y


def _encode(y, classes=None):
    if classes is None:
        try:
            classes, codes = np.unique(y, return_inverse=True)
        except TypeError as exc:
            raise TypeError(f"y labels must be mutually comparable: {exc}") from None
    else:
        classes = np.asarray(classes)
        codes = np.searchsorted(classes, y)
        codes = np.clip(codes, 0, len(classes) - 1)
        if not np.all(classes[codes] == y):
            raise ValueError("y contains labels that are not in classes")
    return classes, codes.astype(np.int64).ravel()


def _check_weights(sample_weight, n):
    if sample_weight is None:
        return np.ones(n)
    w = as_float_array(sample_weight, "sample_weight", ndim=1)
    if w.shape[0] != n:
        raise ValueError(f"inconsistent lengths: X={n}, sample_weight={w.shape[0]}")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative")
    total = float(w.sum())
    if not total > 0:
        raise ValueError("sample_weight must not be all zero (the sum of the weights is zero)")
    return w * (n / total)


# --------------------------------------------------------------------------- preconditioner

def _precond_step(n, q):
    """Row stride of the preconditioner's sample: rows ``0, s, 2s, ...`` (a stride, not
    the first rows, so data sorted by class or time are sampled evenly)."""
    m = min(n, max(_PRECOND_MIN_ROWS, _PRECOND_ROWS_PER_COL * q))
    return max(1, n // m)


class _KroneckerPreconditioner:
    """Whitening by the start point's Hessian ``A (x) G``.

    At zero slopes and intercepts at the class log-frequency ratios every row has the
    class probabilities ``pi`` (the class frequencies), so the Hessian there is exactly
    ``A (x) G`` with ``A = diag(pi) - pi pi^T`` over the ``K-1`` non-reference classes
    and ``G = X~^T W X~ / sum(w)`` (``X~`` = ``X`` with the column of ones). ``G`` is
    estimated on an evenly strided sample of rows (``_precond_step``); with more than
    ``_PRECOND_MAX_Q`` columns only its diagonal is used. L-BFGS then runs on ``U`` with
    ``Theta = L_A^{-T} U L_G^{-1}`` (``A = L_A L_A^T``, ``G = L_G L_G^T``), in which the
    start Hessian is the identity. The optimum is unchanged (a linear change of
    variables); only the path and the number of iterations are.
    """

    def __init__(self, Xs, ws, freq, lam, fit_intercept):
        from scipy.linalg import solve_triangular
        pi = np.maximum(np.asarray(freq, dtype=np.float64), 1e-12)
        pi = pi / pi.sum()
        pi = pi[:-1]
        km1 = pi.shape[0]
        A = np.diag(pi) - np.outer(pi, pi)
        ws = np.asarray(ws, dtype=np.float64)
        wt = float(ws.sum())
        if not wt > 0:
            ws, wt = np.ones(ws.shape[0]), float(ws.shape[0])
        p = Xs.shape[1]
        q = p + (1 if fit_intercept else 0)
        sparse = _is_sparse(Xs)
        self.full = q <= _PRECOND_MAX_Q
        if self.full:
            G = np.empty((q, q))
            if sparse:
                Gx = np.asarray((Xs.T @ Xs.multiply(ws[:, None]).tocsr()).todense())
                colsum = np.asarray(Xs.T @ ws).ravel()
            else:
                Xw = Xs * np.sqrt(ws)[:, None]
                Gx = Xw.T @ Xw
                colsum = Xs.T @ ws
            G[:p, :p] = Gx
            if fit_intercept:
                G[:p, p] = G[p, :p] = colsum
                G[p, p] = wt
            G /= wt
            d = np.diag(G).copy()
        else:
            if sparse:
                d = np.asarray(Xs.multiply(Xs).T @ ws).ravel()
            else:
                d = (Xs * Xs).T @ ws
            if fit_intercept:
                d = np.append(d, wt)
            d = d / wt
        # the penalty on the slopes, as a Kronecker term: lam I ~ A (x) (lam / mean eig(A)) I
        if lam:
            extra = lam / max(float(np.trace(A)) / km1, 1e-300)
            if self.full:
                G[np.arange(p), np.arange(p)] += extra
            d[:p] += extra
        # a tiny ridge keeps constant or collinear columns from blowing the scaling up
        ridge = 1e-10 * max(float(np.max(d)), 1e-300)
        self.km1, self.q = km1, q
        self.LA = np.linalg.cholesky(A)
        self.MA = solve_triangular(self.LA, np.eye(km1), lower=True)    # L_A^{-1}
        if self.full:
            G[np.arange(q), np.arange(q)] += ridge
            try:
                self.LG = np.linalg.cholesky(G)
            except np.linalg.LinAlgError:
                self.full = False
        if self.full:
            self.MG = solve_triangular(self.LG, np.eye(q), lower=True)  # L_G^{-1}
        else:
            self.sd = np.sqrt(np.maximum(d, 0.0) + ridge)

    def to_theta(self, u):
        U = np.asarray(u, dtype=np.float64).reshape(self.km1, self.q)
        T = self.MA.T @ U
        return (T @ self.MG if self.full else T / self.sd).ravel()

    def from_theta(self, theta):
        T = self.LA.T @ np.asarray(theta, dtype=np.float64).reshape(self.km1, self.q)
        return (T @ self.LG if self.full else T * self.sd).ravel()

    def grad_u(self, g):
        V = self.MA @ np.asarray(g, dtype=np.float64).reshape(self.km1, self.q)
        return (V @ self.MG.T if self.full else V / self.sd).ravel()


def _lbfgs_preconditioned(fun, pre, theta0, callback, **kw):
    """L-BFGS on ``fun(theta) -> (f, grad)`` in the whitened coordinates of ``pre``;
    ``callback(it, theta)`` and the result's ``x`` are in ``theta``."""
    from dataclasses import replace

    from ..solvers import lbfgs

    def fun_u(u):
        f, g = fun(pre.to_theta(u))
        return f, pre.grad_u(g)

    cb = None
    if callback is not None:
        def cb(it, u):
            return callback(it, pre.to_theta(u))
    res = lbfgs(fun_u, pre.from_theta(theta0), callback=cb, **kw)
    return replace(res, x=pre.to_theta(res.x))


def _lbfgs_then_newton(fun, hess, pre, theta0, callback, *, max_iter, tol, gtol, verbose,
                       name):
    """``solver="auto"`` up to ``_NEWTON_MAX_DIM`` parameters: whitened L-BFGS (default
    stopping rule) to near the optimum, then exact Newton steps, the first of which
    typically already meets the decrement rule: the final accuracy of Newton at the
    cost of about one Hessian. ``callback(it, theta)`` counts iterations over both."""
    from dataclasses import replace

    from ..solvers import newton
    done = {"it": 0, "stop": False}

    def cb1(it, theta):
        done["it"] = it
        if callback is not None and callback(it, theta):
            done["stop"] = True
            return True
        return False
    r1 = _lbfgs_preconditioned(fun, pre, theta0, cb1, max_iter=max_iter, tol=1e-12, gtol=1e-7,
                               verbose=verbose, warn=False, name=name)
    if done["stop"]:
        return replace(r1, converged=False)
    if r1.n_iter >= max_iter:   # max_iter bounds both phases together
        from ..solvers._common import warn_not_converged
        warn_not_converged(name, max_iter)
        return replace(r1, converged=False, message="max_iter reached")

    def cb2(it, theta):
        return callback is not None and callback(r1.n_iter + it, theta)
    r2 = newton(fun, r1.x, hess=hess, max_iter=max_iter - r1.n_iter, tol=tol, gtol=gtol,
                callback=cb2, verbose=verbose, name=name)
    info = dict(r2.info, n_lbfgs_iter=r1.n_iter, n_lbfgs_fev=r1.info["n_fev"])
    return replace(r2, n_iter=r1.n_iter + r2.n_iter,
                   history=np.concatenate([r1.history, r2.history[1:]]), info=info)


# --------------------------------------------------------------------------- problem

class _Problem:
    """Objective, gradient and Hessian on the flat vector ``theta.reshape(K-1, q)``
    whose last column holds the intercepts when ``fit_intercept``."""

    def __init__(self, design, codes, weights, n_classes, lam, fit_intercept):
        self.d = design
        self.y = codes
        self.w = weights
        self.km1 = n_classes - 1
        self.lam = lam
        self.fit_intercept = fit_intercept
        self.p = design.p
        self.q = design.p + (1 if fit_intercept else 0)
        self._zeros = np.zeros(self.km1)

    def split(self, theta):
        T = np.asarray(theta, dtype=np.float64).reshape(self.km1, self.q)
        coef = np.ascontiguousarray(T[:, :self.p])
        intercept = np.ascontiguousarray(T[:, self.p]) if self.fit_intercept else self._zeros
        return coef, intercept

    def join(self, coef, intercept):
        if self.fit_intercept:
            return np.column_stack([coef, intercept]).ravel()
        return np.array(coef, dtype=np.float64).ravel()

    def loss_grad(self, coef, intercept):
        """Loss and gradient; the largest log-odds spread of the same pass is kept
        (with the parameters) for :meth:`saturation`."""
        from ..kernels import multinomial as kern
        d = self.d
        if d.sparse:
            loss, gc, gi, spread = kern._loss_grad_spread_csr(d.data, d.indices, d.indptr, self.y,
                                                              coef, intercept, self.w)
        else:
            loss, gc, gi, spread = kern._loss_grad_spread(d.dense, self.y, coef, intercept, self.w)
        self._spread = (coef.copy(), intercept.copy(), float(spread))
        return loss, gc, gi

    def loss(self, coef, intercept):
        from ..kernels import multinomial as kern
        d = self.d
        if d.sparse:
            return kern.multinomial_loss_csr(d.data, d.indices, d.indptr, self.y, coef,
                                             intercept, self.w)
        return kern.multinomial_loss(d.dense, self.y, coef, intercept, self.w)

    def fun(self, theta):
        theta = np.asarray(theta, dtype=np.float64).ravel()
        last = getattr(self, "_last_fun", None)
        if last is not None and np.array_equal(last[0], theta):
            return last[1], last[2].copy()   # e.g. auto's Newton phase starting where L-BFGS ended
        coef, intercept = self.split(theta)
        loss, gc, gi = self.loss_grad(coef, intercept)
        if self.lam:
            loss += 0.5 * self.lam * float(np.sum(coef * coef))
            gc = gc + self.lam * coef
        g = np.column_stack([gc, gi]).ravel() if self.fit_intercept else gc.ravel()
        self._last_fun = (theta.copy(), loss, g.copy())
        return loss, g

    def value(self, theta):
        coef, intercept = self.split(theta)
        loss = self.loss(coef, intercept)
        if self.lam:
            loss += 0.5 * self.lam * float(np.sum(coef * coef))
        return loss

    def hess(self, theta):
        """Hessian at ``theta``.

        During a Newton fit (``self._hess_cache`` set by :func:`fit`), far from
        the optimum -- the first Hessian, and the second while some class
        probability still moved by more than ``_SUBSAMPLE_DP`` -- the Hessian is the
        mean over a fixed random quarter (then half) of the rows, if that is at
        least ``_SUBSAMPLE_MIN_PER_PARAM`` rows per parameter. The optimum does not
        change (gradient and line search are exact; only early search directions
        are approximate) and the last iterations, which set the final accuracy, are
        exact Newton steps. (Re-using a Hessian near the optimum, chord-Newton, was
        tried and dropped: its last step no longer squares the error.)
        """
        from ..kernels import multinomial as kern
        coef, intercept = self.split(theta)
        d = self.d
        P = d.proba(coef, intercept)
        cache = getattr(self, "_hess_cache", None)
        if cache is None:
            return self._hess_at(kern, d, P, None)
        dp = np.inf if cache["P"] is None else float(np.max(np.abs(P - cache["P"])))
        k = cache["n_computed"]
        frac = 4 if k == 0 else (2 if k == 1 and dp > _SUBSAMPLE_DP else 1)
        if cache.get("exact"):
            frac = 1   # a Newton polish after L-BFGS (solver="auto"): exact from the start
        m = d.n // frac
        rows = None
        if frac > 1 and m >= _SUBSAMPLE_MIN_PER_PARAM * self.km1 * self.q:
            rows = np.sort(np.random.default_rng(0).permutation(d.n)[:m])
        cache.update(P=P, n_computed=k + 1, rows=cache["rows"] + (d.n if rows is None else m))
        return self._hess_at(kern, d, P, rows)

    def _hess_at(self, kern, d, P, rows):
        """Hessian from the probabilities ``P``, over the rows ``rows`` (all if None)."""
        w = self.w
        if rows is not None:
            P, w = np.ascontiguousarray(P[rows]), np.ascontiguousarray(w[rows])
        if d.sparse:
            if rows is None:
                data, indices, indptr = d.data, d.indices, d.indptr
            else:
                S = d.csr[rows]
                data = np.ascontiguousarray(S.data)
                indices = np.ascontiguousarray(S.indices, dtype=np.int64)
                indptr = np.ascontiguousarray(S.indptr, dtype=np.int64)
            H = kern.multinomial_hessian_csr(data, indices, indptr, d.p, P, w,
                                             self.fit_intercept)
        else:
            X = d.dense if rows is None else np.ascontiguousarray(d.dense[rows])
            H = kern.multinomial_hessian(X, P, w, self.fit_intercept)
        if self.lam:
            idx = (np.arange(self.km1)[:, None] * self.q + np.arange(self.p)[None, :]).ravel()
            H[idx, idx] += self.lam
        return H

    def saturation(self, theta):
        """Largest log-odds between any two classes over all rows."""
        coef, intercept = self.split(theta)
        last = getattr(self, "_spread", None)
        if last is not None and np.array_equal(last[0], coef) and np.array_equal(last[1], intercept):
            return last[2]   # computed by the last loss_grad pass at these parameters
        E = self.d.logits(coef, intercept)
        hi = np.maximum(E.max(axis=1), 0.0)
        lo = np.minimum(E.min(axis=1), 0.0)
        return float(np.max(hi - lo))

    def start(self):
        """Zero slopes; intercepts at the intercept-only MLE (log class-frequency ratios)."""
        coef = np.zeros((self.km1, self.p))
        intercept = np.zeros(self.km1)
        if self.fit_intercept:
            freq = np.bincount(self.y, weights=self.w, minlength=self.km1 + 1)
            freq = np.maximum(freq / freq.sum(), 1e-12)
            intercept = np.log(freq[:-1] / freq[-1])
        return self.join(coef, intercept)

    def preconditioner(self):
        """The :class:`_KroneckerPreconditioner` of this problem (start-point Hessian)."""
        d = self.d
        step = _precond_step(d.n, self.q)
        Xs = (d.csr if d.sparse else d.dense)[::step]
        freq = np.bincount(self.y, weights=self.w, minlength=self.km1 + 1)
        return _KroneckerPreconditioner(Xs, self.w[::step], freq, self.lam, self.fit_intercept)

    def certifies_separation(self, direction):
        """Whether ``direction`` (a flat parameter vector) weakly increases every
        row's logit margin of its observed class over every other class and
        strictly increases some: a certificate that the MLE does not exist."""
        coef, intercept = self.split(direction)
        E = np.column_stack([self.d.logits(coef, intercept), np.zeros(self.d.n)])
        keep = self.w > 0
        E = E[keep]
        own = E[np.arange(E.shape[0]), self.y[keep]]
        margins = own[:, None] - E
        scale = float(np.max(np.abs(E))) if E.size else 0.0
        if not scale > 0:
            return False
        return bool(margins.min() >= -1e-9 * scale and margins.max() > 1e-6 * scale)

    def separable(self):
        """Whether a nonzero direction weakly increases every observed class's
        logit margin (the MLE does not exist), decided by a linear programme."""
        import scipy.sparse as sp
        from scipy.optimize import linprog

        Xt = self.d.with_ones() if self.fit_intercept else (
            self.d.csr if self.d.sparse else sp.csr_matrix(self.d.dense))
        keep = self.w > 0
        Xt = Xt[keep]
        y = self.y[keep]
        K = self.km1 + 1
        rows = []
        for k in range(K):
            other = y != k
            if not np.any(other):
                continue
            XR = Xt[other]
            yk = y[other]
            blocks = [sp.diags((yk == c).astype(float) - float(k == c)) @ XR
                      for c in range(self.km1)]
            rows.append(sp.hstack(blocks, format="csr"))
        A = sp.vstack(rows, format="csr")  # margins A d >= 0
        c = -np.asarray(A.sum(axis=0)).ravel()
        scale = max(1.0, float(np.max(np.abs(Xt.data))) if Xt.nnz else 1.0)
        try:
            res = linprog(c, A_ub=-A, b_ub=np.zeros(A.shape[0]), bounds=(-1.0, 1.0),
                          method="highs")
        except Exception:  # pragma: no cover - solver failure: stay conservative
            return False
        return bool(res.status == 0 and -res.fun > 1e-7 * scale)


# --------------------------------------------------------------------------- result

@dataclass
class MultinomialResult:
    """A fitted multinomial logistic regression.

    Attributes
    ----------
    coef : ndarray, shape (K-1, p)
        Slopes of the non-reference classes (the last class is the reference).
    intercept : ndarray, shape (K-1,)
        Intercepts (zeros when ``fit_intercept=False``).
    classes : ndarray, shape (K,)
        Sorted class labels.
    lam : float
        L2 penalty used.
    fit_intercept : bool
    objective : float
        ``-(1/n) loglik + (lam/2) ||coef||^2`` at the solution.
    loss : float
        Mean negative log-likelihood at the solution.
    n_iter : int
        Solver iterations.
    converged : bool
        Whether the stopping rule was met (``False`` if separation stopped it).
    history : ndarray
        Objective at the start and after every iteration.
    solver : str
        ``"newton"``, ``"lbfgs"`` or ``"lbfgs+newton"`` (``solver="auto"`` up to
        1500 parameters).
    separated : bool
        Whether the classes were found (quasi-)separable (``lam == 0`` only):
        then the MLE does not exist and the coefficients are only a finite
        point along a diverging path.
    message : str
        Why the solver stopped.
    """

    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    lam: float
    fit_intercept: bool
    objective: float
    loss: float
    n_iter: int
    converged: bool
    history: np.ndarray
    solver: str
    separated: bool = False
    message: str = ""
    info: dict = field(default_factory=dict, repr=False)

    @property
    def n_features_in_(self):
        return self.coef.shape[1]

    def _design(self, X):
        d = _Design(X, "X")
        if d.p != self.coef.shape[1]:
            raise ValueError(f"X has {d.p} features, but the model was fitted with "
                             f"{self.coef.shape[1]} features")
        return d

    def decision_function(self, X):
        """Logits of all K classes, shape (n, K) (the reference column is 0)."""
        d = self._design(X)
        E = d.logits(self.coef, self.intercept)
        return np.column_stack([E, np.zeros(d.n)])

    def predict_proba(self, X):
        """Class probabilities, shape (n, K), columns in the order of ``classes``."""
        d = self._design(X)
        with threads_for(d.n * (d.p + 1) * self.coef.shape[0]):
            return d.proba(np.ascontiguousarray(self.coef), np.ascontiguousarray(self.intercept))

    def predict(self, X):
        """Most probable class label of each row."""
        return self.classes[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y):
        """Accuracy: the fraction of rows whose predicted label equals ``y``."""
        y = _check_y(y)
        pred = self.predict(X)
        check_consistent_length(X=pred, y=y)
        return float(np.mean(pred == y))


# --------------------------------------------------------------------------- public API

def _setup(X, y, lam, fit_intercept, sample_weight, classes=None):
    lam = check_scalar(lam, "lam", lo=0.0)
    if not isinstance(fit_intercept, (bool, np.bool_)):
        raise TypeError(f"fit_intercept must be a bool, got {type(fit_intercept).__name__}")
    design = _Design(X, "X")
    y = _check_y(y)
    if y.shape[0] != design.n:
        raise ValueError(f"inconsistent lengths: X={design.n}, y={y.shape[0]}")
    classes, codes = _encode(y, classes)
    w = _check_weights(sample_weight, design.n)
    return _Problem(design, codes, w, len(classes), lam, bool(fit_intercept)), classes


def fit(X, y, *, lam=0.0, fit_intercept=True, solver="auto", sample_weight=None,
        max_iter=None, tol=None, gtol=None, check_separation=True, verbose=False,
        callback=None, warm_start=None, client=None):
    """Fit a multinomial logistic regression with an optional L2 penalty.

    Parameters
    ----------
    X : array-like of shape (n, p) or scipy.sparse matrix, or dask array
        Features (sparse input is converted to CSR). A dask array (row
        chunks) is fitted on the current ``dask.distributed`` client by
        :func:`fastgrad.dask.fit_multinomial` (same objective and solvers;
        no separation check there).
    y : array-like of shape (n,)
        Class labels (any sortable values); at least two distinct classes.
        The largest label is the reference class.
    lam : float, default=0.0
        L2 penalty ``(lam/2) ||coef||^2`` (intercepts not penalised).
    fit_intercept : bool, default=True
    solver : {"auto", "newton", "lbfgs"}, default="auto"
        ``"newton"``: damped Newton (dense ``(K-1)(p+1)`` Hessian, Cholesky
        solve; the first one or two Hessians from a random quarter / half of
        the rows). ``"lbfgs"``: L-BFGS in coordinates whitened by the Hessian
        at the start point, ``A (x) G`` with ``A = diag(pi) - pi pi^T`` (class
        frequencies ``pi``) and ``G`` the Gram matrix of ``[X, 1]`` on an
        evenly strided sample of at least ``max(2048, 8 (p+1))`` rows (its
        diagonal only beyond 2000 columns): a change of variables, so the
        optimum is the same. ``"auto"``: that L-BFGS, then, up to 1500
        parameters, exact Newton steps from its end point (usually a single
        Hessian), which bring Newton's final accuracy; beyond 1500 parameters
        the L-BFGS alone (a Hessian costs ``n ((K-1)(p+1))^2 / 2``).
    sample_weight : array-like of shape (n,), optional
        Non-negative row weights (normalised to sum to ``n``).
    max_iter : int, optional
        Default 100 for Newton, 1000 for L-BFGS and ``"auto"`` (both of its
        phases together).
    tol : float, optional
        Newton and the Newton phase of ``"auto"``: stop when half the squared
        Newton decrement is at most ``tol * max(1, |objective|)`` (default
        1e-10); L-BFGS: relative objective change (default 1e-12).
    gtol : float, optional
        Stop when ``max|grad| <= gtol * max(1, max|grad at start|)``
        (default 1e-12 for Newton and ``"auto"``, whose decrement rule usually
        stops them first, and 1e-7 for L-BFGS, whose gradient is the one in
        the whitened coordinates). The L-BFGS phase of ``"auto"`` uses the
        L-BFGS defaults.
    check_separation : bool, default=True
        With ``lam == 0``, detect (quasi-)separation (log-odds growing without
        bound, confirmed by a linear programme), stop and warn.
    verbose : bool, default=False
        Show progress.
    callback : callable, optional
        ``callback(iteration, state)`` with ``state`` a dict holding ``coef``
        and ``intercept``; returning ``True`` stops the fit.
    warm_start : tuple (coef, intercept), optional
        Starting values (default: zero slopes and intercepts at the
        intercept-only fit).
    client : distributed.Client, optional
        Fit on this dask cluster (:func:`fastgrad.dask.fit_multinomial`); a
        NumPy ``X`` is then sent to the workers once, in row blocks. A dask
        array ``X`` uses the current client by default.

    Returns
    -------
    MultinomialResult

    Warns
    -----
    fastgrad.ConvergenceWarning
        When ``max_iter`` is reached.
    PerfectSeparationWarning
        When ``lam == 0`` and the classes are separable (the MLE does not exist).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import multinomial
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 3))
    >>> y = np.digitize(X[:, 0] + rng.standard_normal(300), [-0.5, 0.5])
    >>> res = multinomial.fit(X, y)
    >>> res.coef.shape, res.predict_proba(X).shape
    ((2, 3), (300, 3))
    """
    if client is not None or type(X).__module__.split(".")[0] == "dask":  # on a cluster
        from ..dask import fit_multinomial  # the public distributed fit (needs the fastgrad[dask] extra)
        return fit_multinomial(X, y, lam=lam, fit_intercept=fit_intercept, solver=solver,
                               sample_weight=sample_weight, max_iter=max_iter, tol=tol,
                               gtol=gtol, check_separation=check_separation, verbose=verbose,
                               callback=callback, warm_start=warm_start, client=client)
    from ..solvers import newton

    prob, classes = _setup(X, y, lam, fit_intercept, sample_weight)
    if len(classes) < 2:
        raise ValueError(f"y must contain at least two classes, got {len(classes)}")
    solver = check_choice(solver, "solver", ("newton", "lbfgs", "auto"))
    polish = solver == "auto" and prob.km1 * prob.q <= _NEWTON_MAX_DIM
    if solver == "auto":
        solver = "lbfgs+newton" if polish else "lbfgs"
    newtonish = solver != "lbfgs"
    if max_iter is None:
        max_iter = 100 if solver == "newton" else 1000
    max_iter = check_scalar(max_iter, "max_iter", kind="int", lo=0)
    if tol is None:
        tol = 1e-10 if newtonish else 1e-12
    tol = check_scalar(tol, "tol", lo=0.0)
    if gtol is None:
        gtol = 1e-12 if newtonish else 1e-7
    gtol = check_scalar(gtol, "gtol", lo=0.0)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")

    if warm_start is None:
        theta0 = prob.start()
    else:
        try:
            c0, i0 = warm_start
        except (TypeError, ValueError):
            raise TypeError("warm_start must be a pair (coef, intercept)") from None
        c0 = as_float_array(c0, "warm_start coef", ndim=2)
        i0 = as_float_array(i0, "warm_start intercept", ndim=1)
        if c0.shape != (prob.km1, prob.p) or i0.shape != (prob.km1,):
            raise ValueError(f"warm_start must have shapes ({prob.km1}, {prob.p}) and "
                             f"({prob.km1},), got {c0.shape} and {i0.shape}")
        theta0 = prob.join(c0, i0)

    watch = check_separation and prob.lam == 0.0
    state = {"checked": False, "separated": False, "prev": theta0, "step": np.inf,
             "direction": None, "how": None}

    def separated_now(theta):
        state["checked"] = True
        u = state["direction"]
        if u is not None and prob.certifies_separation(u):
            state["how"] = "certificate"
            return True
        state["how"] = "linear programme"
        return prob.separable()

    def cb(it, theta):
        u = theta - state["prev"]
        state["direction"] = u
        state["step"] = float(np.linalg.norm(u)) / max(1.0, float(np.linalg.norm(theta)))
        state["prev"] = theta.copy()
        if watch and not state["checked"] and prob.saturation(theta) > _SATURATION:
            if separated_now(theta):
                state["separated"] = True
                return True
        if callback is not None:
            coef, intercept = prob.split(theta)
            return bool(callback(it, {"coef": coef.copy(), "intercept": intercept.copy()}))
        return False

    name = f"multinomial.fit(solver={solver!r})"
    # a Hessian costs about n q^2 K^2 / 2 inner steps, a gradient n q K
    work = prob.d.n * prob.q * prob.km1 * (prob.q * prob.km1 if newtonish else 1)
    with warnings.catch_warnings(record=True) as caught, threads_for(work), serial_blas():
        warnings.simplefilter("always", ConvergenceWarning)
        if solver == "newton":
            prob._hess_cache = {"P": None, "n_computed": 0, "rows": 0}
            res = newton(prob.fun, theta0, hess=prob.hess,
                         max_iter=max_iter, tol=tol, gtol=gtol, callback=cb, verbose=verbose,
                         name=name)
        elif solver == "lbfgs+newton":
            prob._hess_cache = {"P": None, "n_computed": 0, "rows": 0, "exact": True}
            res = _lbfgs_then_newton(prob.fun, prob.hess, prob.preconditioner(), theta0, cb,
                                     max_iter=max_iter, tol=tol, gtol=gtol, verbose=verbose,
                                     name=name)
        else:
            res = _lbfgs_preconditioned(prob.fun, prob.preconditioner(), theta0, cb,
                                        max_iter=max_iter, tol=tol, gtol=gtol,
                                        verbose=verbose, name=name)
    separated = state["separated"]
    if watch and not separated and not state["checked"]:
        # Under separation Newton's steps keep an O(1) length along the separating
        # direction even as the decrement vanishes, whereas at a genuine optimum
        # the last step is tiny. L-BFGS gives no such signal, but stops under
        # separation only once the log-odds are large.
        if newtonish:
            suspicious = (not res.converged or state["step"] > 1e-4) and \
                prob.saturation(res.x) > _SATURATION_FINAL
        else:
            suspicious = prob.saturation(res.x) > _SATURATION_LBFGS
        if suspicious:
            separated = separated_now(res.x)
    message = res.message
    converged = res.converged and not separated
    if separated:
        message = "classes are separable: the maximum-likelihood estimate does not exist"
        warnings.warn("multinomial.fit: the classes are (quasi-)perfectly separable, so the "
                      "unpenalised maximum-likelihood estimate does not exist; the "
                      "coefficients returned are finite but arbitrary in size. Use lam > 0.",
                      PerfectSeparationWarning, stacklevel=2)
    for wmsg in caught:
        if not (separated and issubclass(wmsg.category, ConvergenceWarning)):
            warnings.warn(wmsg.message, wmsg.category, stacklevel=2)
    coef, intercept = prob.split(res.x)
    # the solvers' objective is the loss at res.x when there is no penalty
    loss = float(res.objective) if prob.lam == 0.0 else prob.loss(coef, intercept)
    info = dict(res.info, separation_check=state["how"])
    cache = getattr(prob, "_hess_cache", None)
    if cache is not None:
        info["n_hessians"] = cache["n_computed"]
        info["hessian_rows"] = cache["rows"]
        prob._hess_cache = None
    return MultinomialResult(coef=coef.copy(), intercept=intercept.copy(), classes=classes,
                             lam=prob.lam, fit_intercept=prob.fit_intercept,
                             objective=float(res.objective), loss=float(loss),
                             n_iter=res.n_iter, converged=bool(converged),
                             history=res.history, solver=solver, separated=bool(separated),
                             message=message, info=info)


def _params(prob, coef, intercept):
    coef = as_float_array(coef, "coef", ndim=2)
    if coef.shape != (prob.km1, prob.p):
        raise ValueError(f"coef must have shape ({prob.km1}, {prob.p}), got {coef.shape}")
    if intercept is None:
        intercept = np.zeros(prob.km1)
    intercept = as_float_array(intercept, "intercept", ndim=1)
    if intercept.shape != (prob.km1,):
        raise ValueError(f"intercept must have shape ({prob.km1},), got {intercept.shape}")
    return coef, intercept


def loss_and_grad(X, y, coef, intercept=None, *, lam=0.0, sample_weight=None, classes=None):
    """Objective ``-(1/n) loglik + (lam/2)||coef||^2`` and its gradient.

    Parameters
    ----------
    X : array-like (n, p) or scipy.sparse matrix
    y : array-like (n,)
        Labels; coded against ``classes`` (default: the sorted unique labels).
    coef : array-like (K-1, p)
    intercept : array-like (K-1,), optional
        Default zeros.
    lam : float, default=0.0
    sample_weight : array-like (n,), optional
    classes : array-like (K,), optional

    Returns
    -------
    objective : float
    grad_coef : ndarray (K-1, p)
    grad_intercept : ndarray (K-1,)
    """
    prob, _ = _setup(X, y, lam, True, sample_weight, classes)
    coef, intercept = _params(prob, coef, intercept)
    f, g = prob.fun(prob.join(coef, intercept))
    G = g.reshape(prob.km1, prob.q)
    return f, G[:, :prob.p].copy(), G[:, prob.p].copy()


def objective(X, y, coef, intercept=None, *, lam=0.0, sample_weight=None, classes=None):
    """Objective value only (see :func:`loss_and_grad`)."""
    return loss_and_grad(X, y, coef, intercept, lam=lam, sample_weight=sample_weight,
                         classes=classes)[0]


def hessian(X, coef, intercept=None, *, lam=0.0, fit_intercept=True, sample_weight=None):
    """Hessian of the objective of :func:`loss_and_grad`.

    Parameters are ordered class by class, ``[coef[0], intercept[0], coef[1], ...]``
    (without the intercepts if ``fit_intercept=False``).

    Returns
    -------
    ndarray, shape ((K-1) q, (K-1) q) with ``q = p + fit_intercept``
    """
    coef = as_float_array(coef, "coef", ndim=2)
    X_ = X if _is_sparse(X) else as_float_array(X, "X", ndim=2)
    n = X_.shape[0]
    dummy_y = np.arange(n) % (coef.shape[0] + 1)  # the Hessian does not depend on y
    prob, _ = _setup(X_, dummy_y, lam, fit_intercept, sample_weight,
                     classes=np.arange(coef.shape[0] + 1))
    coef, intercept = _params(prob, coef, intercept)
    if not fit_intercept and np.any(intercept != 0):
        raise ValueError("intercept must be zero (or None) when fit_intercept=False")
    return prob.hess(prob.join(coef, intercept))
