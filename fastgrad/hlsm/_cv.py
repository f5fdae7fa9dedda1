"""Held-out pairs for the HLSM: splits, scores and cross-validated selection of ``(dim, lam)``.

Public names (re-exported by :mod:`fastgrad.hlsm`): :func:`holdout_pairs`,
:class:`HeldOutPairs`, :func:`score_pairs`, :func:`roc_auc`, :func:`fit_cv`
and :class:`HLSMCV`.

A *pair* is one dyad ``(k, i, j)`` of layer ``k``: with undirected layers the
unordered pair ``{i, j}`` (stored with ``i < j``; both directions are hidden
together), with directed layers the ordered pair ``i -> j``. Hiding a pair
means setting it to NaN (missing), so it leaves the likelihood entirely.
"""
import dataclasses
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import check_random_state, check_scalar

__all__ = ["holdout_pairs", "HeldOutPairs", "score_pairs", "roc_auc", "fit_cv", "HLSMCV"]

#: Default latent dimensions of :func:`fit_cv` (chosen by measurement, see the README's "Choosing lam").
DEFAULT_DIMS = (1, 2, 3, 4)
#: Default lam grid of :func:`fit_cv`, relative to ``lam_max`` of each dimension:
#: 1 = the shared model (all deviations zero), 0 = independent layers. Independent layers
#: (0) left the default grid: never selected on the bundled networks (held-out AUC 0.60-0.76
#: against 0.82-0.93), they were half of fit_cv's time on Aarhus CS (L-BFGS to convergence
#: of an unregularised deviation per node and layer); pass ``lams`` to include lam = 0.
LAM_RATIOS = (1.0, 0.5, 0.25, 0.1)
METRICS = ("loglik", "auc", "brier")
#: Stopping rule of the fits inside :func:`fit_cv` (``fit_kwargs`` override it). Measured on
#: Aarhus CS (10% held out, dims 2-3, default grid, 5 folds): fit's defaults 101 s, tol=1e-5 10 s,
#: the same selection and held-out AUC within 0.0004; then (issue 12, with the position ridge,
#: ``benchmarks/hlsm_linkpred.py``, 3 splits) tol=1e-4 / max_iter=300 against 1e-5 / 500:
#: whole fit_cv 2.35 s -> 1.37 s on Aarhus CS, the same selections and held-out AUC (0.9348
#: against 0.9344). The refit of the selected model uses :func:`fastgrad.hlsm.fit`'s own defaults.
CV_FIT_DEFAULTS = {"tol": 1e-4, "gtol": None, "max_iter": 300}
#: ``solver_options`` of every fit of :func:`fit_cv` unless given (proximal gradient alone).
CV_SOLVER_OPTIONS = {"quasi_newton": False}
#: Default ``position_ridge`` of :func:`fit_cv` (a N(0, I / 2) prior on the shared positions; see its docstring).
POSITION_RIDGE = 2.0
_P_CLIP = 1e-15


# ----------------------------------------------------------------------------- data helpers

def _is_multiplex(Y):
    return hasattr(Y, "Y") and hasattr(Y, "layers") and hasattr(Y, "nodes")


def _directed_of(Y, directed):
    if directed is None:
        from ._layers import Layers
        directed = bool(getattr(Y, "directed", False)) if (_is_multiplex(Y) or isinstance(Y, Layers)) else False
    if not isinstance(directed, (bool, np.bool_)):
        raise TypeError(f"directed must be a bool or None, got {type(directed).__name__}")
    return bool(directed)


def _input_kind(Y):
    from ._base import is_sparse_input
    from ._layers import Layers
    if isinstance(Y, Layers):
        if Y.is_sparse:
            raise TypeError("Y: held-out pairs need dense Layers (or the layers themselves: array, list of "
                            "matrices or Multiplex), not sparse Layers")
        return "layers"
    if _is_multiplex(Y):
        return "multiplex"
    if is_sparse_input(Y):
        return "sparse"
    return "dense"


def _encode(Y, directed, name="Y"):
    """Dense int8 encoding (1 tie, 0 none, -1 missing or diagonal) of any accepted input."""
    from ._dense import encode_layers
    from ._layers import as_layers
    if _input_kind(Y) == "layers":
        return as_layers(Y, directed=directed, name=name).Y
    return encode_layers(Y, directed=directed, name=name)


def _observed_pairs(enc, directed):
    """All observed pairs ``(k, i, j)`` (``i < j`` if undirected) and their values."""
    obs = enc >= 0
    if not directed:
        obs = np.triu(obs, 1)  # applies to the last two axes
    k, i, j = np.nonzero(obs)
    return k.astype(np.int64), i.astype(np.int64), j.astype(np.int64), enc[k, i, j].astype(np.int8)


