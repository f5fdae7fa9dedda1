"""The HLSM model, its fit and its lam / dim selection path."""
import time
from dataclasses import dataclass, field

import numpy as np

from . import _multilevel
from .._threads import serial_blas
from .._validation import check_random_state, check_scalar
from ._options import SolverOptions, as_options
from ._problem import (_ExtProblem, _Extras, _Problem, _curvature_scales, _ext_nll_grad, _group_norm_sum,
                       _nll_grad_encoded, _node_scales, _stage_record, fit_shared, solve)
from ._dense import encode_layers
from ._layers import Layers, as_layers, use_sparse

__all__ = [
    "fit", "fit_path", "lam_max", "dyad_covariates", "procrustes_error", "nll_and_grad", "objective", "simulate", "encode_layers",
    "HLSMResult", "HLSMPath", "HLSMTruth",
]


# ----------------------------------------------------------------------------- likelihood

def _check_params(b, eps, alpha, K, n):
    b = np.ascontiguousarray(b, dtype=np.float64)
    eps = np.ascontiguousarray(eps, dtype=np.float64)
    alpha = np.ascontiguousarray(alpha, dtype=np.float64)
    if b.ndim != 2 or b.shape[0] != n:
        raise ValueError(f"b must have shape (n, d) = ({n}, d), got {b.shape}")
    d = b.shape[1]
    if eps.shape != (K, n, d):
        raise ValueError(f"eps must have shape (K, n, d) = {(K, n, d)}, got {eps.shape}")
    if alpha.shape != (K,):
        raise ValueError(f"alpha must have shape (K,) = ({K},), got {alpha.shape}")
    for nm, arr in (("b", b), ("eps", eps), ("alpha", alpha)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{nm} contains NaN or infinite values")
    return b, eps, alpha


def nll_and_grad(Y, b, eps, alpha, *, directed=False, sociality=None, sender=None, receiver=None,
                 covariates=None, beta=None):
    """Negative log-likelihood of the HLSM and its gradients.

    Parameters
    ----------
    Y : array_like, shape (K, n, n)
        Multiplex adjacency (see :func:`encode_layers`).
    b : array_like, shape (n, d)
        Shared positions.
    eps : array_like, shape (K, n, d)
        Layer deviations.
    alpha : array_like, shape (K,)
        Layer intercepts.
    directed : bool, default=False
        Sum over ordered pairs i != j (True) or pairs j < i (False).
    sociality : array_like, shape (K, n), optional
        Undirected node effects ``g``: ``eta_ijk += g_ik + g_jk``.
    sender, receiver : array_like, shape (K, n), optional
        Directed node effects: ``eta_ijk += s_ik + r_jk`` (both or neither).
    covariates : array_like, shape (p, n, n), optional
        Dyad covariates (symmetric when undirected); needs ``beta``.
    beta : array_like, shape (K, p), optional
        Covariate coefficients: ``eta_ijk += sum_q beta_kq x_qij``.

    Returns
    -------
    nll : float
    grad_b : ndarray, shape (n, d)
    grad_eps : ndarray, shape (K, n, d)
    grad_alpha : ndarray, shape (K,)
    grad_extra : dict
        Only when node effects or covariates are given: gradients keyed
        ``"sociality"`` or ``"sender"``/``"receiver"``, and ``"beta"``.

    Notes
    -----
    A list of scipy.sparse layers (or a ``SparseLayers``) is evaluated by the
    sparse likelihood (memory O(n K d + edges), no (n, n) array); the result
    equals the dense one up to rounding. Covariates need dense layers.
    """
    Yenc = as_layers(Y, directed=directed)
    K, n, _ = Yenc.shape
    b, eps, alpha = _check_params(b, eps, alpha, K, n)
    extra = any(v is not None for v in (sociality, sender, receiver, covariates, beta))
    if not extra:
        return _nll_grad_encoded(Yenc, b, eps, alpha)
    so, ro, ex, beta = _check_extra_params(Yenc, directed, sociality, sender, receiver, covariates, beta)
    nll, gz, ga, gs, gr, gb = _ext_nll_grad(Yenc, b[None] + eps, alpha, so, ro, ex, beta)
    out = {}
    if sociality is not None:
        out["sociality"] = gs
    if sender is not None:
        out["sender"], out["receiver"] = gs, gr
    if ex.p:
        out["beta"] = gb
    return nll, gz.sum(axis=0), gz, ga, out


def _check_extra_params(Yenc, directed, sociality, sender, receiver, covariates, beta):
    K, n = Yenc.shape[0], Yenc.shape[1]

    def eff(v, nm):
        v = np.ascontiguousarray(v, dtype=np.float64)
        if v.shape != (K, n):
            raise ValueError(f"{nm} must have shape (K, n) = {(K, n)}, got {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError(f"{nm} contains NaN or infinite values")
        return v
    if directed and sociality is not None:
        raise ValueError("directed data have sender and receiver effects, not sociality")
    if not directed and (sender is not None or receiver is not None):
        raise ValueError("undirected data have sociality effects, not sender/receiver")
    if (sender is None) != (receiver is None):
        raise ValueError("sender and receiver must be given together")
    if sociality is not None:
        so = ro = eff(sociality, "sociality")
    elif sender is not None:
        so, ro = eff(sender, "sender"), eff(receiver, "receiver")
    else:
        so = ro = np.zeros((K, n))
    if (covariates is None) != (beta is None):
        raise ValueError("covariates and beta must be given together")
    X = None
    if covariates is not None:
        if Yenc.is_sparse:
            raise ValueError("covariates need dense layers (the sparse likelihood does not take covariates)")
        X = _check_covariates(covariates, n, directed)
        beta = np.ascontiguousarray(beta, dtype=np.float64)
        if beta.shape != (K, X.shape[0]):
            raise ValueError(f"beta must have shape (K, p) = {(K, X.shape[0])}, got {beta.shape}")
        if not np.isfinite(beta).all():
            raise ValueError("beta contains NaN or infinite values")
    else:
        beta = np.zeros((K, 0))
    return so, ro, _Extras("layer", 0.0, directed, K, n, X), beta


def objective(Y, b, eps, alpha, lam, *, directed=False):
    """Penalised objective ``nll + lam * sum_k sum_i ||eps_ik||_2``.

    Parameters are as for :func:`nll_and_grad` (sparse layers included), plus ``lam >= 0``.
    """
    lam = check_scalar(lam, "lam", lo=0.0)
    Yenc = as_layers(Y, directed=directed)
    K, n, _ = Yenc.shape
    b, eps, alpha = _check_params(b, eps, alpha, K, n)
    return Yenc.nll(b[None] + eps, alpha) + lam * _group_norm_sum(eps)


#: Sociality parametrisations accepted by :func:`fit` (see its ``sociality`` parameter).
SOCIALITY_MODES = ("layer", "shared")
#: Default ridge on the sociality effects (see :func:`fit`).
SOCIALITY_RIDGE = 1.0

def _make_evaluator(client, Yenc, directed):
    from ..dask._hlsm import make_evaluator
    return make_evaluator(client, Yenc, directed)



# ----------------------------------------------------------------------------- results

def _check_pairs(pairs, K, n):
    """Validate ``pairs = (k, i, j)`` of :meth:`HLSMResult.predict_proba`; int64 1-D arrays."""
    if not isinstance(pairs, (tuple, list)) or len(pairs) != 3:
        raise TypeError("pairs must be a tuple (k, i, j) of integer arrays")
    out = []
    for nm, a, hi in zip("kij", pairs, (K, n, n)):
        arr = np.asarray(a)
        if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
            raise TypeError(f"pairs: {nm} must be an integer array, got dtype {arr.dtype}")
        if arr.ndim > 1:
            raise ValueError(f"pairs: {nm} must be 1-dimensional, got shape {arr.shape}")
        arr = arr.astype(np.int64).ravel()
        if arr.size and (arr.min() < 0 or arr.max() >= hi):
            raise ValueError(f"pairs: {nm} has values outside [0, {hi})")
        out.append(arr)
    try:
        k, i, j = np.broadcast_arrays(*out)
    except ValueError:
        raise ValueError("pairs: k, i and j must have the same length") from None
    return k, i, j


@dataclass
class HLSMResult:
    """A fitted hierarchical latent space model.

    Attributes
    ----------
    b : ndarray, shape (n, d)
        Shared positions, centred (column means zero).
    eps : ndarray, shape (K, n, d)
        Layer deviations; a row of exact zeros means the node sits at its
        shared position in that layer.
    alpha : ndarray, shape (K,)
        Layer intercepts.
    z : ndarray, shape (K, n, d)
        Layer positions ``b + eps``.
    lam : float
        Group-lasso penalty used.
    objective : float
        Penalised objective at the solution.
    nll : float
        Negative log-likelihood at the solution.
    n_iter : int
        Proximal-gradient iterations (after the L-BFGS stages of a multilevel start).
    converged : bool
        Whether the stopping rule was met.
    history : ndarray
        Objective after each iteration (never increasing).
    directed : bool
        Whether the data were treated as directed.
    n_obs : int
        Number of observed dyads entering the likelihood.
    nodes, layers : list of str or None
        Names, when the data came with names.
    fit_time : float
        Wall-clock seconds spent in :func:`fit`.
    stages : dict
        Per solver stage (``"multilevel start"``, ``"shared L-BFGS"``,
        ``"smoothed L-BFGS"``, ``"quasi-Newton"``, ``"proximal gradient"``):
        iterations, function evaluations and seconds (``"quasi-Newton"``: the
        L-BFGS rounds of :class:`SolverOptions`, also its ``"smoothed rounds"``).
    position_ridge : float
        The ridge on the shared positions used (``fit``'s ``position_ridge``; 0: none).
    """

    b: np.ndarray
    eps: np.ndarray
    alpha: np.ndarray
    z: np.ndarray
    lam: float
    objective: float
    nll: float
    n_iter: int
    converged: bool
    history: np.ndarray
    directed: bool = False
    n_obs: int = 0
    nodes: list = None
    layers: list = None
    fit_time: float = 0.0
    layer_nll: np.ndarray = field(default=None, repr=False)
    weights: np.ndarray = field(default=None, repr=False)
    stages: dict = field(default_factory=dict, repr=False)
    sociality: np.ndarray = field(default=None, repr=False)
    sender: np.ndarray = field(default=None, repr=False)
    receiver: np.ndarray = field(default=None, repr=False)
    beta: np.ndarray = field(default=None, repr=False)
    covariates: np.ndarray = field(default=None, repr=False)
    sociality_mode: str = None
    position_ridge: float = 0.0

    @property
    def deviating(self):
        """Boolean (K, n): whether node i has a non-zero deviation in layer k."""
        return np.any(self.eps != 0.0, axis=-1)

    @property
    def loglik(self):
        """Log-likelihood at the solution (``-nll``)."""
        return -self.nll

    @property
    def df(self):
        """Degrees of freedom: positions less rigid motions, intercepts, non-zero deviations,
        node effects (less one per layer and kind) and covariate coefficients."""
        K, n, d = self.eps.shape
        df = n * d - d * (d + 1) // 2 + K + d * int(self.deviating.sum())
        per = K if self.sociality_mode == "layer" else 1
        if self.sociality_mode is not None:  # effects; their layer means are absorbed by alpha
            df += per * (n - 1) * (2 if self.directed else 1)
        if self.beta is not None:
            df += self.beta.size
        return df

    @property
    def bic(self):
        """Bayesian information criterion ``2 nll + df log(n_obs)``."""
        return 2.0 * self.nll + self.df * np.log(max(self.n_obs, 1))

    def linear_predictor(self, pairs=None):
        """``eta_ijk = alpha_k [+ g_ik + g_jk | + s_ik + r_jk] [+ sum_p beta_kp x_pij] - ||z_ik - z_jk||^2``.

        Same ``pairs`` argument and shapes as :meth:`predict_proba` (the
        diagonal of the full array is 0).
        """
        K, n, d = self.z.shape
        so, ro = self._offsets()
        if pairs is None:
            diff = self.z[:, :, None, :] - self.z[:, None, :, :]
            eta = self.alpha[:, None, None] - np.einsum("kijc,kijc->kij", diff, diff)
            if so is not None:
                eta += so[:, :, None] + ro[:, None, :]
            if self.beta is not None and self.beta.size:
                eta += np.einsum("kp,pij->kij", self.beta, self.covariates)
            for k in range(K):
                np.fill_diagonal(eta[k], 0.0)
            return eta
        k, i, j = _check_pairs(pairs, K, n)
        diff = self.z[k, i] - self.z[k, j]
        eta = self.alpha[k] - (diff * diff).sum(axis=-1)
        if so is not None:
            eta += so[k, i] + ro[k, j]
        if self.beta is not None and self.beta.size:
            eta += (self.beta[k] * self.covariates[:, i, j].T).sum(axis=-1)
        return eta

    def _offsets(self):
        """(K, n) sender and receiver offsets (both ``sociality`` if undirected), or (None, None)."""
        if self.sociality is not None:
            return self.sociality, self.sociality
        if self.sender is not None:
            return self.sender, self.receiver
        return None, None

    def predict_proba(self, pairs=None):
        """Link probabilities ``P(y_ijk = 1)``.

        Parameters
        ----------
        pairs : tuple of three int arrays (k, i, j), optional
            Layers and nodes of the dyads to predict (``i -> j`` when
            directed); equal-length 1-D arrays (scalars broadcast).

        Returns
        -------
        ndarray
            With ``pairs``: shape (m,), one probability per dyad (sociality
            effects and covariates included; ``i == j`` gives 0). Without:
            shape (K, n, n), zero on the diagonal.

        Examples
        --------
        >>> import numpy as np
        >>> from fastgrad import hlsm
        >>> Y, _ = hlsm.simulate(30, 2, random_state=0)
        >>> res = hlsm.fit(Y, lam=5.0, random_state=0)
        >>> p = res.predict_proba((np.array([0, 1]), np.array([3, 4]), np.array([5, 6])))
        >>> bool(np.allclose(p, res.predict_proba()[[0, 1], [3, 4], [5, 6]]))
        True
        """
        if pairs is None and self._offsets()[0] is None and (self.beta is None or not self.beta.size):
            from ..kernels.hlsm import hlsm_pair_probabilities
            return hlsm_pair_probabilities(np.ascontiguousarray(self.z), np.ascontiguousarray(self.alpha))
        eta = self.linear_predictor(pairs)
        p = 0.5 * (1.0 + np.tanh(0.5 * eta))
        if pairs is None:
            for k in range(p.shape[0]):
                np.fill_diagonal(p[k], 0.0)
        else:
            k, i, j = _check_pairs(pairs, *self.z.shape[:2])
            p[i == j] = 0.0
        return p

    def summary(self):
        """A per-layer text summary."""
        K = self.alpha.shape[0]
        names = self.layers or [f"layer{k}" for k in range(K)]
        w = max(8, max(len(s) for s in names))
        lines = [
            f"HLSM fit: n={self.b.shape[0]} nodes, K={K} layers, d={self.b.shape[1]}, "
            f"{'directed' if self.directed else 'undirected'}, lam={self.lam:g}",
            f"objective {self.objective:.6f}  log-likelihood {self.loglik:.6f}  BIC {self.bic:.3f}",
            f"iterations {self.n_iter}  converged {self.converged}  time {self.fit_time:.3f}s",
            f"{'layer':<{w}s} {'alpha':>9s} {'deviating':>9s} {'loglik':>12s}",
        ]
        dev = self.deviating.sum(axis=1)
        ll = -self.layer_nll if self.layer_nll is not None else np.full(K, np.nan)
        for k in range(K):
            lines.append(f"{names[k]:<{w}s} {self.alpha[k]:9.4f} {dev[k]:9d} {ll[k]:12.4f}")
        return "\n".join(lines)

    def plot(self, **kwargs):
        """Plot shared positions and layer deviations; see :func:`fastgrad.hlsm.plot_hlsm`."""
        from ._plot import plot_hlsm
        return plot_hlsm(self, **kwargs)

    def save(self, path):
        """Save all arrays and scalars to a ``.npz`` file."""
        np.savez(path, b=self.b, eps=self.eps, alpha=self.alpha, z=self.z, lam=self.lam,
                 objective=self.objective, nll=self.nll, n_iter=self.n_iter,
                 converged=self.converged, history=self.history, directed=self.directed,
                 n_obs=self.n_obs, nodes=np.array(self.nodes or [], dtype=str),
                 layers=np.array(self.layers or [], dtype=str))


@dataclass
class HLSMPath:
    """Fits along a decreasing ``lam`` grid (warm-started), with BIC selection.

    Attributes
    ----------
    lams : ndarray
        The grid, decreasing.
    results : list of HLSMResult
        One fit per value of ``lams``.
    bic : ndarray
        BIC of each fit.
    best : HLSMResult
        The fit with the smallest BIC.
    """

    lams: np.ndarray
    results: list
    bic: np.ndarray
    best: HLSMResult


@dataclass
class HLSMTruth:
    """Parameters that generated a :func:`simulate` data set (node effects and
    covariate coefficients None when not simulated)."""

    b: np.ndarray
    eps: np.ndarray
    alpha: np.ndarray
    z: np.ndarray
    deviating: np.ndarray
    sociality: np.ndarray = None
    sender: np.ndarray = None
    receiver: np.ndarray = None
    beta: np.ndarray = None
    covariates: np.ndarray = None

    _offsets = HLSMResult._offsets
    linear_predictor = HLSMResult.linear_predictor

    def probabilities(self):
        """True link probabilities, shape (K, n, n)."""
        if self._offsets()[0] is None and self.beta is None:
            from ..kernels.hlsm import hlsm_pair_probabilities
            return hlsm_pair_probabilities(np.ascontiguousarray(self.z), self.alpha)
        P = 0.5 * (1.0 + np.tanh(0.5 * self.linear_predictor()))
        for k in range(P.shape[0]):
            np.fill_diagonal(P[k], 0.0)
        return P


# ----------------------------------------------------------------------------- fitting

def _check_sociality(sociality):
    if sociality is None or sociality is False:
        return None
    if isinstance(sociality, str) and sociality in SOCIALITY_MODES:
        return sociality
    raise ValueError(f"sociality must be None, 'layer' or 'shared', got {sociality!r}")


def _check_covariates(covariates, n, directed, name="covariates"):
    """(p, n, n) float64 array from an array or a list of (n, n) matrices; diagonal set to 0."""
    if isinstance(covariates, (list, tuple)):
        if len(covariates) == 0:
            raise ValueError(f"{name} must contain at least one (n, n) matrix")
        mats = [A.toarray() if hasattr(A, "toarray") else np.asarray(A) for A in covariates]
        for q, A in enumerate(mats):
            if A.ndim != 2:
                raise ValueError(f"{name}: matrix {q} must be 2-dimensional, got shape {A.shape}")
        shapes = {A.shape for A in mats}
        if len(shapes) != 1:
            raise ValueError(f"{name}: matrices must all have shape (n, n), got {sorted(shapes)}")
        X = np.stack(mats)
    else:
        X = np.asarray(covariates)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")
    if np.iscomplexobj(X):
        raise TypeError(f"{name} must be real, got complex")
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3 or X.shape[1:] != (n, n):
        raise ValueError(f"{name} must have shape (p, n, n) = (p, {n}, {n}), got {X.shape}")
    X = np.array(X, dtype=np.float64)
    for q in range(X.shape[0]):
        np.fill_diagonal(X[q], 0.0)
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values off the diagonal")
    if not directed and not np.allclose(X, X.transpose(0, 2, 1), rtol=0.0, atol=1e-12 * (1 + np.abs(X).max())):
        raise ValueError(f"{name} must be symmetric (x_qij = x_qji) for undirected data")
    return X


def _effects_fields(ex, v, beta):
    """HLSMResult fields of the fitted node effects and covariate coefficients."""
    out = {"sociality_mode": ex.mode}
    if ex.mode is not None:
        so, ro = ex.offsets(v)
        if ex.directed:
            out["sender"], out["receiver"] = so.copy(), ro.copy()
        else:
            out["sociality"] = so.copy()
    if ex.p:
        out["beta"] = np.asarray(beta, dtype=np.float64).reshape(ex.K, ex.p).copy()
        out["covariates"] = ex.X
    return out


def _warm_effects(init, ex, v0, beta0):
    """Effects and coefficients of a warm start (zeros where it has none or they do not fit)."""
    so, ro = init._offsets()
    if ex.mode is not None and so is not None and getattr(init, "sociality_mode", None) == ex.mode \
            and so.shape == (ex.K, ex.n):
        parts = [so, ro] if ex.directed else [so]
        if ex.mode == "shared":
            parts = [q[0] for q in parts]
        v0 = np.concatenate([np.ravel(q) for q in parts])
    if ex.p and init.beta is not None and init.beta.shape == (ex.K, ex.p):
        beta0 = init.beta.copy()
    return v0, beta0


def dyad_covariates(attributes, kind="absdiff"):
    """Dyad covariates from node attributes (latentnet's ``absdiff``, ``nodematch``, ``nodecov``).

    Parameters
    ----------
    attributes : array_like, shape (n,) or (n, m)
        One or ``m`` attributes per node (numbers; any values for ``"same"``).
    kind : {"absdiff", "same", "sum"} or sequence of them, default="absdiff"
        Per attribute: ``|a_i - a_j|``, ``1[a_i == a_j]`` or ``a_i + a_j``.

    Returns
    -------
    ndarray, shape (m, n, n)
        Symmetric, zero diagonal: pass as ``covariates`` to :func:`fit`.

    Examples
    --------
    >>> from fastgrad import hlsm
    >>> X = hlsm.dyad_covariates([1.0, 3.0, 3.0], kind="absdiff")
    >>> X.shape, float(X[0, 0, 1])
    ((1, 3, 3), 2.0)
    >>> hlsm.dyad_covariates(["a", "b", "a"], kind="same")[0].astype(int).tolist()
    [[0, 0, 1], [0, 0, 0], [1, 0, 0]]
    """
    A = np.asarray(attributes)
    if A.ndim == 1:
        A = A[:, None]
    if A.ndim != 2 or A.shape[0] < 2:
        raise ValueError(f"attributes must have shape (n,) or (n, m) with n >= 2, got {A.shape}")
    n, m = A.shape
    kinds = [kind] * m if isinstance(kind, str) else list(kind)
    if len(kinds) != m:
        raise ValueError(f"kind: got {len(kinds)} kinds for {m} attributes")
    out = np.empty((m, n, n))
    for q, kd in enumerate(kinds):
        col = A[:, q]
        if kd == "same":
            out[q] = (col[:, None] == col[None, :])
        elif kd in ("absdiff", "sum"):
            try:
                c = col.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"attributes: column {q} must be numeric for kind={kd!r}") from None
            if not np.isfinite(c).all():
                raise ValueError(f"attributes: column {q} has NaN or infinite values")
            out[q] = np.abs(c[:, None] - c[None, :]) if kd == "absdiff" else c[:, None] + c[None, :]
        else:
            raise ValueError(f"kind must be 'absdiff', 'same' or 'sum', got {kd!r}")
        np.fill_diagonal(out[q], 0.0)
    return out


def fit(Y, lam, *, dim=2, directed=False, init="auto", max_iter=5000, tol=1e-8, gtol=1e-4,
        random_state=None, verbose=False, callback=None, accelerate=True, weights=None, sparse="auto",
        client=None, sociality="layer", sociality_ridge=SOCIALITY_RIDGE, covariates=None, solver_options=None,
        position_ridge=0.0):
    """Fit the HLSM by penalised maximum likelihood (accelerated proximal gradient).

    Parameters
    ----------
    Y : array_like, shape (K, n, n), sequence of K (n, n) matrices, or Multiplex
        Entries 0/1, NaN for a missing dyad; the diagonal is ignored. NumPy
        arrays and scipy.sparse matrices are accepted.
    lam : float
        Group-lasso penalty on each deviation vector ``eps_ik`` (``lam >= 0``).
        At or above :func:`lam_max` every deviation is exactly zero.
    dim : int, default=2
        Latent dimension ``d`` (``1 <= dim < n``).
    directed : bool, default=False
        Treat ties as directed (sum over ordered pairs) or undirected
        (symmetric layers, pairs j < i).
    init : {"auto", "mds", "multilevel", "random"} or HLSMResult, default="auto"
        ``"mds"``: classical multidimensional scaling of the geodesic
        distances of the union graph (as latentnet), intercepts from the
        layer densities. ``"multilevel"``, for large networks: fit the
        shared configuration on a random sample of nodes, just large enough
        for the sampled nodes to keep about 30 ties, place every other node
        against it by Newton steps, fit the shared configuration of all
        nodes by L-BFGS, then the penalised model with the penalty
        Huber-smoothed (width 0.01) by L-BFGS; proximal gradient then only
        settles which deviations are exactly zero (tuned by
        ``solver_options``, see :class:`SolverOptions`). The L-BFGS stages use the float32
        pass over pairs, proximal gradient float64. Falls back to ``"mds"``
        when the graph is too sparse for a sample. ``"auto"``:
        ``"multilevel"`` from 4000 nodes, ``"mds"`` below. ``"random"``: Gaussian shared
        positions drawn with ``random_state``. An :class:`HLSMResult`
        warm-starts from its values.
    max_iter : int, default=5000
        Maximum proximal-gradient iterations.
    tol : float, default=1e-8
        Relative objective change at which to stop (with ``gtol``). The
        solver works in per-node preconditioned coordinates (each node's
        position and deviations scaled by its degree, see ``_node_scales``),
        which cuts the iterations on large-diameter graphs several-fold; on
        such graphs the last digits still come slowly. Measured at n=1000
        (K=3, 1% density, lam=5): the per-iteration relative change first
        falls below 1e-6 after 55 iterations, 0.8 nats above the optimum of
        an objective of 5.2e4; below 1e-7 after 87 iterations, 0.28 nats above;
        at n=2000 below 1e-7 after 123 iterations, 0.44 nats above an
        objective of 1.7e5, while ``gtol=1e-4`` holds only after 1627. For
        large networks ``tol=1e-7, gtol=None`` (stop on the objective change
        alone) is therefore a sound, much cheaper choice.
    gtol : float, default=1e-4
        Relative size of the proximal gradient mapping at which to stop.
        With ``lam = 0`` the layers decouple and a node with very few ties in
        a layer has nearly flat directions, so convergence can be slow.
    random_state : None, int or numpy.random.Generator
        Seed for ``init="random"`` and the MDS tie-breaking jitter; a fixed
        value reproduces a fit exactly.
    verbose : bool, default=False
        Show progress.
    callback : callable, optional
        ``callback(iteration, state)`` with ``state`` a dict of ``b``, ``eps``,
        ``alpha``; return True to stop.
    accelerate : bool, default=True
        FISTA momentum (with restart); False gives plain proximal gradient.
    weights : array_like of shape (K, n), optional
        Per-group penalty weights ``w_ik`` (penalty ``lam * sum w_ik ||eps_ik||``);
        ``inf`` keeps a deviation at zero. Used by the adaptive group lasso of
        :func:`fit_path`.
    sparse : {"auto", True, False}, default="auto"
        Sparse likelihood (see :class:`Layers`): memory O(n K d +
        edges), never an (n, n) array; a dense pass over pairs from the
        positions alone plus a correction over the ties and missing dyads.
        Needs ``Y`` as a list of scipy.sparse matrices; ``"auto"`` uses it
        for such input when ``n >= 2000``. Same results as the dense path
        up to rounding; ``init="mds"`` uses pivot MDS when n > 2000.
    client : distributed.Client, optional
        Evaluate the likelihood on the client's workers, each holding a block of
        rows of ``Y`` (:func:`fastgrad.dask.fit_hlsm`); dense layers only. The
        initialisation and the solver run here: the result equals the local fit
        to solver tolerance.
    sociality : {"layer", "shared", None}, default="layer"
        Node effects (degree heterogeneity, latentnet's ``rsociality`` /
        ``rsender`` + ``rreceiver``): undirected ``eta_ijk = alpha_k + g_ik +
        g_jk - ||z_ik - z_jk||^2``, directed ``alpha_k + s_ik + r_jk - ||.||^2``.
        ``"layer"``: one effect per node and layer; ``"shared"``: one per
        node for all layers; None: no node effects (the model without them,
        exactly). A ridge ``sociality_ridge / 2 * sum of squared effects``
        keeps them finite for nodes with no (or only) ties and identifies
        them: at the optimum each layer's effects have mean zero (alpha
        carries the mean). Chosen by held-out prediction (10% of the pairs of
        every layer hidden, AUC per layer averaged, 3 splits, dim=2): on the
        Aarhus network (lam=3) none 0.902, "shared" 0.916, "layer" 0.928;
        Florentine 0.733 / 0.707 / 0.763; Krackhardt (directed) 0.702 /
        0.784 / 0.827 -- "layer" with ridge 1 was best or within 0.02 of the
        best ridge (0.3, 1, 3) on every network, and had the lowest log-loss.
        Results: ``res.sociality`` (K, n) or ``res.sender``/``res.receiver``.
    sociality_ridge : float, default=1.0
        Ridge penalty on the node effects (``>= 0``; 0 only for networks
        where every node has ties and non-ties in every layer).
    covariates : array_like, shape (p, n, n), or list of p (n, n) matrices, optional
        Dyad covariates (latentnet's ``edgecov``; see :func:`dyad_covariates`),
        symmetric if undirected, the diagonal ignored; one coefficient per
        layer and covariate, ``eta_ijk += sum_q beta_kq x_qij``, in
        ``res.beta`` (K, p). Dense layers only: sparse input with covariates is
        refused (it would need the covariates at every pair, O(p n^2) memory).

    position_ridge : float, default=0.0
        Ridge ``position_ridge / 2 * ||b||^2`` on the shared positions (``>= 0``): a
        Gaussian prior N(0, I / position_ridge) on them, as latentnet's prior on
        positions. It keeps the configuration of small networks from spreading
        out to overfit; :func:`fit_cv` uses 2 by default. Its
        gradient is exact, and the returned ``objective`` includes it.
    solver_options : dict or SolverOptions, optional
        Tuning of the solver stages (L-BFGS rounds, preconditioning, the
        multilevel start); see :class:`SolverOptions`. The defaults are the
        measured choices.

    Returns
    -------
    HLSMResult

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import hlsm
    >>> Y, truth = hlsm.simulate(60, 2, random_state=1)
    >>> res = hlsm.fit(Y, lam=5.0, random_state=1)
    >>> res.b.shape, res.eps.shape
    ((60, 2), (2, 60, 2))
    """
    t0 = time.perf_counter()
    lam = check_scalar(lam, "lam", lo=0.0)
    opts = as_options(solver_options)
    if not isinstance(directed, (bool, np.bool_)):
        raise TypeError(f"directed must be a bool, got {type(directed).__name__}")
    directed = bool(directed)
    Yenc = as_layers(Y, directed=directed, sparse=use_sparse(Y, sparse))
    K, n, _ = Yenc.shape
    dim = check_scalar(dim, "dim", kind="int", lo=1)
    if dim >= n:
        raise ValueError(f"dim must be smaller than the number of nodes n={n}, got {dim}")
    max_iter = check_scalar(max_iter, "max_iter", kind="int", lo=1)
    tol = check_scalar(tol, "tol", lo=0.0)
    rng = check_random_state(random_state)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    weights = _check_weights(weights, K, n)
    ex = _model_extras(Yenc, sociality, sociality_ridge, covariates, client, position_ridge)
    evaluator = None if client is None else _make_evaluator(client, Yenc, directed)
    stages = {}
    # BLAS single-threaded (MDS, L-BFGS's small dense algebra): its spinning threads fought
    # Numba's for the cores (fit_cv on Aarhus CS 6.9 s -> 5.3 s)
    with serial_blas():
        start = _start(Yenc, init, dim, weights, ex, rng, evaluator, opts, stages, t0)
        prob, x0 = _make_problem(Yenc, lam, dim, weights, ex, start, rng, opts)
        prob.evaluator = evaluator
        sol = solve(prob, x0, lam=lam, staged=start["staged"], max_iter=max_iter, tol=tol, gtol=gtol,
                    accelerate=accelerate, verbose=verbose, callback=callback, stages=stages, opts=opts)
    return _make_result(Yenc, prob, sol, lam, weights, ex, stages, t0)


def _check_weights(weights, K, n):
    if weights is None:
        return None
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (K, n):
        raise ValueError(f"weights must have shape (K, n) = {(K, n)}, got {weights.shape}")
    if np.isnan(weights).any() or (weights < 0).any():
        raise ValueError("weights must be non-negative (inf allowed), without NaN")
    return weights


def _model_extras(Yenc, sociality, sociality_ridge, covariates, client, position_ridge=0.0):
    """The node effects and covariates of :func:`fit` (an inactive ``_Extras`` without them)."""
    K, n, _ = Yenc.shape
    sociality = _check_sociality(sociality)
    sociality_ridge = check_scalar(sociality_ridge, "sociality_ridge", lo=0.0)
    position_ridge = check_scalar(position_ridge, "position_ridge", lo=0.0)
    Xcov = None
    if covariates is not None:
        if Yenc.is_sparse:
            raise ValueError("covariates need the dense likelihood: pass Y as dense layers or sparse=False "
                             "(the sparse likelihood would need every covariate at every pair, O(n^2 p) memory)")
        Xcov = _check_covariates(covariates, n, Yenc.directed)
    ex = _Extras(sociality, sociality_ridge, Yenc.directed, K, n, Xcov, position_ridge)
    if ex.p and client is not None:
        raise ValueError("dyad covariates are not available with a Dask client")
    return ex


def _start(Yenc, init, dim, weights, ex, rng, evaluator, opts, stages, t0):
    """The starting point of :func:`fit`: a warm start, the multilevel start (then the shared
    configuration by L-BFGS), MDS or random positions. ``staged``: a multilevel start."""
    K, n, _ = Yenc.shape
    v0, beta0 = np.zeros(ex.n_effects), np.zeros((K, ex.p))
    staged = False
    if isinstance(init, HLSMResult):
        if init.eps.shape != (K, n, dim):
            raise ValueError(f"init: warm start has shape {init.eps.shape}, expected {(K, n, dim)}")
        b0, eps0, alpha0 = init.b.copy(), init.eps.copy(), init.alpha.copy()
        v0, beta0 = _warm_effects(init, ex, v0, beta0)
        if weights is not None:
            eps0[np.isinf(weights)] = 0.0
    elif isinstance(init, str) and init in ("auto", "mds", "multilevel"):
        start = None
        if init == "multilevel" or (init == "auto" and n >= opts.multilevel_min_n):
            start = _multilevel.init_multilevel(Yenc, Yenc.directed, dim, rng, opts)
        staged = start is not None
        if staged:  # then the shared configuration on all nodes, by L-BFGS
            stages["multilevel start"] = {"seconds": time.perf_counter() - t0}
            t1 = time.perf_counter()
            b0, alpha0, shared = fit_shared(Yenc, Yenc.directed, *start, rng, opts, tol=opts.shared_tol,
                                            max_iter=opts.shared_max_iter, evaluator=evaluator)
            stages["shared L-BFGS"] = _stage_record(shared, t1)
        else:
            b0, alpha0 = Yenc.init_mds(dim, rng)
        eps0 = np.zeros((K, n, dim))
    elif init == "random":
        b0, alpha0 = _init_random(Yenc, dim, rng)
        eps0 = np.zeros((K, n, dim))
    else:
        raise ValueError(f"init must be 'auto', 'mds', 'multilevel', 'random' or an HLSMResult, got {init!r}")
    return {"b": b0, "eps": eps0, "alpha": alpha0, "effects": v0, "beta": beta0, "staged": staged}


def _make_problem(Yenc, lam, dim, weights, ex, start, rng, opts):
    """The preconditioned problem of :func:`fit` and its starting vector."""
    K, n, _ = Yenc.shape
    directed = Yenc.directed
    b0, eps0, alpha0 = start["b"], start["eps"], start["alpha"]
    scale_b, scale_alpha = _curvature_scales(Yenc, b0 + eps0.mean(axis=0), alpha0, directed, rng)
    node_scale = _node_scales(Yenc, directed, opts.node_smooth) if opts.node_precondition else None
    if not ex.active:
        prob = _Problem(Yenc, directed, dim, lam, scale_b, scale_alpha, weights, node_scale)
        return prob, prob.pack(b0, eps0, alpha0)
    ppl = n * (n - 1) / (1 if directed else 2)
    s_g = scale_alpha * np.sqrt((n - 1) / ppl) * (np.sqrt(K) if ex.mode == "shared" else 1.0)
    s_beta = None
    if ex.p:
        off = ~np.eye(n, dtype=bool)
        s_beta = scale_alpha * np.sqrt(np.maximum([np.mean(X[off] ** 2) for X in ex.X], 1e-12))
    prob = _ExtProblem(Yenc, directed, dim, lam, ex, scale_b, scale_alpha, weights, node_scale,
                       scale_effects=s_g, scale_beta=s_beta)
    return prob, prob.pack_all(b0, eps0, alpha0, start["effects"], start["beta"])


def _make_result(Yenc, prob, sol, lam, weights, ex, stages, t0):
    """The :class:`HLSMResult` of a solution: centred positions, per-layer nll, the objective."""
    extra = {}
    if ex.active:
        b, eps, alpha, v, beta = (a.copy() for a in prob.unpack_all(sol.x))
        v, alpha = ex.centre(v, alpha)
        extra = _effects_fields(ex, v, beta)
    else:
        b, eps, alpha = (a.copy() for a in prob.unpack(sol.x))
    b -= b.mean(axis=0)  # the likelihood is translation invariant: centre the shared positions
    z = b[None] + eps
    if ex.active:
        so, ro = ex.offsets(v)
        layer_nll = _ext_nll_grad(Yenc, z, alpha, so, ro, ex, beta, with_grad=False, per_layer=True)[0]
        ridge_term = 0.5 * ex.ridge * float(v @ v) + 0.5 * ex.position_ridge * float((b * b).sum())
    else:
        layer_nll = Yenc.nll(z, alpha, per_layer=True)
        ridge_term = 0.0
    nll = float(layer_nll.sum())
    objective = nll + lam * _group_norm_sum(eps, weights) + ridge_term
    history = sol.history
    if ex.active and history.size and objective < history[-1]:  # after ex.centre
        history = np.append(history, objective)
    return HLSMResult(
        b=b, eps=eps, alpha=alpha.copy(), z=z, lam=lam, objective=objective,
        nll=nll, n_iter=sol.n_iter, converged=sol.converged, history=history, weights=weights,
        directed=Yenc.directed, n_obs=Yenc.n_obs, nodes=Yenc.nodes, layers=Yenc.layer_names,
        fit_time=time.perf_counter() - t0, layer_nll=layer_nll, stages=stages,
        position_ridge=ex.position_ridge, **extra)


def _result_gradients(Yenc, res):
    """``(nll, grad_b, grad_eps, grad_alpha)`` of the likelihood at a fit ``res`` (node effects
    and covariates included): what :func:`lam_max` and the adaptive weights of :func:`fit_path` need."""
    directed = res.directed
    so, ro = res._offsets()
    p = 0 if res.beta is None else res.beta.shape[1]
    if so is None and p == 0:
        return _nll_grad_encoded(Yenc, res.b, res.eps, res.alpha)
    K, n, _ = res.eps.shape
    ex = _Extras("layer" if so is not None else None, 0.0, directed, K, n, res.covariates if p else None)
    if so is None:
        so = ro = np.zeros((K, n))
    nll, gz, ga, _, _, _ = _ext_nll_grad(Yenc, res.b[None] + res.eps, res.alpha, so, ro, ex,
                                         res.beta if p else np.zeros((K, 0)))
    return nll, gz.sum(axis=0), gz, ga


def _init_random(Yenc, dim, rng):
    n = Yenc.shape[1]
    b = rng.standard_normal((n, dim))
    return b - b.mean(axis=0), Yenc.fit_intercepts(b, rng)


def lam_max(Y, *, dim=2, directed=False, init="auto", random_state=None, **fit_kwargs):
    """Smallest penalty at which every deviation is exactly zero.

    Fits the model with ``eps = 0`` (one shared configuration) and returns
    ``max_ik ||d nll / d eps_ik||_2`` there: by the optimality conditions of
    the group lasso, ``eps = 0`` stays optimal for every ``lam >=`` this value.
    Missing dyads (NaN) are left out of the likelihood, as in :func:`fit`.

    Parameters
    ----------
    Y : array_like
        As for :func:`fit`.
    dim, directed, init, random_state, **fit_kwargs
        Passed to :func:`fit`.

    Returns
    -------
    lam_max : float
    shared_fit : HLSMResult
        The fit with all deviations zero (at ``lam = lam_max``).

    Notes
    -----
    Sparse input (a list of scipy.sparse layers) uses the sparse likelihood
    throughout (pass ``sparse=False`` to force the dense path).

    Examples
    --------
    >>> from fastgrad import hlsm
    >>> Y, _ = hlsm.simulate(30, 2, missing=0.1, random_state=0)
    >>> lmax, shared = hlsm.lam_max(Y, random_state=0)
    >>> lmax > 0, bool((shared.eps == 0).all())
    (True, True)
    """
    Yenc = as_layers(Y, directed=directed, sparse=fit_kwargs.pop("sparse", "auto"))
    return _lam_max_encoded(Yenc, dim=dim, directed=directed, init=init, random_state=random_state,
                            **fit_kwargs)


def _lam_max_encoded(Yenc, *, dim, directed, init, random_state, **fit_kwargs):
    with np.errstate(over="ignore"):  # the prox threshold 1e300 / ||eps_ik|| overflows to inf (eps = 0)
        big = fit(Yenc, 1e300, dim=dim, directed=directed, init=init, random_state=random_state, **fit_kwargs)
    _, _, ge, _ = _result_gradients(Yenc, big)
    lmax = float(np.sqrt((ge * ge).sum(axis=-1)).max())
    big.lam = lmax
    pen = _group_norm_sum(big.eps)
    if pen > 0:  # (eps is exactly 0 at lam = 1e300; the ridges stay in the objective)
        big.objective = big.nll + lmax * pen
    return lmax, big


def fit_path(Y, lams=None, *, n_lams=8, lam_min_ratio=0.05, adaptive=False, dim=2,
             directed=False, init="auto", random_state=None, **fit_kwargs):
    """Fit a decreasing grid of penalties with warm starts and pick one by BIC.

    The grid runs geometrically from :func:`lam_max` (all deviations zero) down
    to ``lam_min_ratio * lam_max``; each fit starts from the previous one.
    The selected fit minimises ``BIC = 2 nll + df log(n_obs)`` with
    ``df = n d - d(d+1)/2 + K + d * (number of non-zero deviations)``.
    BIC tends to choose the shared model on real networks; to choose ``lam``
    and ``dim`` for prediction use :func:`fit_cv` (held-out pairs).

    With ``adaptive=True`` a second path follows (adaptive group lasso, Wang &
    Leng 2008): weights ``w_ik = 1 / ||eps_ik||`` from the first path's BIC
    smallest penalty of the first path (``inf`` where that deviation is
    zero), which removes most of the
    small spurious deviations that the plain group lasso keeps while leaving
    large ones nearly unshrunk. The returned path is the second one.

    Parameters
    ----------
    Y : array_like
        As for :func:`fit` (missing dyads as NaN are left out of every fit).
    lams : sequence of float, optional
        Explicit grid (sorted decreasing internally). Not allowed with ``adaptive``.
    n_lams : int, default=8
        Grid size when ``lams`` is not given.
    lam_min_ratio : float, default=0.05
        Smallest penalty relative to ``lam_max``.
    adaptive : bool, default=False
        Run the adaptive (reweighted) second stage.
    dim, directed, init, random_state, **fit_kwargs
        Passed to :func:`fit`.

    Returns
    -------
    HLSMPath

    Notes
    -----
    Sparse input (a list of scipy.sparse layers) uses the sparse likelihood
    for every fit of the path (pass ``sparse=False`` to force the dense path).

    Examples
    --------
    >>> from fastgrad import hlsm
    >>> Y, _ = hlsm.simulate(30, 2, missing=0.1, random_state=0)
    >>> path = hlsm.fit_path(Y, n_lams=3, random_state=0)
    >>> len(path.results), bool(path.lams[0] > path.lams[-1])
    (3, True)
    """
    Yenc = as_layers(Y, directed=directed, sparse=fit_kwargs.pop("sparse", "auto"))
    n_lams = check_scalar(n_lams, "n_lams", kind="int", lo=1)
    lam_min_ratio = check_scalar(lam_min_ratio, "lam_min_ratio", lo=0.0, hi=1.0, lo_open=True)
    kw = dict(dim=dim, directed=directed, random_state=random_state, **fit_kwargs)
    if lams is None:
        lmax, start = _lam_max_encoded(Yenc, init=init, **kw)
        grid = lmax * np.geomspace(1.0, lam_min_ratio, n_lams)
        path = _run_path(Yenc, grid[1:], start, [start], None, kw)
    else:
        if adaptive:
            raise ValueError("lams cannot be given with adaptive=True (the second grid depends on the weights)")
        grid = np.sort(np.asarray(lams, dtype=np.float64))[::-1]
        if grid.size == 0 or not np.isfinite(grid).all() or (grid < 0).any():
            raise ValueError("lams must be a non-empty sequence of finite non-negative numbers")
        path = _run_path(Yenc, grid, init, [], None, kw)
    if adaptive:
        first = path.results[-1]  # the least penalised fit is the initial estimator
        norms = np.linalg.norm(first.eps, axis=-1)
        with np.errstate(divide="ignore"):
            weights = np.where(norms > 0, 1.0 / norms, np.inf)
        _, _, ge, _ = _result_gradients(Yenc, start)
        finite = np.isfinite(weights)
        if finite.any():
            lmax_w = float((np.linalg.norm(ge, axis=-1)[finite] / weights[finite]).max())
            grid = lmax_w * np.geomspace(1.0, lam_min_ratio, n_lams)
            path = _run_path(Yenc, grid, start, [], weights, kw)
    return path


def _run_path(Yenc, grid, start, results, weights, kw):
    """Warm-started fits along ``grid`` on the :class:`Layers` ``Yenc``."""
    results = list(results)
    for lam in grid:
        res = fit(Yenc, float(lam), init=start, weights=weights, **kw)
        results.append(res)
        start = res
    lams = np.array([r.lam for r in results])
    bic = np.array([r.bic for r in results])
    return HLSMPath(lams=lams, results=results, bic=bic, best=results[int(np.argmin(bic))])


# ----------------------------------------------------------------------------- simulation

def simulate(n, K, *, dim=2, alpha=None, deviating_layers=(0,), frac_deviating=1 / 3,
             deviation_scale=1.5, missing=0.0, directed=False, random_state=None, sociality=0.0,
             covariates=None, beta=None):
    """Simulate a multiplex network from the HLSM.

    Shared positions ``b_i ~ N(0, I_d)``; in each layer of ``deviating_layers``
    a random ``frac_deviating`` share of the nodes gets a deviation
    ``eps_ik = deviation_scale * u`` with ``u`` uniform on the unit sphere;
    every other deviation is exactly zero.

    Parameters
    ----------
    n, K : int
        Nodes (``n >= 3``) and layers (``K >= 1``).
    dim : int, default=2
        Latent dimension.
    alpha : array_like of shape (K,), optional
        Intercepts; default ``linspace(0.5, 1.5, K)``.
    deviating_layers : sequence of int, default=(0,)
        Layers in which some nodes deviate.
    frac_deviating : float, default=1/3
        Share of nodes deviating in each of those layers.
    deviation_scale : float, default=1.5
        Length of each deviation vector.
    missing : float, default=0.0
        Share of dyads set to NaN (missing), symmetric if undirected.
    directed : bool, default=False
        Draw each ordered pair independently.
    random_state : None, int or numpy.random.Generator
    sociality : float, default=0.0
        Standard deviation of node effects drawn per node and layer,
        centred within each layer: sociality ``g_ik`` (undirected) or sender
        and receiver ``s_ik``, ``r_ik`` (directed); 0 draws none (and none
        of the random numbers, so old seeds reproduce old data).
    covariates : array_like, shape (p, n, n), optional
        Dyad covariates (symmetric if undirected); needs ``beta``.
    beta : array_like, shape (K, p), optional
        Their coefficients per layer.

    Returns
    -------
    Y : ndarray, shape (K, n, n)
        0/1 adjacency (NaN where missing), zero diagonal.
    truth : HLSMTruth
    """
    n = check_scalar(n, "n", kind="int", lo=3)
    K = check_scalar(K, "K", kind="int", lo=1)
    dim = check_scalar(dim, "dim", kind="int", lo=1)
    frac_deviating = check_scalar(frac_deviating, "frac_deviating", lo=0.0, hi=1.0)
    deviation_scale = check_scalar(deviation_scale, "deviation_scale", lo=0.0)
    missing = check_scalar(missing, "missing", lo=0.0, hi=1.0, hi_open=True)
    rng = check_random_state(random_state)
    alpha = np.linspace(0.5, 1.5, K) if alpha is None else np.asarray(alpha, dtype=np.float64)
    if alpha.shape != (K,):
        raise ValueError(f"alpha must have shape ({K},), got {alpha.shape}")
    b = rng.standard_normal((n, dim))
    b -= b.mean(axis=0)
    eps = np.zeros((K, n, dim))
    dev = np.zeros((K, n), dtype=bool)
    for k in deviating_layers:
        if not 0 <= k < K:
            raise ValueError(f"deviating_layers has {k}, outside 0..{K - 1}")
        idx = rng.choice(n, size=int(round(frac_deviating * n)), replace=False)
        u = rng.standard_normal((idx.size, dim))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        eps[k, idx] = deviation_scale * u
        dev[k, idx] = True
    z = b[None] + eps
    truth = HLSMTruth(b=b, eps=eps, alpha=alpha, z=z, deviating=dev)
    sociality = check_scalar(sociality, "sociality", lo=0.0)
    if sociality > 0:
        draw = [rng.standard_normal((K, n)) * sociality for _ in range(2 if directed else 1)]
        draw = [q - q.mean(axis=1, keepdims=True) for q in draw]
        if directed:
            truth.sender, truth.receiver = draw
        else:
            truth.sociality = draw[0]
    if (covariates is None) != (beta is None):
        raise ValueError("covariates and beta must be given together")
    if covariates is not None:
        truth.covariates = _check_covariates(covariates, n, directed)
        truth.beta = np.asarray(beta, dtype=np.float64)
        if truth.beta.shape != (K, truth.covariates.shape[0]):
            raise ValueError(f"beta must have shape (K, p) = {(K, truth.covariates.shape[0])}, got {truth.beta.shape}")
    P = truth.probabilities()
    Y = (rng.random((K, n, n)) < P).astype(np.float64)
    if not directed:
        Y = np.triu(Y, 1)
        Y = Y + Y.transpose(0, 2, 1)
    if missing > 0:
        M = rng.random((K, n, n)) < missing
        if not directed:
            M = np.triu(M, 1)
            M = M | M.transpose(0, 2, 1)
        Y[M] = np.nan
    for k in range(K):
        np.fill_diagonal(Y[k], 0.0)
    return Y, truth


def procrustes_error(X, Y):
    """RMS distance between ``X`` and ``Y`` after the best rotation/reflection and translation of X.

    Useful to compare fitted positions with the truth (positions are defined
    up to rigid motions).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    Xc, Yc = X - X.mean(axis=0), Y - Y.mean(axis=0)
    U, _, Vt = np.linalg.svd(Xc.T @ Yc)
    R = U @ Vt
    return float(np.sqrt(((Xc @ R - Yc) ** 2).sum(axis=1).mean()))