def _stratified_ranks(k, y, K, rng):
    """Random order inside each stratum (layer, tie or not): ``(stratum, rank, counts)`` per pair."""
    m = k.size
    strata = 2 * k + y.astype(np.int64)
    perm = rng.permutation(m)
    order = perm[np.argsort(strata[perm], kind="stable")]
    counts = np.bincount(strata, minlength=2 * K)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(m, dtype=np.int64)
    rank[order] = np.arange(m) - starts[strata[order]]
    return strata, rank, counts


def _make_folds(k, y, K, n_folds, rng):
    """Fold (0..n_folds-1) of every observed pair, stratified by layer and tie/non-tie."""
    strata, rank, counts = _stratified_ranks(k, y, K, rng)
    offset = rng.integers(0, n_folds, size=counts.size)  # balances fold sizes across strata
    return ((rank + offset[strata]) % n_folds).astype(np.int64)


def _hide(Y, kind, enc, k, i, j, directed):
    """A copy of the data, of the same kind as ``Y``, with pairs ``(k, i, j)`` set to NaN."""
    K, n, _ = enc.shape
    if kind == "layers":
        from ._dense import DenseLayers
        E = enc.copy()
        E[k, i, j] = -1
        if not directed:
            E[k, j, i] = -1
        return DenseLayers.from_encoded(E, directed)
    if kind == "sparse":
        import scipy.sparse as sp
        out = []
        for layer in range(K):
            sel = k == layer
            hi, hj = i[sel], j[sel]
            if not directed:
                hi, hj = np.concatenate([hi, hj]), np.concatenate([hj, hi])
            hidden = hi * n + hj
            E = enc[layer]
            tr, tc = np.nonzero(E == 1)
            keep = ~np.isin(tr * n + tc, hidden)
            mr, mc = np.nonzero(E < 0)
            off = mr != mc
            rows = np.concatenate([tr[keep], mr[off], hi])
            cols = np.concatenate([tc[keep], mc[off], hj])
            data = np.concatenate([np.ones(int(keep.sum())), np.full(int(off.sum()) + hi.size, np.nan)])
            out.append(sp.csr_matrix((data, (rows, cols)), shape=(n, n)))
        return out
    F = enc.astype(np.float64)
    F[enc < 0] = np.nan
    for layer in range(K):
        np.fill_diagonal(F[layer], 0.0)
    F[k, i, j] = np.nan
    if not directed:
        F[k, j, i] = np.nan
    if kind == "multiplex":
        return dataclasses.replace(Y, Y=F)
    return F


def _check_pairs(pairs, shape, name="pairs"):
    K, n = shape[0], shape[1]
    if not (isinstance(pairs, (tuple, list)) and len(pairs) == 3):
        raise TypeError(f"{name} must be a HeldOutPairs or a tuple (k, i, j) of integer arrays")
    out = []
    for nm, a, hi in zip("kij", pairs, (K, n, n)):
        a = np.asarray(a)
        if a.ndim != 1:
            raise ValueError(f"{name}: {nm} must be 1-dimensional, got shape {a.shape}")
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{name}: {nm} must hold integers, got dtype {a.dtype}")
        a = a.astype(np.int64)
        if a.size and (a.min() < 0 or a.max() >= hi):
            raise ValueError(f"{name}: {nm} has indices outside 0..{hi - 1}")
        out.append(a)
    if not (out[0].size == out[1].size == out[2].size):
        raise ValueError(f"{name}: k, i and j must have the same length")
    if out[0].size == 0:
        raise ValueError(f"{name} is empty")
    if (out[1] == out[2]).any():
        raise ValueError(f"{name} contains a diagonal pair (i == j)")
    return tuple(out)


# ----------------------------------------------------------------------------- held-out split

@dataclass
class HeldOutPairs:
    """Pairs hidden from a fit, with their true values.

    Attributes
    ----------
    k, i, j : ndarray of int64
        Layer and nodes of each pair (``i < j`` for undirected data).
    y : ndarray of int8
        The true value (0 or 1) of each pair.
    directed : bool
        Whether the pairs are ordered.
    shape : tuple
        ``(K, n, n)`` of the data.
    """

    k: np.ndarray
    i: np.ndarray
    j: np.ndarray
    y: np.ndarray
    directed: bool
    shape: tuple

    @property
    def pairs(self):
        """The tuple ``(k, i, j)`` (e.g. for ``HLSMResult.predict_proba(pairs=...)``)."""
        return self.k, self.i, self.j

    def __len__(self):
        return int(self.k.size)


def holdout_pairs(Y, frac=0.1, *, directed=None, random_state=None):
    """Hide a random share of the observed pairs of every layer (set them to NaN).

    The split is stratified: in every layer ``round(frac * count)`` of the
    ties and of the non-ties are hidden (at most all but one of each), so
    each layer keeps and loses the same share of its ties. Both directions of
    an undirected pair are hidden together; already missing pairs are never
    chosen.

    Parameters
    ----------
    Y : array_like, sequence of K (n, n) matrices, or Multiplex
        Data as accepted by :func:`fastgrad.hlsm.fit` (0/1, NaN missing).
    frac : float, default=0.1
        Share of the observed pairs of each layer to hide, in (0, 1).
    directed : bool or None, default=None
        Ordered pairs (True) or unordered pairs (False); None takes
        ``Y.directed`` of a Multiplex, else False.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    Y_train : same kind as ``Y``
        A float array (K, n, n) with NaN at the hidden pairs (and the
        missing ones); a list of scipy.sparse CSR matrices storing NaN at
        those dyads for sparse input; a Multiplex with such a ``Y`` for a
        Multiplex.
    test : HeldOutPairs
        The hidden pairs and their values, for :func:`score_pairs`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import hlsm
    >>> Y, _ = hlsm.simulate(40, 2, random_state=0)
    >>> Y_train, test = hlsm.holdout_pairs(Y, frac=0.1, random_state=0)
    >>> len(test), int(np.isnan(Y_train).sum()) == 2 * len(test)
    (156, True)
    """
    frac = check_scalar(frac, "frac", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    directed = _directed_of(Y, directed)
    kind = _input_kind(Y)
    rng = check_random_state(random_state)
    enc = _encode(Y, directed)
    K = enc.shape[0]
    k, i, j, y = _observed_pairs(enc, directed)
    strata, rank, counts = _stratified_ranks(k, y, K, rng)
    n_hide = np.minimum(np.rint(frac * counts).astype(np.int64), np.maximum(counts - 1, 0))
    sel = rank < n_hide[strata]
    if not sel.any():
        raise ValueError(f"frac={frac} hides no pair: too small for {k.size} observed pairs")
    k, i, j, y = k[sel], i[sel], j[sel], y[sel]
    order = np.lexsort((j, i, k))
    k, i, j, y = k[order], i[order], j[order], y[order]
    return _hide(Y, kind, enc, k, i, j, directed), HeldOutPairs(k, i, j, y, directed, enc.shape)


# ----------------------------------------------------------------------------- scores

def roc_auc(y_true, y_score):
    """Area under the ROC curve by the rank (Mann-Whitney) formula.

    ``AUC = (R_1 - n_1 (n_1 + 1) / 2) / (n_1 n_0)`` with ``R_1`` the sum of the
    (tie-averaged) ranks of the scores of the positives: the probability that
    a random positive scores above a random negative, ties counting one half.
    Equals :func:`sklearn.metrics.roc_auc_score`, in O(m log m).

    Parameters
    ----------
    y_true : array_like of shape (m,)
        0/1 labels (bool or numeric), both classes present.
    y_score : array_like of shape (m,)
        Finite scores (higher means more likely 1).

    Returns
    -------
    float

    Examples
    --------
    >>> from fastgrad.hlsm import roc_auc
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    from scipy.stats import rankdata
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true and y_score must be 1-dimensional, got shapes {y.shape} and {s.shape}")
    if y.size != s.size:
        raise ValueError(f"y_true and y_score have different lengths ({y.size} and {s.size})")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must contain only 0 and 1")
    if not np.isfinite(s).all():
        raise ValueError("y_score contains NaN or infinite values")
    pos = y == 1
    n1 = int(pos.sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        raise ValueError("y_true must contain both classes for the AUC")
    r = rankdata(s)
    return float((r[pos].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def _pair_proba(model, k, i, j):
    """Link probabilities of pairs from an HLSMResult (or a (K, n, n) probability array)."""
    if hasattr(model, "predict_proba"):
        try:
            p = model.predict_proba(pairs=(k, i, j))
        except TypeError:  # a predict_proba without ``pairs=``: index the full array
            p = model.predict_proba()[k, i, j]
        return np.asarray(p, dtype=np.float64)
    P = np.asarray(model, dtype=np.float64)
    if P.ndim != 3:
        raise TypeError("model must be an HLSMResult or an array (K, n, n) of link probabilities")
    return P[k, i, j]


def _model_shape(model):
    if hasattr(model, "alpha") and hasattr(model, "b"):
        return (np.shape(model.alpha)[0], np.shape(model.b)[0], np.shape(model.b)[0])
    return np.shape(model)


def _scores(y, p, k, K):
    """All three scores of predictions ``p`` of labels ``y`` in layers ``k``."""
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("predicted probabilities must be finite and within [0, 1]")
    yf = y.astype(np.float64)
    pc = np.clip(p, _P_CLIP, 1.0 - _P_CLIP)
    log_loss = float(-np.mean(yf * np.log(pc) + (1.0 - yf) * np.log1p(-pc)))
    brier = float(np.mean((p - yf) ** 2))
    auc_layers = np.full(K, np.nan)
    for layer in range(K):
        sel = k == layer
        ys = y[sel]
        if ys.size and 0 < int(ys.sum()) < ys.size:
            auc_layers[layer] = roc_auc(ys, p[sel])
    finite = np.isfinite(auc_layers)
    auc = float(auc_layers[finite].mean()) if finite.any() else float("nan")
    return {"auc": auc, "auc_layers": auc_layers, "log_loss": log_loss, "brier": brier,
            "n_pairs": int(y.size)}


def score_pairs(model, test, y=None):
    """Score link predictions on held-out pairs: AUC, log-loss and Brier score.

    Parameters
    ----------
    model : HLSMResult or ndarray of shape (K, n, n)
        A fit (its ``predict_proba`` gives the probabilities) or the link
        probabilities themselves.
    test : HeldOutPairs or tuple (k, i, j)
        The pairs to score: the second output of :func:`holdout_pairs`, or
        three integer arrays (layer, row, column).
    y : array_like, optional
        True values, needed when ``test`` is a tuple: either one 0/1 value
        per pair, shape (m,), or the complete data (array (K, n, n) or a
        Multiplex) from which the values at ``(k, i, j)`` are read (none of
        them may be missing).

    Returns
    -------
    dict
        ``auc``: mean over layers of each layer's AUC (layers whose pairs
        hold only one class are left out); ``auc_layers``: ndarray (K,) of
        those AUCs (NaN where undefined); ``log_loss``: mean negative
        log-likelihood per pair (probabilities clipped to
        ``[1e-15, 1 - 1e-15]``); ``brier``: mean squared error of the
        probabilities; ``n_pairs``.

    Examples
    --------
    >>> from fastgrad import hlsm
    >>> Y, _ = hlsm.simulate(40, 2, random_state=0)
    >>> Y_train, test = hlsm.holdout_pairs(Y, random_state=0)
    >>> res = hlsm.fit(Y_train, lam=5.0, random_state=0)
    >>> s = hlsm.score_pairs(res, test)
    >>> sorted(s), s["auc"] > 0.7
    (['auc', 'auc_layers', 'brier', 'log_loss', 'n_pairs'], True)
    """
    shape = _model_shape(model)
    if isinstance(test, HeldOutPairs):
        if tuple(test.shape[:2]) != tuple(shape[:2]):
            raise ValueError(f"test pairs were drawn from data of shape {test.shape}, model has {tuple(shape)}")
        k, i, j, labels = test.k, test.i, test.j, test.y
        if y is not None:
            raise ValueError("y must not be given with a HeldOutPairs (it holds the true values)")
    else:
        k, i, j = _check_pairs(test, shape, "test")
        if y is None:
            raise ValueError("y (the true values of the pairs, or the complete data) is needed when "
                             "test is a tuple (k, i, j)")
        if _is_multiplex(y):
            y = y.Y
        if not hasattr(y, "shape") and isinstance(y, (list, tuple)) and len(y) and hasattr(y[0], "shape") \
                and np.ndim(y[0]) == 2:
            y = [A.toarray() if hasattr(A, "toarray") else np.asarray(A) for A in y]
        yarr = np.asarray(y, dtype=np.float64)
        if yarr.ndim == 3:
            if yarr.shape[:2] != tuple(shape[:2]) or yarr.shape[1] != yarr.shape[2]:
                raise ValueError(f"y has shape {yarr.shape}, the model {tuple(shape)}")
            yarr = yarr[k, i, j]
        elif yarr.ndim != 1 or yarr.size != k.size:
            raise ValueError(f"y must have one value per pair ({k.size}) or be the data (K, n, n); "
                             f"got shape {yarr.shape}")
        if np.isnan(yarr).any():
            raise ValueError("y is missing (NaN) at some of the pairs to score")
        if not np.isin(yarr, (0.0, 1.0)).all():
            raise ValueError("y must contain only 0 and 1 at the pairs to score")
        labels = yarr.astype(np.int8)
    p = _pair_proba(model, k, i, j)
    return _scores(labels, p, k, shape[0])


def _metric_value(scores, metric):
    """Higher is better for every metric as stored in ``HLSMCV.fold_scores``."""
    return {"loglik": -scores["log_loss"], "auc": scores["auc"], "brier": scores["brier"]}[metric]


# ----------------------------------------------------------------------------- cross-validation

@dataclass
class HLSMCV:
    """Cross-validated choice of ``(dim, lam)`` for the HLSM (:func:`fit_cv`).

    Attributes
    ----------
    best : HLSMResult
        The selected model refitted on all observed pairs.
    dim : int
        Selected latent dimension.
    lam : float
        Selected penalty (on the scale of the full data).
    lam_ratio : float
        ``lam / lam_max`` of the selected dimension (1: shared, 0: independent layers).
    metric : str
        The selection metric.
    scores : dict of ndarray
        One entry per candidate: ``dim``, ``lam``, ``lam_ratio``, and the mean
        over folds and standard deviation of each score: ``loglik`` (mean
        held-out log-likelihood per pair), ``auc`` (mean per-layer AUC),
        ``brier``, each with ``_std``.
    fold_scores : ndarray, shape (n_candidates, n_folds, 3)
        Held-out ``loglik``, ``auc``, ``brier`` of each candidate in each fold.
    lam_max : dict
        ``lam_max`` of the full data for each dimension.
    pairs : tuple of ndarray
        ``(k, i, j)`` of every observed pair (``i < j`` if undirected).
    folds : ndarray of int64
        The fold of each pair in ``pairs``.
    fit_time : float
        Wall-clock seconds of the whole :func:`fit_cv`, ``n_fits`` fits.
    """

    best: object
    dim: int
    lam: float
    lam_ratio: float
    metric: str
    scores: dict
    fold_scores: np.ndarray
    lam_max: dict
    pairs: tuple = field(repr=False)
    folds: np.ndarray = field(repr=False)
    n_folds: int = 3
    fit_time: float = 0.0
    n_fits: int = 0

    @property
    def best_index(self):
        """Index of the selected candidate in ``scores``."""
        return int(np.flatnonzero((self.scores["dim"] == self.dim) & (self.scores["lam"] == self.lam))[0])

    @property
    def cv_auc(self):
        """Cross-validated (mean held-out, per-layer averaged) AUC of the selected candidate."""
        return float(self.scores["auc"][self.best_index])

    def summary(self):
        """A text table of the candidates' held-out scores (mean ± s.d. over folds)."""
        s = self.scores
        lines = [f"HLSM {self.n_folds}-fold cross-validation, {len(s['dim'])} candidates, "
                 f"{self.n_fits} fits in {self.fit_time:.2f}s; selected by {self.metric}: "
                 f"dim={self.dim}, lam={self.lam:.4g} ({self.lam_ratio:.3g} lam_max)",
                 f"{'dim':>3s} {'lam':>10s} {'lam/max':>7s} {'loglik/pair':>17s} {'AUC':>15s} {'Brier':>15s}"]
        for c in range(len(s["dim"])):
            mark = "  <- selected" if c == self.best_index else ""
            lines.append(f"{s['dim'][c]:3d} {s['lam'][c]:10.4g} {s['lam_ratio'][c]:7.3g} "
                         f"{s['loglik'][c]:9.5f}±{s['loglik_std'][c]:.5f} "
                         f"{s['auc'][c]:7.4f}±{s['auc_std'][c]:.4f} "
                         f"{s['brier'][c]:7.5f}±{s['brier_std'][c]:.5f}{mark}")
        return "\n".join(lines)

    def plot(self, metric=None, *, ax=None, path=None):
        """Held-out score against ``lam / lam_max``, one line per dimension (needs matplotlib).

        Parameters
        ----------
        metric : {"loglik", "auc", "brier"}, optional
            Default: the selection metric.
        ax : matplotlib Axes, optional
        path : str, optional
            Save the figure there.

        Returns
        -------
        matplotlib.figure.Figure
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("HLSMCV.plot needs matplotlib: pip install 'fastgrad[plot]'") from exc
        metric = self.metric if metric is None else metric
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if ax is None:
            fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
        else:
            fig = ax.figure
        s = self.scores
        # x: lam / lam_max on a log axis, with lam = 0 drawn at the left edge
        pos = s["lam_ratio"][s["lam_ratio"] > 0]
        x0 = (pos.min() / 3.0) if pos.size else 1e-3
        x = np.where(s["lam_ratio"] > 0, s["lam_ratio"], x0)
        for d in np.unique(s["dim"]):
            sel = s["dim"] == d
            ax.errorbar(x[sel], s[metric][sel], yerr=s[metric + "_std"][sel], marker="o", ms=4,
                        capsize=2, label=f"dim {d}")
        b = self.best_index
        ax.plot([x[b]], [s[metric][b]], marker="*", ms=14, color="k", ls="none", label="selected")
        ax.set_xscale("log")
        ticks = sorted(set(np.round(x, 12)))
        ax.set_xticks(ticks)
        zero = (s["lam_ratio"] == 0).any()
        ax.set_xticklabels(["0" if zero and np.isclose(t, x0) else f"{t:.3g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("lam / lam_max  (1: shared positions, 0: independent layers)")
        ax.set_ylabel({"loglik": "held-out log-likelihood per pair", "auc": "held-out AUC (layer mean)",
                       "brier": "held-out Brier score"}[metric])
        ax.set_title(f"{self.n_folds}-fold CV: dim={self.dim}, lam={self.lam:.3g}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path)
        return fig


def _lam_grid(lams, lmax):
    """``(grid, shared)``: decreasing penalties and whether each is the shared model by definition."""
    if lams is None:
        grid = lmax * np.asarray(LAM_RATIOS, dtype=np.float64)
        return grid, grid >= lmax
    return lams, np.zeros(lams.size, dtype=bool)


def _check_lams(lams):
    if lams is None:
        return None
    grid = np.asarray(lams, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0 or not np.isfinite(grid).all() or (grid < 0).any():
        raise ValueError("lams must be a non-empty 1-D sequence of finite non-negative numbers")
    return np.unique(grid)[::-1]  # decreasing, without duplicates


def _check_dims(dims, n):
    if isinstance(dims, (int, np.integer)) and not isinstance(dims, (bool, np.bool_)):
        dims = (int(dims),)
    try:
        dims = [check_scalar(d, "dims", kind="int", lo=1) for d in dims]
    except TypeError as exc:
        raise TypeError(f"dims must be an integer or a sequence of integers ({exc})") from None
    if not dims:
        raise ValueError("dims must not be empty")
    if max(dims) >= n:
        raise ValueError(f"dims must be smaller than the number of nodes n={n}, got {max(dims)}")
    return sorted(set(dims))


def _path_fits(Ytrain, grid, shared, train_frac, dim, directed, seed, fit_kwargs):
    """Fits of one training set along a decreasing grid, warm-started from its own shared fit.

    A penalty is the shared model when ``shared`` says so (the default grid's
    ``lam_max``) or when ``lam * train_frac`` reaches this training set's own
    ``lam_max`` (where the fit would return ``eps = 0`` anyway): nothing but
    the training pairs decides it.
    """
    from . import _model as hlsm
    out = []
    lmax_train, start = hlsm.lam_max(Ytrain, dim=dim, directed=directed, random_state=seed, **fit_kwargs)
    kw = {k: v for k, v in fit_kwargs.items() if k != "init"}
    for lam, sh in zip(grid, shared):
        if sh or lam * train_frac >= lmax_train:
            out.append(start if not out else out[-1])
            continue
        res = hlsm.fit(Ytrain, float(lam) * train_frac, dim=dim, directed=directed, init=start,
                       random_state=seed, **kw)
        out.append(res)
        start = res
    return out


def fit_cv(Y, *, dims=DEFAULT_DIMS, lams=None, n_folds=3, metric="loglik", directed=None,
           random_state=None, verbose=False, position_ridge=POSITION_RIDGE, **fit_kwargs):
    """Choose the latent dimension and ``lam`` by cross-validation on held-out pairs.

    The observed pairs are split into ``n_folds`` folds, stratified by layer
    and by tie / non-tie (both directions of an undirected pair in the same
    fold; pairs already missing are in none). For every fold and dimension,
    the model is fitted with the fold hidden (NaN) along the ``lam`` grid
    from the shared model (``lam >= lam_max``) down, each fit warm-started
    from the previous one, and scored on the fold. The candidate with the
    best mean held-out score is refitted on all observed pairs along the same
    path (the steps before it at the folds' stopping rule, the selected fit
    at :func:`fastgrad.hlsm.fit`'s).

    Penalties refer to the full data: a fold's fit uses ``lam`` times the
    share of the observed pairs it sees, since the likelihood is a sum over
    pairs. Fold fits start from their own data only (no hidden pair
    influences them, not even through a warm start).

    Parameters
    ----------
    Y : array_like, sequence of K (n, n) matrices (NumPy or scipy.sparse), or Multiplex
        As for :func:`fastgrad.hlsm.fit` (0/1, NaN missing).
    dims : int or sequence of int, default=(1, 2, 3, 4)
        Latent dimensions to compare.
    lams : sequence of float, optional
        Penalties to compare (the same for every dimension). Default: per
        dimension ``lam_max * (1, 0.5, 0.25, 0.1)``, from the shared
        model (every deviation zero) down (independent layers, lam = 0,
        are not in the default grid: never selected on the bundled
        networks, and the slowest fits).
    n_folds : int, default=3
        Number of folds (at least 2). 3 rather than 5 (issue 12, held-out
        AUC of ``benchmarks/hlsm_linkpred.py``): Aarhus CS 0.9362 either way
        (6 splits), Florentine 0.783 against 0.769 and Krackhardt 0.831
        against 0.825 (10 splits), in 0.6 of the time.
    metric : {"loglik", "auc", "brier"}, default="loglik"
        Selection score: mean held-out log-likelihood per pair, mean
        per-layer AUC, or Brier score (lower is better).
    directed : bool or None, default=None
        None takes ``Y.directed`` of a Multiplex, else False.
    random_state : None, int or numpy.random.Generator
        Seeds the folds and every fit; a fixed value reproduces the result.
    verbose : bool, default=False
        Print a line per fold and dimension.
    position_ridge : float, default=2.0
        Passed to every fit (:func:`fastgrad.hlsm.fit`): a ridge
        ``position_ridge / 2 * ||b||^2``, a Gaussian prior N(0, I / position_ridge)
        on the shared positions (latentnet puts a prior on positions too).
        Without it the positions of small networks drift apart and the
        held-out predictions overfit. Chosen by held-out link prediction
        (``benchmarks/hlsm_linkpred.py``: 10% of the pairs of every layer
        hidden, AUC per layer averaged; Florentine over 10 splits, Aarhus
        and Krackhardt over 3 and 6; measured with the earlier defaults, 5
        folds and lam = 0 in the grid): ridge 0 / 1 / 2 / 3 gave Florentine
        0.644 / 0.776 / 0.762 / 0.758, Aarhus 0.914 / 0.931 / 0.934 / 0.937,
        Krackhardt 0.819 / 0.825 / - / 0.826 (log-loss fell on all three).
        0 gives the model without the prior.
    **fit_kwargs
        Passed to every :func:`fastgrad.hlsm.fit` (e.g. ``sociality``,
        ``covariates``, ``max_iter``, ``tol``, ``sparse``; ``init`` for the
        first fit of each path). The fits on folds stop earlier than
        :func:`fastgrad.hlsm.fit` by default (``tol=1e-4, gtol=None,
        max_iter=300``: the held-out scores do not change, the time falls
        more than ten-fold); given values override that. Every fit runs by
        proximal gradient alone (``solver_options={"quasi_newton": False}``,
        whose held-out scores were better) unless ``solver_options`` is given.

    Returns
    -------
    HLSMCV
        ``.best`` (refitted :class:`HLSMResult`), ``.dim``, ``.lam``,
        ``.scores``, ``.cv_auc``, ``.summary()``, ``.plot()``.

    Examples
    --------
    >>> from fastgrad import hlsm
    >>> Y, _ = hlsm.simulate(30, 2, dim=1, random_state=0)
    >>> cv = hlsm.fit_cv(Y, dims=(1, 2), lams=[1e6], n_folds=3, random_state=0)
    >>> cv.dim, cv.best.b.shape
    (1, (30, 1))
    """
    t0 = time.perf_counter()
    from . import _model as hlsm
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    n_folds = check_scalar(n_folds, "n_folds", kind="int", lo=2)
    directed = _directed_of(Y, directed)
    for bad in ("dim", "lam", "random_state"):
        if bad in fit_kwargs:
            raise TypeError(f"fit_cv() got an unexpected keyword argument {bad!r} "
                            f"(use {'dims' if bad == 'dim' else 'lams' if bad == 'lam' else bad})")
    if "callback" in fit_kwargs:
        raise TypeError("fit_cv() does not take a callback")
    fit_kwargs.pop("verbose", None)
    fit_kwargs["position_ridge"] = check_scalar(position_ridge, "position_ridge", lo=0.0)
    # every fit of fit_cv by proximal gradient alone unless told otherwise: with fit's L-BFGS
    # rounds at lam > 0 the held-out AUC of benchmarks/hlsm_linkpred.py (3 repeats) was
    # lower, 0.9322 / 0.7766 / 0.8278 on aucs / florentine / krackhardt against 0.9346 /
    # 0.8264 / 0.8424, and fit_cv no faster (its fold fits stop at tol=1e-4 anyway)
    fit_kwargs.setdefault("solver_options", CV_SOLVER_OPTIONS)
    kind = _input_kind(Y)
    enc = _encode(Y, directed)
    K, n, _ = enc.shape
    dims = _check_dims(dims, n)
    user_lams = _check_lams(lams)
    rng = check_random_state(random_state)
    k, i, j, y = _observed_pairs(enc, directed)
    for layer in range(K):
        ties = int(y[k == layer].sum())
        nonties = int((k == layer).sum()) - ties
        if min(ties, nonties) < 2:
            raise ValueError(f"Y: layer {layer} has {min(ties, nonties)} observed "
                             f"{'ties' if ties < nonties else 'non-ties'}; cross-validation needs at least 2")
    seed = int(rng.integers(0, 2**31 - 1))  # of every fit (drawn first: the folds do not change it)
    folds = _make_folds(k, y, K, n_folds, rng)
    refit_kw = dict(fit_kwargs)
    shared_kw = {**CV_FIT_DEFAULTS, **fit_kwargs}

    # full data: the shared fit of each dimension gives lam_max, the grid, and starts the refit
    lmax, grids, shared, full_start = {}, {}, {}, {}
    for d in dims:
        lmax[d], full_start[d] = hlsm.lam_max(Y, dim=d, directed=directed, random_state=seed, **shared_kw)
        grids[d], shared[d] = _lam_grid(user_lams, lmax[d])
    n_cand = sum(len(grids[d]) for d in dims)
    fold_scores = np.full((n_cand, n_folds, 3), np.nan)
    n_obs = k.size
    n_fits = len(dims)
    for f in range(n_folds):
        test = folds == f
        kt, it, jt, yt = k[test], i[test], j[test], y[test]
        Ytrain = _hide(Y, kind, enc, kt, it, jt, directed)
        train_frac = 1.0 - test.sum() / n_obs
        c = 0
        for d in dims:
            t1 = time.perf_counter()
            fits = _path_fits(Ytrain, grids[d], shared[d], train_frac, d, directed, seed, shared_kw)
            n_fits += 1 + len({id(r) for r in fits[1:]} - {id(fits[0])})
            for res in fits:
                s = _scores(yt, _pair_proba(res, kt, it, jt), kt, K)
                fold_scores[c, f] = (-s["log_loss"], s["auc"], s["brier"])
                c += 1
            if verbose:
                best = max(fold_scores[c - len(fits):c, f, 0])
                print(f"fit_cv: fold {f + 1}/{n_folds} dim {d}: {len(fits)} lams in "
                      f"{time.perf_counter() - t1:.2f}s, best held-out loglik/pair {best:.5f}", flush=True)
    scores = _summarise(fold_scores, dims, grids, lmax)
    key = {"loglik": scores["loglik"], "auc": scores["auc"], "brier": -scores["brier"]}[metric]
    if not np.isfinite(key).any():
        raise ValueError(f"no candidate has a finite held-out {metric}")
    b = int(np.nanargmax(key))  # first best: smallest dim, then largest lam
    d_best, lam_best = int(scores["dim"][b]), float(scores["lam"][b])
    # refit on all observed pairs along the same path: the steps before the selected lam at
    # the folds' stopping rule (warm starts only), the selected fit at fit's own (unless given)
    path = [lam for lam, sh in zip(grids[d_best], shared[d_best])
            if lam >= lam_best and not sh and lam < lmax[d_best]]
    best = full_start[d_best]
    if not path:
        _, best = hlsm.lam_max(Y, dim=d_best, directed=directed, init=best, random_state=seed, **refit_kw)
    for m, lam in enumerate(path):
        kw = {kk: v for kk, v in (refit_kw if m == len(path) - 1 else shared_kw).items() if kk != "init"}
        best = hlsm.fit(Y, float(lam), dim=d_best, directed=directed, init=best, random_state=seed, **kw)
        n_fits += 1
    if best.nodes is None and _is_multiplex(Y):
        best.nodes, best.layers = list(Y.nodes), list(Y.layers)
    out = HLSMCV(best=best, dim=d_best, lam=lam_best, lam_ratio=float(scores["lam_ratio"][b]), metric=metric,
                 scores=scores, fold_scores=fold_scores, lam_max=lmax, pairs=(k, i, j), folds=folds,
                 n_folds=n_folds, n_fits=n_fits)
    out.fit_time = time.perf_counter() - t0
    if verbose:
        print(out.summary(), flush=True)
    return out


def _summarise(fold_scores, dims, grids, lmax):
    dim_col = np.concatenate([[d] * len(grids[d]) for d in dims]).astype(np.int64)
    lam_col = np.concatenate([grids[d] for d in dims])
    ratio = np.concatenate([grids[d] / lmax[d] if lmax[d] > 0 else grids[d] for d in dims])
    out = {"dim": dim_col, "lam": lam_col, "lam_ratio": ratio}
    with warnings.catch_warnings():  # an all-NaN row (AUC undefined in every fold) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        for m, name in enumerate(METRICS):
            v = fold_scores[:, :, m]
            out[name] = np.nanmean(v, axis=1)
            out[name + "_std"] = np.nanstd(v, axis=1, ddof=1) if v.shape[1] > 1 else np.zeros(v.shape[0])
    return out
