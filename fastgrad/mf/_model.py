"""Biased MF and SVD++: id indexing, the SGD fits and the fitted models."""
import contextlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._validation import (as_float_array, check_choice, check_consistent_length,
                          check_random_state, check_scalar)
from .._warnings import ConvergenceWarning

__all__ = ["fit", "fit_svdpp", "MFModel", "SVDppModel", "load", "simulate", "as_triples"]

_SEED_HIGH = 2**63 - 1


# ============================================================================ ids
class _IdIndex:
    """Maps arbitrary hashable ids to rows ``0..m-1`` (and back via ``ids``)."""

    def __init__(self, ids):
        self.ids = ids
        self._dict = None
        self._srt = None                     # (sorted ids, sorter), built on the first lookup
        if ids.dtype.kind not in "iufbUS":
            self._dict = {v: k for k, v in enumerate(ids.tolist())}

    @property
    def _sorted(self):
        if self._srt is None:
            sorter = np.argsort(self.ids, kind="stable")
            self._srt = self.ids[sorter], sorter
        return self._srt

    def __len__(self):
        return len(self.ids)

    @classmethod
    def build(cls, values):
        """Index of the distinct ``values`` and the row of every value."""
        ids, codes = _factorize(values)
        return cls(ids), codes

    @classmethod
    def build_counted(cls, values):
        """Index of the distinct ``values``, the row of every value (int32) and the number of
        values in every row; compact non-negative int ids take one compiled two-pass route."""
        n = values.shape[0]
        if values.dtype.kind in "iu" and n:
            lo, hi = int(values.min()), int(values.max())
            if lo >= 0 and hi <= 4 * n + 1_000_000:
                from ..kernels.mf import _compact_codes
                ids, codes, counts = _compact_codes(values, hi)
                return cls(ids.astype(values.dtype)), codes, counts
        index, codes = cls.build(values)
        return index, codes.astype(np.int32), np.bincount(codes, minlength=len(index))

    def lookup(self, values):
        """Row of every value, ``-1`` where unknown."""
        values = np.asarray(values)
        n = values.shape[0]
        if len(self.ids) == 0 or n == 0:
            return np.full(n, -1, dtype=np.int64)
        if self._dict is not None or values.dtype.kind not in "iufbUS":
            d = self._dict if self._dict is not None else {v: k for k, v in enumerate(self.ids.tolist())}
            return np.fromiter((d.get(v, -1) for v in values.tolist()), dtype=np.int64, count=n)
        if (values.dtype.kind in "US") != (self.ids.dtype.kind in "US"):
            return np.full(n, -1, dtype=np.int64)        # strings vs numbers: nothing matches
        srt, sorter = self._sorted
        pos = np.searchsorted(srt, values)
        pos = np.minimum(pos, len(srt) - 1)
        found = srt[pos] == values
        return np.where(found, sorter[pos], -1).astype(np.int64)

    def extend(self, values):
        """Append unseen values; return ``(new_index, rows of values)``."""
        codes = self.lookup(values)
        unseen = codes < 0
        if not unseen.any():
            return self, codes
        new_ids, _ = _factorize(np.asarray(values)[unseen])
        if _kind(self.ids) == _kind(new_ids) != "o":
            ids = np.concatenate([self.ids, new_ids])
        else:                                   # e.g. ints joined by strings: keep each as is
            ids = _object_array(self.ids.tolist() + new_ids.tolist())
        index = _IdIndex(ids)
        return index, index.lookup(values)


def _kind(arr):
    k = arr.dtype.kind
    return "s" if k in "US" else ("n" if k in "iufb" else "o")


def _factorize(values):
    """Distinct values (``ids``) and the row of each value (``codes``)."""
    n = values.shape[0]
    if values.dtype.kind in "iu" and n:
        lo, hi = int(values.min()), int(values.max())
        if lo >= 0 and hi <= 4 * n + 1_000_000:          # O(n) path for compact int ids
            present = np.bincount(values, minlength=hi + 1) > 0
            ids = np.flatnonzero(present)
            row = np.cumsum(present) - 1
            return ids.astype(values.dtype), row[values].astype(np.int64)
    if values.dtype.kind in "iufbUS":
        ids, codes = np.unique(values, return_inverse=True)
        return ids, codes.reshape(-1).astype(np.int64)
    mapping = {}
    codes = np.empty(n, dtype=np.int64)
    for t, v in enumerate(values.tolist()):
        codes[t] = mapping.setdefault(v, len(mapping))
    return _object_array(list(mapping)), codes


def _object_array(seq):
    """1-D object array holding the elements of ``seq`` as they are (tuples stay tuples)."""
    arr = np.empty(len(seq), dtype=object)
    for k, v in enumerate(seq):
        arr[k] = v
    return arr


def _as_ids(values, name):
    """1-D id array; rejects missing values and unhashable entries."""
    if isinstance(values, np.ndarray):
        arr = values
    else:
        try:
            arr = np.asarray(values)
        except (ValueError, TypeError):       # ragged / mixed sequences
            arr = None
        if arr is None or arr.ndim > 1:        # e.g. a list of tuples: one id per element
            arr = _object_array(list(values))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN ids")
    if arr.dtype.kind == "O":
        for v in arr.tolist():
            if v is None or (isinstance(v, float) and math.isnan(v)):
                raise ValueError(f"{name} contains missing ids (None or NaN)")
            try:
                hash(v)
            except TypeError:
                raise TypeError(f"{name} must contain hashable ids, got {type(v).__name__}") from None
    elif arr.dtype.kind not in "iufbUS":
        raise TypeError(f"{name} must be an array of ints or strings, got dtype {arr.dtype}")
    return arr


# ============================================================================ input
def as_triples(users, items=None, ratings=None, *, columns=("user", "item", "rating"), name="data"):
    """Normalise the accepted input forms to ``(users, items, ratings)`` arrays.

    Parameters
    ----------
    users : array-like, pandas.DataFrame or scipy.sparse matrix
        Either the user ids (then ``items`` and ``ratings`` are required), a
        DataFrame with the ``columns`` (user, item, rating), or a sparse matrix
        whose explicitly stored entries are ratings (rows = users, columns = items).
    items, ratings : array-like, optional
        Item ids and ratings when ``users`` is an id array.
    columns : tuple of 3 str, default=("user", "item", "rating")
        Column names used for DataFrame input.
    name : str
        Name used in error messages.

    Returns
    -------
    users, items : ndarray
        Id arrays (any hashable dtype).
    ratings : float64 ndarray
    """
    if _is_sparse(users):
        if items is not None or ratings is not None:
            raise TypeError(f"{name}: give items and ratings only with id arrays, not with a sparse matrix")
        coo = users.tocoo(copy=True)
        coo.sum_duplicates()
        return (np.asarray(coo.row, dtype=np.int64), np.asarray(coo.col, dtype=np.int64),
                as_float_array(coo.data, "ratings", ndim=1))
    if hasattr(users, "columns") and hasattr(users, "iloc"):        # pandas DataFrame
        if items is not None or ratings is not None:
            raise TypeError(f"{name}: give items and ratings only with id arrays, not with a DataFrame")
        if len(columns) != 3:
            raise ValueError(f"columns must name (user, item, rating), got {columns!r}")
        missing = [c for c in columns if c not in users.columns]
        if missing:
            raise ValueError(f"{name}: DataFrame has no column(s) {missing}; pass columns=(user, item, rating)")
        u, i, r = (users[c].to_numpy() for c in columns)
    else:
        if items is None or ratings is None:
            raise TypeError(f"{name}: give users, items and ratings (or one DataFrame or sparse matrix)")
        u, i, r = users, items, ratings
    u = _as_ids(u, "users")
    i = _as_ids(i, "items")
    r = as_float_array(r, "ratings", ndim=1)
    check_consistent_length(users=u, items=i, ratings=r)
    return u, i, r


def _is_sparse(x):
    try:
        import scipy.sparse as sp
    except ImportError:        # pragma: no cover - scipy is a dependency
        return False
    return sp.issparse(x)


def _split_data(data, name, columns):
    """Validation/evaluation data: a (users, items, ratings) tuple, DataFrame or sparse."""
    if isinstance(data, (tuple, list)):
        if len(data) != 3:
            raise ValueError(f"{name} must be (users, items, ratings), got {len(data)} elements")
        return as_triples(*data, name=name)
    return as_triples(data, columns=columns, name=name)


# ============================================================================ model
@dataclass
class MFModel:
    """A fitted biased matrix factorisation ``r_hat = mu + bu + bi + p_u . q_i``.

    Attributes
    ----------
    mu : float
        Global mean of the training ratings (not learned).
    user_bias : ndarray of shape (n_users,)
        ``bu``; row ``k`` belongs to ``user_ids[k]``.
    item_bias : ndarray of shape (n_items,)
        ``bi``; row ``k`` belongs to ``item_ids[k]``.
    P : ndarray of shape (n_users, n_factors)
        User factors.
    Q : ndarray of shape (n_items, n_factors)
        Item factors.
    user_ids, item_ids : ndarray
        The original ids of the rows.
    params : dict
        Hyper-parameters of the fit (``n_factors, lr, reg, reg_bias, init_std,
        n_epochs, lr_decay, n_threads, n_blocks``).
    rating_scale : tuple of float or None
        ``(lo, hi)``: predictions are clipped to it.
    objective : float
        Mean per-rating loss ``f`` over the training ratings at the end.
    n_iter : int
        Epochs run.
    converged : bool
        With ``early_stopping``: whether it stopped before ``n_epochs``.
        Otherwise: whether the training objective changed by less than ``tol``
        (relative) in the last epoch.
    history : ndarray of shape (n_iter,)
        Training objective (mean per-rating loss) after every epoch; the error
        part is the running sum over the epoch (errors taken just before each
        rating's step) unless ``train_metrics="exact"``.
    train_rmse : ndarray of shape (n_iter,)
        Training RMSE per epoch (running or exact as ``history``).
    val_rmse : ndarray of shape (n_iter,)
        Validation RMSE after every epoch (empty without ``validation``).
    lr_history : ndarray of shape (n_iter,)
        Learning rate used in every epoch.
    best_epoch : int
        1-based epoch whose parameters were kept (early stopping with
        ``restore_best``), else ``n_iter``.
    fit_time : float
        Seconds spent in :func:`fit`.
    partial_history : ndarray
        Running RMSE per epoch of the last :meth:`partial_fit` (on the ratings it used).
    """

    mu: float
    user_bias: np.ndarray
    item_bias: np.ndarray
    P: np.ndarray
    Q: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    params: dict
    rating_scale: tuple = None
    objective: float = float("nan")
    n_iter: int = 0
    converged: bool = False
    history: np.ndarray = field(default_factory=lambda: np.empty(0))
    train_rmse: np.ndarray = field(default_factory=lambda: np.empty(0))
    val_rmse: np.ndarray = field(default_factory=lambda: np.empty(0))
    lr_history: np.ndarray = field(default_factory=lambda: np.empty(0))
    best_epoch: int = 0
    fit_time: float = 0.0
    partial_history: np.ndarray = field(default_factory=lambda: np.empty(0))
    _users: _IdIndex = field(default=None, repr=False, compare=False)
    _items: _IdIndex = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self._users is None:
            self._users = _IdIndex(np.asarray(self.user_ids))
        if self._items is None:
            self._items = _IdIndex(np.asarray(self.item_ids))

    # ------------------------------------------------------------------ basics
    @property
    def n_users(self):
        return self.P.shape[0]

    @property
    def n_items(self):
        return self.Q.shape[0]

    @property
    def n_factors(self):
        return self.P.shape[1]

    def _pu(self):
        """User factors used in predictions (SVD++ adds the implicit term)."""
        return self.P

    def _penalty_sum(self, cu, ci):
        return _penalty(self, cu, ci)

    def user_index(self, users):
        """Rows of ``users`` (``-1`` for unknown ids)."""
        return self._users.lookup(_as_ids(users, "users"))

    def item_index(self, items):
        """Rows of ``items`` (``-1`` for unknown ids)."""
        return self._items.lookup(_as_ids(items, "items"))

    def _bounds(self):
        if self.rating_scale is None:
            return -np.inf, np.inf
        return float(self.rating_scale[0]), float(self.rating_scale[1])

    # ------------------------------------------------------------------ predict
    def predict(self, users, items=None):
        """Predicted ratings, clipped to ``rating_scale`` if set.

        Parameters
        ----------
        users, items : array-like
            Ids (a DataFrame with user and item columns, or a sparse matrix whose
            stored entries mark the pairs, may be passed as ``users`` alone).
            An unknown user or item falls back to the known terms:
            ``mu + bu`` (unknown item), ``mu + bi`` (unknown user) or ``mu``.

        Returns
        -------
        ndarray of shape (n,)
        """
        from ..kernels.mf import mf_predict
        u, i = self._pairs(users, items)
        out = np.empty(u.shape[0])
        lo, hi = self._bounds()
        mf_predict(u, i, self.mu, self.user_bias, self.item_bias, self._pu(), self.Q, lo, hi, out)
        return out

    def _pairs(self, users, items):
        if items is None and (_is_sparse(users) or hasattr(users, "columns")):
            if _is_sparse(users):
                coo = users.tocoo()
                users, items = coo.row, coo.col
            else:
                cols = self.params.get("columns", ("user", "item", "rating"))
                users, items = users[cols[0]].to_numpy(), users[cols[1]].to_numpy()
        if items is None:
            raise TypeError("predict needs users and items")
        u = _as_ids(users, "users")
        i = _as_ids(items, "items")
        check_consistent_length(users=u, items=i)
        return self._users.lookup(u), self._items.lookup(i)

    def _error_sums(self, users, items, ratings):
        u, i, r = as_triples(users, items, ratings,
                             columns=self.params.get("columns", ("user", "item", "rating")))
        if r.shape[0] == 0:
            raise ValueError("ratings must not be empty")
        lo, hi = self._bounds()
        sse, sae = _error_sums(self._users.lookup(u), self._items.lookup(i), r, self.mu,
                               self.user_bias, self.item_bias, self._pu(), self.Q, lo, hi, None)
        return sse, sae, r.shape[0]

    def rmse(self, users, items=None, ratings=None):
        """Root mean squared error of the (clipped) predictions on the given ratings."""
        sse, _, n = self._error_sums(users, items, ratings)
        return math.sqrt(sse / n)

    def mae(self, users, items=None, ratings=None):
        """Mean absolute error of the (clipped) predictions on the given ratings."""
        _, sae, n = self._error_sums(users, items, ratings)
        return sae / n

    def loss(self, users, items=None, ratings=None):
        """Mean per-rating loss ``f`` (unclipped predictions) on the given ratings.

        Every id must be known.
        """
        u, i, r = as_triples(users, items, ratings,
                             columns=self.params.get("columns", ("user", "item", "rating")))
        if r.shape[0] == 0:
            raise ValueError("ratings must not be empty")
        uu, ii = self._users.lookup(u), self._items.lookup(i)
        if (uu < 0).any() or (ii < 0).any():
            raise ValueError("loss needs known users and items only")
        sse, _ = _error_sums(uu, ii, r, self.mu, self.user_bias, self.item_bias,
                             self._pu(), self.Q, -np.inf, np.inf, None)
        cu = np.bincount(uu, minlength=self.n_users)
        ci = np.bincount(ii, minlength=self.n_items)
        return (sse + self._penalty_sum(cu, ci)) / r.shape[0]

    # ------------------------------------------------------------------ fold-in
    def partial_fit(self, users, items=None, ratings=None, *, n_epochs=None, lr=None,
                    update="new", random_state=None, n_threads=None):
        """Add new users/items (or refine) without refitting from scratch; in place.

        Parameters
        ----------
        users, items, ratings
            New ratings (same forms as :func:`fit`). Unseen ids get new rows
            initialised like :func:`fit` (factors ``N(0, init_std)``, biases 0).
        n_epochs : int, optional
            Passes over the new ratings (default: the fit's ``n_epochs``).
        lr : float, optional
            Learning rate (default: the fit's ``lr``).
        update : {"new", "all"}, default="new"
            ``"new"``: fold-in -- only rows of the new users and items move,
            everything already fitted (and ``mu``) stays fixed; ratings between
            known users and known items are ignored. ``"all"``: a few extra SGD
            epochs on the given ratings updating every row they touch.
        random_state : None, int or numpy.random.Generator
            Seeds the new rows and the shuffles.
        n_threads : int, optional
            Threads for ``update="all"`` and for drawing the new rows (fold-in SGD runs
            serially). The result does not depend on it with ``update="new"``.

        Returns
        -------
        self
            ``partial_history`` holds the running RMSE per epoch on the ratings used.
        """
        from ..kernels.mf import mf_sgd_epoch_masked
        check_choice(update, "update", ("new", "all"))
        u, i, r = as_triples(users, items, ratings,
                             columns=self.params.get("columns", ("user", "item", "rating")))
        if r.shape[0] == 0:
            raise ValueError("ratings must not be empty")
        n_epochs = self.params["n_epochs"] if n_epochs is None else check_scalar(
            n_epochs, "n_epochs", kind="int", lo=1)
        lr = self.params["lr"] if lr is None else check_scalar(lr, "lr", lo=0.0, lo_open=True)
        rng = check_random_state(random_state)
        n_threads = _resolve_threads(n_threads)
        nu0, ni0 = self.n_users, self.n_items
        self._users, uu = self._users.extend(u)
        self._items, ii = self._items.extend(i)
        self.user_ids, self.item_ids = self._users.ids, self._items.ids
        std, k = self.params["init_std"], self.n_factors
        dtype = self.P.dtype
        new_u, new_i = len(self._users) - nu0, len(self._items) - ni0
        P_new, Q_new = _init_factors(int(rng.integers(_SEED_HIGH)), new_u, new_i, k, std, n_threads,
                                     dtype)
        self.P = np.ascontiguousarray(np.vstack([self.P, P_new]), dtype)
        self.Q = np.ascontiguousarray(np.vstack([self.Q, Q_new]), dtype)
        self.user_bias = np.concatenate([self.user_bias, np.zeros(new_u, dtype)])
        self.item_bias = np.concatenate([self.item_bias, np.zeros(new_i, dtype)])
        reg, reg_bias = self.params["reg"], self.params["reg_bias"]
        uu = uu.astype(np.int32)
        ii = ii.astype(np.int32)
        if update == "all":
            hist = []
            with _numba_threads(n_threads):
                trainer = _Trainer(uu, ii, r, self.n_users, self.n_items, rng, n_threads,
                                   shuffle=self.params.get("shuffle", "epoch"))
                frame = _Frame(trainer)
                params = (self.user_bias, self.item_bias, self.P, self.Q)
                work = frame.gather(*params)
                for _ in range(n_epochs):
                    sse = trainer.epoch(self.mu, *work, lr, reg, reg_bias)
                    _check_diverged(sse, len(hist) + 1, lr)
                    hist.append(math.sqrt(sse / r.shape[0]))
                frame.scatter(work, *params)
            self.partial_history = np.asarray(hist)
            return self
        user_free = np.arange(self.n_users) >= nu0
        item_free = np.arange(self.n_items) >= ni0
        keep = user_free[uu] | item_free[ii]
        if not keep.any():
            warnings.warn("partial_fit(update='new'): no new users or items in the data; "
                          "nothing to fold in (use update='all' to refine known rows)", UserWarning,
                          stacklevel=2)
            self.partial_history = np.empty(0)
            return self
        uu, ii, rr = uu[keep].copy(), ii[keep].copy(), r[keep].copy()
        from ..kernels.mf import mf_shuffle
        hist = []
        for ep in range(n_epochs):
            mf_shuffle(uu, ii, rr, int(rng.integers(_SEED_HIGH)))
            sse, cnt = mf_sgd_epoch_masked(uu, ii, rr, self.mu, self.user_bias, self.item_bias,
                                           self.P, self.Q, lr, reg, reg_bias, user_free, item_free)
            _check_diverged(sse, ep + 1, lr)
            hist.append(math.sqrt(sse / max(cnt, 1)))
        self.partial_history = np.asarray(hist)
        return self

    # ------------------------------------------------------------------ persistence
    def save(self, path):
        """Save to a ``.npz`` file (no pickles); read back with :func:`load`."""
        arrays = dict(mu=np.float64(self.mu), user_bias=self.user_bias, item_bias=self.item_bias,
                      P=self.P, Q=self.Q, history=self.history, train_rmse=self.train_rmse,
                      val_rmse=self.val_rmse, lr_history=self.lr_history, **self._extra_arrays())
        meta = dict(params=_jsonable(self.params), rating_scale=self.rating_scale,
                    objective=self.objective, n_iter=self.n_iter, converged=bool(self.converged),
                    best_epoch=self.best_epoch, fit_time=self.fit_time, format=self._FORMAT)
        for key, ids in (("user_ids", self.user_ids), ("item_ids", self.item_ids)):
            ids = np.asarray(ids)
            if ids.dtype.kind in "iufbUS":
                arrays[key] = ids
            else:
                vals = ids.tolist()
                if not all(isinstance(v, (str, int, float)) for v in vals):
                    raise TypeError(f"cannot save {key}: only int, float and str ids can be saved")
                meta[key] = vals
        arrays["meta"] = np.asarray(json.dumps(meta))
        np.savez(path, **arrays)

    _FORMAT = "fastgrad.mf/1"
    _EXTRA = ()

    def _extra_arrays(self):
        return {}

    @classmethod
    def load(cls, path):
        """Read a model written by :meth:`save` (an :class:`SVDppModel` for an SVD++ file)."""
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            fmt = meta.get("format")
            if fmt == SVDppModel._FORMAT and cls is MFModel:
                cls = SVDppModel
            if fmt != cls._FORMAT:
                raise ValueError(f"{path} is not a fastgrad.mf model file")
            extra = {key: z[key] for key in cls._EXTRA}
            ids = {}
            for key in ("user_ids", "item_ids"):
                if key in meta:
                    ids[key] = _object_array(meta[key])
                else:
                    ids[key] = z[key]
            scale = meta["rating_scale"]
            return cls(mu=float(z["mu"]), user_bias=z["user_bias"], item_bias=z["item_bias"],
                       P=z["P"], Q=z["Q"], user_ids=ids["user_ids"], item_ids=ids["item_ids"],
                       params=meta["params"], rating_scale=None if scale is None else tuple(scale),
                       objective=meta["objective"], n_iter=meta["n_iter"],
                       converged=meta["converged"], history=z["history"],
                       train_rmse=z["train_rmse"], val_rmse=z["val_rmse"],
                       lr_history=z["lr_history"], best_epoch=meta["best_epoch"],
                       fit_time=meta["fit_time"], **extra)


def load(path):
    """Read a model written by :meth:`MFModel.save`."""
    return MFModel.load(path)


def _jsonable(params):
    out = {}
    for k, v in params.items():
        if callable(v):
            v = repr(v)
        elif isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


def _penalty(model, cu, ci):
    """Sum over ratings of the penalty terms, from per-row rating counts."""
    from ..kernels.mf import mf_penalty
    # explicit identity rows (int32, as the working frame's): one specialisation of the kernel
    return mf_penalty(model.user_bias, model.item_bias, model.P, model.Q, cu, ci,
                      model.params["reg"], model.params["reg_bias"],
                      np.arange(model.P.shape[0], dtype=np.int32), np.arange(model.Q.shape[0], dtype=np.int32))


def _init_factors(seed, n_users, n_items, n_factors, std, n_threads, dtype=np.float64, *,
                  user_order=None, item_order=None, pad=False):
    """Initial ``P, Q``: independent ``N(0, std^2)`` entries drawn in parallel from ``seed``
    (:func:`~fastgrad.kernels.mf.mf_normal_rows`; user rows are streams ``0..n_users-1``, item
    rows the next ones), the same for any thread count; drawn in float64, stored in ``dtype``.

    With ``user_order``/``item_order`` (row ``w`` holds original row ``order[w]``) or ``pad``
    (rows padded to whole vectors, :func:`_padded_rows`) the same draws go straight into the
    relabelled or padded rows (:func:`~fastgrad.kernels.mf.mf_normal_rows_at`)."""
    from ..kernels.mf import mf_normal_rows, mf_normal_rows_at
    n = n_users + n_items
    # one buffer, one parallel region for both; padded, every row starts on a 64-byte line
    PQ = _padded_rows(n, n_factors, dtype) if pad else np.empty((n, n_factors), dtype=dtype)
    with _numba_threads(_threads_for(n * n_factors, n_threads, _SMALL_DRAWS)):
        if user_order is None and item_order is None and not pad:
            mf_normal_rows(PQ, seed, 0, 0.0, std)
        else:
            streams = np.empty(n, dtype=np.int64)
            streams[:n_users] = np.arange(n_users) if user_order is None else user_order
            streams[n_users:] = n_users + (np.arange(n_items) if item_order is None else item_order)
            mf_normal_rows_at(PQ[:, :n_factors], seed, streams, 0.0, std)
    return PQ[:n_users], PQ[n_users:]


# Below these sizes a parallel kernel runs on one thread: it takes well under a millisecond
# serially, about what waking the other threads can cost on a busy machine (on a shared
# 2-vCPU box, 2 threads once turned a 0.5 ms draw into 4-6 ms). On a quiet machine two
# threads halve them: ML-100k's initial draw (262k numbers) took 2.5 ms on one thread and
# 1.2 ms on two, its final error pass 2.7 and 1.3 ms (AVX2 AMD EPYC, Zen 1), so the limits
# sit near 0.3 ms of serial work there. The kernels give the same numbers on any thread
# count, so this changes timings only.
_SMALL_DRAWS = 1 << 16            # normal draws (ziggurat: ~2-9 ns each)
_SMALL_DOTS = 1 << 20             # rating x factor products of an error pass
_SMALL_LAYOUT = 1 << 15           # ratings: below, one chunk of the layout's counting sort anyway


def _threads_for(work, n_threads, small):
    return 1 if work < small else n_threads


def _error_sums(users, items, ratings, mu, bu, bi, P, Q, lo, hi, n_threads):
    """:func:`~fastgrad.kernels.mf.mf_error_sums`, on one thread for a small pass (``n_threads=None``:
    numba's current count). (A serial twin of the kernel compiled faster but ran 2-4x slower:
    its loop did not vectorise as the parallel kernel's outlined body does.)"""
    from ..kernels.mf import mf_error_sums
    if n_threads is None:
        import numba
        n_threads = numba.get_num_threads()
    with _numba_threads(_threads_for(ratings.shape[0] * P.shape[1], n_threads, _SMALL_DOTS)):
        return mf_error_sums(users, items, ratings, mu, bu, bi, P, Q, lo, hi)


def _check_diverged(sse, epoch, lr):
    if not math.isfinite(sse):
        raise ValueError(f"SGD diverged in epoch {epoch} (non-finite loss): decrease lr "
                         f"(lr={lr:g}) or rescale the ratings")


def _resolve_threads(n_threads):
    import numba
    if n_threads is None:
        return numba.get_num_threads()
    n = check_scalar(n_threads, "n_threads", kind="int", lo=1)
    if n > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"n_threads must be <= {numba.config.NUMBA_NUM_THREADS} "
                         f"(numba.config.NUMBA_NUM_THREADS), got {n}")
    return n


def _check_schedule_args(rating_scale, n_threads, n_blocks, columns):
    """Validate the arguments ``fit`` and ``fit_svdpp`` share; returns the checked
    ``(rating_scale, n_threads, n_blocks)``."""
    if rating_scale is not None:
        if len(rating_scale) != 2:
            raise ValueError(f"rating_scale must be (lo, hi), got {rating_scale!r}")
        lo = check_scalar(rating_scale[0], "rating_scale[0]")
        hi = check_scalar(rating_scale[1], "rating_scale[1]")
        if not lo < hi:
            raise ValueError(f"rating_scale must have lo < hi, got {rating_scale!r}")
        rating_scale = (lo, hi)
    n_threads = _resolve_threads(n_threads)
    if n_blocks is not None:
        n_blocks = check_scalar(n_blocks, "n_blocks", kind="int", lo=1)
    if not isinstance(columns, (tuple, list)):
        raise TypeError("columns must be a tuple (user, item, rating)")
    return rating_scale, n_threads, n_blocks


def _check_dtype(dtype):
    """``numpy.float64`` or ``numpy.float32`` (any spelling numpy accepts), else ValueError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in (np.float64, np.float32) or dtype is None:
        raise ValueError(f"dtype must be numpy.float64 or numpy.float32, got {dtype!r}")
    return dt.type


@contextlib.contextmanager
def _numba_threads(n_threads):
    """Run the block with ``numba.set_num_threads(n_threads)``, then restore."""
    import numba
    saved = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        yield
    finally:
        numba.set_num_threads(saved)


_CELL_BYTES = 4 << 20      # factor rows (user block + item block) one cell should touch at most


def default_n_blocks(n_threads, n_rows=0, row_bytes=0):
    """Blocks per dimension of the parallel schedule (1 thread: serial).

    ``2 * n_threads``, raised (to a multiple of ``n_threads``) until one cell's
    user and item factor rows -- ``n_rows * row_bytes / B`` for ``n_rows`` users
    plus items of ``row_bytes`` bytes each -- take at most 4 MiB, so that they stay
    in a core's cache while the cell's ratings are processed. On MovieLens-100k-shaped
    data (100 factors, 2 threads) that gives ``B = 4``: 12 alternating float32 fits of
    20 epochs took 45.6 ms (best; median 46.6) with ``B = 4``, 48.2 ms (49.7) with
    ``B = 8`` and 46.0 ms (48.8) with ``B = 2`` (2-vCPU Intel Xeon; an AMD EPYC had
    ``B = 4, 6, 8`` within 5%), with the same held-out RMSE.
    On the ML-20M shape (165k rows, 100 float32 factors) it gives ``B = 16``: an epoch
    took 1.24 s against 1.75 s with ``B = 8`` (2 threads, AMD EPYC). Each epoch has
    ``B`` synchronisation points. The result depends on ``B`` and the seed only, so a
    fixed thread count (and data size and dtype) reproduces a fit; pass ``n_blocks``
    to make it independent of the thread count too.
    """
    n_threads = max(1, int(n_threads))
    if n_threads == 1:
        return 1
    need = -(-int(n_rows) * int(row_bytes) // _CELL_BYTES)           # ceil
    return max(2, -(-need // n_threads)) * n_threads


class _Trainer:
    """Holds the (reordered) training triples and runs epochs serially or block-stratified.

    ``n_blocks=None`` picks :func:`default_n_blocks`; with ``n_threads == 1`` and no
    explicit ``n_blocks`` the serial kernel is used (global shuffle each epoch).

    The block-stratified path works on RELABELLED rows (see :class:`_Frame`): working
    user row ``w`` is original user ``user_order[w]`` (``user_new`` is the inverse),
    likewise for items, so :meth:`epoch` takes ``bu, bi, P, Q`` in that frame. The
    serial path uses the original rows (``user_order is None``).
    """

    user_order = item_order = user_new = item_new = None

    def __init__(self, users, items, ratings, n_users, n_items, rng, n_threads, n_blocks=None,
                 counts=None, row_bytes=0, shuffle="epoch"):
        from ..kernels.mf import mf_block_layout, mf_block_layout_serial, mf_partition
        self.rng = rng
        self.reshuffle = shuffle == "epoch"
        self.n_done = 0
        self.n_threads = n_threads
        if n_blocks is None:
            n_blocks = default_n_blocks(n_threads, n_users + n_items, row_bytes)
        self.n_blocks = B = int(n_blocks)
        self.serial = B == 1
        if self.serial:       # private copies: epochs shuffle them in place
            self.users, self.items, self.ratings = users.copy(), items.copy(), ratings.copy()
            return
        if counts is None:
            counts = np.bincount(users, minlength=n_users), np.bincount(items, minlength=n_items)
        self.user_block = mf_partition(counts[0], B, rng.permutation(n_users))
        self.item_block = mf_partition(counts[1], B, rng.permutation(n_items))
        # the serial twin (same output) where the parallel layout would run on one thread anyway
        serial = users.shape[0] < _SMALL_LAYOUT or n_threads == 1
        layout = mf_block_layout_serial if serial else mf_block_layout
        # Epochs run on rows relabelled so that each block's rows are contiguous: with
        # the blocks' rows interleaved, two threads kept writing to the same cache
        # lines of bu/bi/P/Q (false sharing), which cost ~40% of an epoch on 2 threads.
        # Relabelling rows does not change the arithmetic: results are bit-identical.
        (self.block_ptr, self.users, self.items, self.ratings, self.user_order, self.item_order,
         self.user_new, self.item_new) = layout(users, items, ratings, self.user_block, self.item_block, B)

    def epoch(self, mu, bu, bi, P, Q, lr, reg, reg_bias):
        """Shuffle, then one SGD epoch on ``bu, bi, P, Q`` (in the trainer's row frame, updated
        in place); returns the running SSE."""
        from ..kernels.mf import mf_sgd_epoch, mf_sgd_epoch_blocked, mf_shuffle
        seed = int(self.rng.integers(_SEED_HIGH))        # drawn every epoch: the same stream
        seed = epoch_seed(seed, self.reshuffle, self.n_done)
        self.n_done += 1
        if self.serial:
            if seed >= 0:
                mf_shuffle(self.users, self.items, self.ratings, seed)
            return mf_sgd_epoch(self.users, self.items, self.ratings, mu, bu, bi, P, Q, lr, reg, reg_bias)
        strata = self.rng.permutation(self.n_blocks)
        return mf_sgd_epoch_blocked(self.users, self.items, self.ratings, self.block_ptr,
                                    self.n_blocks, strata, seed, mu, bu, bi, P, Q, lr, reg, reg_bias)


def epoch_seed(seed, reshuffle, n_done):
    """The shuffle seed an epoch uses: its draw, or -1 (keep the order) after the first epoch
    unless ``reshuffle``."""
    return seed if (reshuffle or n_done == 0) else -1


def _padded_rows(n_rows, k, dtype):
    """Zeros of shape ``(n_rows, kp)``, ``kp >= k`` the row length rounded up to whole 64-byte
    vectors, starting on a 64-byte boundary: every row then starts on a cache line and no
    vector load or store of :mod:`fastgrad.kernels._simd` straddles two lines."""
    from ..kernels._simd import VECTOR_BYTES
    item = np.dtype(dtype).itemsize
    w = VECTOR_BYTES // item
    kp = -(-k // w) * w
    nbytes = n_rows * kp * item
    buf = np.zeros(nbytes + VECTOR_BYTES, dtype=np.uint8)
    off = (-buf.ctypes.data) % VECTOR_BYTES
    return buf[off:off + nbytes].view(dtype).reshape(n_rows, kp)


class _Frame:
    """The row frame a trainer's epochs work in, and the moves between it and the model's.

    A trainer with ``user_order``/``item_order`` (working row ``w`` holds original row
    ``order[w]``) works on relabelled copies of the parameters: they are gathered once
    (:meth:`gather`) and written back (:meth:`scatter`) only when something outside
    needs them in the original frame. With ``pad`` the working factors are also padded
    (:func:`_padded_rows`: zero columns up to whole 64-byte vectors, aligned rows) --
    whole ML-100k-shaped fits with 100 factors 8% (float32) and 23% (float64) faster
    (2-vCPU Intel Xeon, AVX-512), the same bits: the kernels' row operations give the same
    results on zero-padded rows, and the pad stays zero. Without either (Dask, SVD++,
    fold-in) the model's own arrays are used.
    """

    def __init__(self, trainer, pad=False):
        self.uo = getattr(trainer, "user_order", None)
        self.io = getattr(trainer, "item_order", None)
        self.un = getattr(trainer, "user_new", None)
        self.in_ = getattr(trainer, "item_new", None)
        self.identity = self.uo is None           # rows are not relabelled
        self.pad = bool(pad)
        self.copies = self.pad or not self.identity

    def gather(self, bu, bi, P, Q, out=None):
        """Parameters in the working frame (new arrays, or ``out`` refilled)."""
        if not self.copies:
            return bu, bi, P, Q
        if out is None:
            if self.pad:
                out = (np.empty_like(bu), np.empty_like(bi), _padded_rows(*P.shape, P.dtype),
                       _padded_rows(*Q.shape, Q.dtype))
            else:
                out = (np.empty_like(bu), np.empty_like(bi), np.empty_like(P), np.empty_like(Q))
        for src, rows, dst in zip((bu, bi, P, Q), (self.uo, self.io, self.uo, self.io), out):
            if dst.ndim == 2:
                dst = dst[:, :src.shape[1]]
            if rows is None:
                dst[...] = src
            else:
                np.take(src, rows, axis=0, out=dst)
        return out

    def initial(self, bu, bi, P, Q, seed, std, n_threads):
        """The starting parameters in the working frame: ``bu, bi`` (zeros) and the factors
        of :func:`_init_factors`, drawn straight into the working rows instead of drawn and
        gathered. ``P, Q`` are filled only when there are no working copies."""
        nu, k = P.shape
        P0, Q0 = _init_factors(seed, nu, Q.shape[0], k, std, n_threads, P.dtype,
                               user_order=self.uo, item_order=self.io, pad=self.pad)
        if not self.copies:
            P[...], Q[...] = P0, Q0
            return bu, bi, P, Q
        return bu.copy(), bi.copy(), P0, Q0

    def scatter(self, work, bu, bi, P, Q):
        """Write the working-frame parameters ``work`` back into ``bu, bi, P, Q``."""
        if not self.copies:
            return
        for dst, rows, src in zip((bu, bi, P, Q), (self.uo, self.io, self.uo, self.io), work):
            if src.ndim == 2:
                src = src[:, :dst.shape[1]]
            if rows is None:
                dst[...] = src
            else:
                dst[rows] = src

    def rows(self, users, items):
        """Working-frame rows of original user/item rows (``-1``, unknown, kept)."""
        if self.identity:
            return users, items
        return (np.where(users >= 0, self.un[np.maximum(users, 0)], -1),
                np.where(items >= 0, self.in_[np.maximum(items, 0)], -1))

    def penalty(self, work, cu, ci, reg, reg_bias):
        """:func:`mf_penalty` of the working-frame parameters, summed in original row order
        (equal, bit for bit, to the penalty of the scattered parameters)."""
        from ..kernels.mf import mf_penalty
        if self.identity:  # identity rows as int32 arrays: the same specialisation as below
            return mf_penalty(*work, cu, ci, reg, reg_bias, np.arange(work[2].shape[0], dtype=np.int32),
                              np.arange(work[3].shape[0], dtype=np.int32))
        return mf_penalty(*work, cu, ci, reg, reg_bias, self.un, self.in_)


class _EpochProgress:
    """``verbose``: tqdm bar if installed, else one plain line per epoch."""

    def __init__(self, verbose, total, desc="mf"):
        self.bar = None
        self.verbose = bool(verbose)
        self.desc = desc
        self.t0 = time.perf_counter()
        if self.verbose:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc=desc, unit="epoch", leave=True)
            except ImportError:
                pass
        self.total = total

    def update(self, epoch, train_rmse, val_rmse=None):
        if not self.verbose:
            return
        if self.bar is not None:
            post = {"train_rmse": f"{train_rmse:.4f}"}
            if val_rmse is not None:
                post["val_rmse"] = f"{val_rmse:.4f}"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
        else:
            val = "" if val_rmse is None else f"  val_rmse {val_rmse:.4f}"
            print(f"{self.desc} epoch {epoch:4d}/{self.total}  train_rmse {train_rmse:.4f}{val}  "
                  f"({time.perf_counter() - self.t0:.2f}s)", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


# ============================================================================ fit
def fit(users, items=None, ratings=None, *, n_factors=100, n_epochs=20, lr=0.005, reg=0.02,
        reg_bias=0.02, init_std=0.1, random_state=None, n_threads=None, n_blocks=None,
        validation=None, early_stopping=False, patience=2, tol=1e-4, restore_best=True,
        lr_decay=1.0, rating_scale=None, train_metrics="running",
        columns=("user", "item", "rating"), verbose=False, callback=None, client=None,
        dtype=np.float64, shuffle="once"):
    """Fit a biased matrix factorisation by per-rating SGD (scikit-surprise ``SVD`` defaults).

    Parameters
    ----------
    users : array-like of shape (n,), pandas.DataFrame or scipy.sparse matrix
        User ids (any hashable values: ints, strings, ...). Alternatively a
        DataFrame with ``columns`` (user, item, rating), or a sparse matrix
        (rows = users, columns = items, explicitly stored entries = ratings);
        then ``items`` and ``ratings`` are omitted.
    items : array-like of shape (n,), optional
        Item ids.
    ratings : array-like of shape (n,), optional
        Ratings (finite numbers).
    n_factors : int, default=100
        Number of latent factors ``k >= 1``.
    n_epochs : int, default=20
        Maximum number of passes over the ratings.
    lr : float, default=0.005
        Learning rate (> 0). The factor 2 of the gradient is folded in: a step
        is ``theta -= (lr / 2) * grad f``.
    reg : float, default=0.02
        Penalty on ``||p_u||^2 + ||q_i||^2`` in every rating's loss (>= 0).
    reg_bias : float, default=0.02
        Penalty on ``bu^2 + bi^2`` in every rating's loss (>= 0).
    init_std : float, default=0.1
        Factors start as independent ``N(0, init_std^2)`` draws (drawn in parallel
        from ``random_state``, the same for any thread count); biases start at 0.
    random_state : None, int or numpy.random.Generator
        Seeds the initialisation, the block partition and the shuffles. A fixed
        value reproduces a fit exactly for a given ``n_blocks`` (and so for a
        given ``n_threads``).
    n_threads : int, optional
        Threads; ``None`` follows ``numba.get_num_threads()``. With 1 thread
        the serial kernel runs (one global shuffle, see ``shuffle``).
    n_blocks : int, optional
        Blocks per dimension of the parallel schedule (``B``); default
        ``2 * n_threads``, more for large data (serial when ``n_threads == 1``), see
        :func:`default_n_blocks`. Results depend on ``B``, never on timing.
    validation : tuple (users, items, ratings), DataFrame or sparse matrix, optional
        Held-out ratings: their RMSE is recorded after every epoch
        (``val_rmse``) and drives early stopping.
    early_stopping : bool, default=False
        Stop when the monitored metric (validation RMSE, else the training
        objective) has not improved by more than ``tol`` for ``patience`` epochs.
    patience : int, default=2
        Epochs without improvement tolerated by early stopping.
    tol : float, default=1e-4
        Minimum improvement (absolute, in the metric's units) for early stopping;
        also the relative-change threshold that sets ``converged`` without it.
    restore_best : bool, default=True
        With early stopping, return the parameters of the best epoch.
    lr_decay : float or callable, default=1.0
        Epoch ``e`` (0-based) uses ``lr * lr_decay**e`` for a float in (0, 1], or
        ``lr_decay(e, lr)`` for a callable returning the learning rate.
    rating_scale : tuple (lo, hi), optional
        Predictions (and validation RMSE) are clipped to it. Training is not.
    train_metrics : {"running", "exact"}, default="running"
        ``"running"`` records the training RMSE from the errors seen during the
        epoch (free); ``"exact"`` adds one prediction pass per epoch.
    columns : tuple of 3 str, default=("user", "item", "rating")
        Column names for DataFrame input.
    verbose : bool, default=False
        Progress bar (tqdm if installed, else one line per epoch).
    callback : callable, optional
        ``callback(epoch, state) -> bool``; ``state`` is a dict with ``mu,
        user_bias, item_bias, P, Q, lr, train_rmse, val_rmse, objective``.
        Returning True stops training. Changes the callback makes to the arrays
        in place are kept (local fits). With a callback the parameters are
        copied out of and back into the epochs' working frame after every epoch
        (about 2 x 2 MB for MovieLens-100k with 100 factors).
    client : distributed.Client, optional
        Run the epochs by distributed stratified SGD on the client's workers
        (:func:`fastgrad.dask.fit_mf`); ``n_blocks`` then defaults to the number
        of workers and the fit equals the local one with the same ``n_blocks``.
    dtype : {numpy.float64, numpy.float32}, default=numpy.float64
        Storage of the factors and biases (``P, Q, user_bias, item_bias``). With
        float32 the SGD steps (their errors included), the dot products of
        predictions and the penalty's squared row norms run in float32 (about half
        the memory traffic), while the loss sums and the predictions' other terms
        are float64; the
        held-out RMSE is that of float64 up to SGD noise. Only the kernels of the
        dtype used are compiled. Not available with ``client``.
    shuffle : {"once", "epoch"}, default="once"
        Order of the ratings within each block (the whole data when serial):
        ``"once"`` shuffles them before the first epoch and keeps that order (each
        epoch still visits the blocks in a new random order); ``"epoch"``
        reshuffles before every epoch. On MovieLens-100k-shaped data both reach the
        same held-out RMSE (6 seeds: 0.9528 either way), and ``"once"`` saves the
        reshuffle, about 14% of an epoch. (scikit-surprise's ``SVD`` does not
        shuffle at all.)

    Returns
    -------
    MFModel

    Raises
    ------
    ValueError
        Bad hyper-parameters, empty or non-finite data, inconsistent lengths,
        or divergence (non-finite loss: decrease ``lr``).
    """
    t_start = time.perf_counter()
    n_factors = check_scalar(n_factors, "n_factors", kind="int", lo=1)
    n_epochs = check_scalar(n_epochs, "n_epochs", kind="int", lo=0)
    lr = check_scalar(lr, "lr", lo=0.0, lo_open=True)
    reg = check_scalar(reg, "reg", lo=0.0)
    reg_bias = check_scalar(reg_bias, "reg_bias", lo=0.0)
    init_std = check_scalar(init_std, "init_std", lo=0.0)
    patience = check_scalar(patience, "patience", kind="int", lo=1)
    tol = check_scalar(tol, "tol", lo=0.0)
    check_choice(train_metrics, "train_metrics", ("running", "exact"))
    check_choice(shuffle, "shuffle", ("once", "epoch"))
    if not callable(lr_decay):
        lr_decay = check_scalar(lr_decay, "lr_decay", lo=0.0, hi=1.0, lo_open=True)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable")
    rating_scale, n_threads, n_blocks = _check_schedule_args(rating_scale, n_threads, n_blocks, columns)
    dtype = _check_dtype(dtype)
    if client is not None and dtype != np.float64:
        raise ValueError("dtype=float32 is not supported with client (distributed fits are float64)")

    u, i, r = as_triples(users, items, ratings, columns=tuple(columns), name="data")
    n = r.shape[0]
    if n == 0:
        raise ValueError("ratings must not be empty")
    user_index, uu, cu = _IdIndex.build_counted(u)      # int32 rows and ratings per row
    item_index, ii, ci = _IdIndex.build_counted(i)
    nu, ni = len(user_index), len(item_index)
    rng = check_random_state(random_state)

    mu = float(r.mean())
    init_seed = int(rng.integers(_SEED_HIGH))
    # filled from the working copies at the end (and for a callback); see _Frame.initial
    P = np.empty((nu, n_factors), dtype=dtype)
    Q = np.empty((ni, n_factors), dtype=dtype)
    bu = np.zeros(nu, dtype=dtype)
    bi = np.zeros(ni, dtype=dtype)
    params = dict(n_factors=n_factors, n_epochs=n_epochs, lr=lr, reg=reg, reg_bias=reg_bias,
                  init_std=init_std, lr_decay=lr_decay, n_threads=n_threads, n_blocks=n_blocks,
                  early_stopping=bool(early_stopping), patience=patience, tol=tol,
                  columns=tuple(columns), dtype=np.dtype(dtype).name, shuffle=shuffle)
    model = MFModel(mu=mu, user_bias=bu, item_bias=bi, P=P, Q=Q, user_ids=user_index.ids,
                    item_ids=item_index.ids, params=params, rating_scale=rating_scale,
                    _users=user_index, _items=item_index)
    lo, hi = model._bounds()

    val = None
    if validation is not None:
        vu, vi, vr = _split_data(validation, "validation", tuple(columns))
        if vr.shape[0] == 0:
            raise ValueError("validation must not be empty")
        val = (user_index.lookup(vu), item_index.lookup(vi), vr)

    progress = _EpochProgress(verbose, n_epochs)
    history, train_rmse, val_rmse, lrs = [], [], [], []
    best, best_epoch, stale, best_state = np.inf, 0, 0, None
    stopped_early = False
    with _numba_threads(n_threads), contextlib.closing(progress):
        if client is None:
            trainer = _Trainer(uu, ii, r, nu, ni, rng, n_threads, n_blocks, counts=(cu, ci),
                               row_bytes=P.shape[1] * P.itemsize, shuffle=shuffle)
        else:
            from ..dask._mf import make_trainer
            trainer = make_trainer(client, uu, ii, r, nu, ni, rng, n_blocks, shuffle=shuffle)
        params["n_blocks"] = trainer.n_blocks
        # epochs, metrics and snapshots all run in the trainer's row frame: the parameters
        # start there and are scattered back only for callbacks and at the end
        frame = _Frame(trainer, pad=client is None)
        work = frame.initial(bu, bi, P, Q, init_seed, init_std, n_threads)
        if train_metrics == "exact":
            uu_w, ii_w = frame.rows(uu, ii)
        if val is not None:
            val = frame.rows(val[0], val[1]) + (val[2],)
        for ep in range(n_epochs):
            lr_e = float(lr_decay(ep, lr)) if callable(lr_decay) else lr * lr_decay ** ep
            if not (math.isfinite(lr_e) and lr_e > 0):
                raise ValueError(f"lr_decay gave an invalid learning rate {lr_e!r} at epoch {ep}")
            sse = trainer.epoch(mu, *work, lr_e, reg, reg_bias)
            _check_diverged(sse, ep + 1, lr_e)
            if train_metrics == "exact":
                sse, _ = _error_sums(uu_w, ii_w, r, mu, *work, -np.inf, np.inf, n_threads)
            obj = (sse + frame.penalty(work, cu, ci, reg, reg_bias)) / n
            history.append(obj)
            train_rmse.append(math.sqrt(sse / n))
            lrs.append(lr_e)
            vr_e = None
            if val is not None:
                vsse, _ = _error_sums(val[0], val[1], val[2], mu, *work, lo, hi, n_threads)
                vr_e = math.sqrt(vsse / val[2].shape[0])
                val_rmse.append(vr_e)
            progress.update(ep + 1, train_rmse[-1], vr_e)
            if early_stopping:
                metric = vr_e if val is not None else obj
                if metric < best - tol:
                    best, best_epoch, stale = metric, ep + 1, 0
                    if restore_best:
                        best_state = tuple(x.copy() for x in work)
                else:
                    stale += 1
            if callback is not None:
                frame.scatter(work, bu, bi, P, Q)
                state = dict(mu=mu, user_bias=bu, item_bias=bi, P=P, Q=Q, lr=lr_e,
                             train_rmse=train_rmse[-1], val_rmse=vr_e, objective=obj)
                stop = callback(ep + 1, state)
                frame.gather(bu, bi, P, Q, out=work)      # the callback may have changed them
                if stop:
                    break
            if early_stopping and stale >= patience:
                stopped_early = True
                break

    n_iter = len(history)
    model.best_epoch = n_iter
    if early_stopping and restore_best and best_state is not None and best_epoch < n_iter:
        for x, saved in zip(work, best_state):
            x[:] = saved
        model.best_epoch = best_epoch
    if early_stopping:
        converged = stopped_early
        if not stopped_early and n_iter == n_epochs and n_epochs > 0:
            warnings.warn(f"mf.fit: early stopping did not trigger within n_epochs={n_epochs}; "
                          "increase n_epochs or loosen tol", ConvergenceWarning, stacklevel=2)
    else:
        converged = n_iter >= 2 and abs(history[-2] - history[-1]) <= tol * max(1.0, abs(history[-2]))
    if not frame.copies:
        sse, _ = _error_sums(uu, ii, r, mu, bu, bi, P, Q, -np.inf, np.inf, n_threads)
    else:
        # on the trainer's block-ordered triples: rows are reused from cache (3.0 s -> 0.3 s
        # for 20M ratings); the sum differs from the original-order one by rounding only
        sse, _ = _error_sums(trainer.users, trainer.items, trainer.ratings, mu, *work,
                             -np.inf, np.inf, n_threads)
        frame.scatter(work, bu, bi, P, Q)
    model.objective = (sse + _penalty(model, cu, ci)) / n
    model.n_iter = n_iter
    model.converged = bool(converged)
    model.history = np.asarray(history, dtype=np.float64)
    model.train_rmse = np.asarray(train_rmse, dtype=np.float64)
    model.val_rmse = np.asarray(val_rmse, dtype=np.float64)
    model.lr_history = np.asarray(lrs, dtype=np.float64)
    model.fit_time = time.perf_counter() - t_start
    return model


# ============================================================================ simulate
def simulate(n_users=943, n_items=1682, n_ratings=100_000, *, n_factors=10, noise=0.5,
             mu=3.5, bias_std=0.3, factor_std=None, random_state=None):
    """Ratings from a biased low-rank model plus Gaussian noise (unclipped, continuous).

    ``r = mu + bu + bi + p_u . q_i + noise * N(0, 1)`` on ``n_ratings`` distinct
    (user, item) pairs drawn uniformly; factors are ``N(0, factor_std)`` with
    ``factor_std = (0.25 / n_factors) ** 0.25`` by default (so the interaction
    term has variance 0.25).

    Returns
    -------
    users, items : int64 ndarray of shape (n_ratings,)
    ratings : float64 ndarray of shape (n_ratings,)
    truth : dict
        ``mu, user_bias, item_bias, P, Q, noise``.
    """
    n_users = check_scalar(n_users, "n_users", kind="int", lo=1)
    n_items = check_scalar(n_items, "n_items", kind="int", lo=1)
    n_ratings = check_scalar(n_ratings, "n_ratings", kind="int", lo=1, hi=n_users * n_items)
    n_factors = check_scalar(n_factors, "n_factors", kind="int", lo=1)
    rng = check_random_state(random_state)
    if factor_std is None:
        factor_std = (0.25 / n_factors) ** 0.25
    cells = rng.choice(n_users * n_items, size=n_ratings, replace=False)
    users, items = cells // n_items, cells % n_items
    bu = rng.normal(0, bias_std, n_users)
    bi = rng.normal(0, bias_std, n_items)
    P = rng.normal(0, factor_std, (n_users, n_factors))
    Q = rng.normal(0, factor_std, (n_items, n_factors))
    signal = mu + bu[users] + bi[items] + np.einsum("ij,ij->i", P[users], Q[items])
    ratings = signal + noise * rng.standard_normal(n_ratings)
    truth = dict(mu=mu, user_bias=bu, item_bias=bi, P=P, Q=Q, noise=noise)
    return users.astype(np.int64), items.astype(np.int64), ratings, truth


# ============================================================================ SVD++
@dataclass
class SVDppModel(MFModel):
    """A fitted SVD++ model (Koren 2008): ``r_hat = mu + bu + bi + q_i . (p_u + z_u)``,
    ``z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j``.

    Same interface as :class:`MFModel` (``predict``, ``rmse``, ``mae``, ``loss``,
    ``save``/:func:`load`; unknown users fall back to ``mu + bi``, unknown items to
    ``mu + bu``), plus:

    Attributes
    ----------
    Y : ndarray of shape (n_items, n_factors)
        Implicit item factors ``y_j``.
    history, train_rmse
        Per epoch: running mean squared error and RMSE of the sweep (errors taken
        just before each rating's step; no penalty in ``history``).
    implicit_indptr, implicit_indices : ndarray
        ``N(u)`` of user row ``u`` is ``implicit_indices[implicit_indptr[u]:implicit_indptr[u+1]]``
        (item rows): the items it rated in training plus the ``implicit`` pairs given to
        :func:`fit_svdpp`.
    """

    Y: np.ndarray = None
    implicit_indptr: np.ndarray = None
    implicit_indices: np.ndarray = None
    _P_eff: np.ndarray = field(default=None, repr=False, compare=False)

    _FORMAT = "fastgrad.mf.svdpp/1"
    _EXTRA = ("Y", "implicit_indptr", "implicit_indices")

    def _extra_arrays(self):
        return dict(Y=self.Y, implicit_indptr=self.implicit_indptr,
                    implicit_indices=self.implicit_indices)

    def implicit_factors(self):
        """``z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j`` for every user row, shape (n_users, n_factors)."""
        from ..kernels.mf import svdpp_implicit_sums
        Z = np.empty_like(self.P)
        svdpp_implicit_sums(self.implicit_indptr, self.implicit_indices, self.Y, Z)
        return Z

    def _pu(self):
        if self._P_eff is None or self._P_eff.shape != self.P.shape:
            self._P_eff = self.P + self.implicit_factors()
        return self._P_eff

    def _penalty_sum(self, cu, ci):
        """Sum over ratings of the penalty: adds ``reg sum_{j in N(u)} ||y_j||^2`` per rating of u."""
        ysq = np.einsum("ij,ij->i", self.Y, self.Y)
        per_user = np.add.reduceat(np.append(ysq[self.implicit_indices], 0.0),
                                   np.minimum(self.implicit_indptr[:-1], len(self.implicit_indices)))
        per_user[np.diff(self.implicit_indptr) == 0] = 0.0
        return _penalty(self, cu, ci) + self.params["reg"] * float(per_user @ cu)

    def partial_fit(self, *args, **kwargs):
        raise NotImplementedError("partial_fit is not available for SVD++ models: refit with "
                                  "fit_svdpp (pass implicit=(users, items) for implicit feedback)")


def _implicit_pairs(implicit, columns):
    if implicit is None:
        return None
    if hasattr(implicit, "columns") and hasattr(implicit, "iloc"):
        missing = [c for c in columns[:2] if c not in implicit.columns]
        if missing:
            raise ValueError(f"implicit: DataFrame has no column(s) {missing}")
        iu, ii = (implicit[c].to_numpy() for c in columns[:2])
    elif _is_sparse(implicit):
        coo = implicit.tocoo()
        iu, ii = np.asarray(coo.row, dtype=np.int64), np.asarray(coo.col, dtype=np.int64)
    elif isinstance(implicit, (tuple, list)) and len(implicit) == 2:
        iu, ii = implicit
    else:
        raise TypeError("implicit must be a (users, items) pair of id arrays, a DataFrame or a "
                        "sparse matrix")
    iu = _as_ids(iu, "implicit users")
    ii = _as_ids(ii, "implicit items")
    check_consistent_length(**{"implicit users": iu, "implicit items": ii})
    return iu, ii


def fit_svdpp(users, items=None, ratings=None, *, n_factors=20, n_epochs=20, lr=0.007, reg=0.02,
              reg_bias=None, init_mean=0.0, init_std=0.1, implicit=None, random_state=None,
              n_threads=None, n_blocks=None, validation=None, rating_scale=None,
              columns=("user", "item", "rating"), verbose=False):
    """Fit SVD++ (Koren 2008) by parallel SGD, with scikit-surprise ``SVDpp``'s defaults.

    Model: ``r_hat(u, i) = mu + bu[u] + bi[i] + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)``,
    ``N(u)`` = the items ``u`` rated in ``ratings`` plus its ``implicit`` items. Each
    rating's loss is ``e^2 + reg (||p_u||^2 + ||q_i||^2 + sum_{j in N(u)} ||y_j||^2) +
    reg_bias (bu^2 + bi^2)``; a step moves every parameter by ``-(lr / 2) * gradient``
    as Surprise's SVDpp does. The steps on the ``|N(u)|`` rows ``y_j`` are taken in
    closed form (per user, in ``O(k)`` per rating) and applied to ``Y`` at the end of
    each epoch, so an epoch costs about three plain MF epochs instead of
    ``sum_u |N(u)|^2`` row updates. With more than one thread the ratings are swept in
    the block-stratified schedule of :func:`fit`; a fixed ``random_state`` and
    ``n_blocks`` reproduce a fit exactly.

    Parameters
    ----------
    users, items, ratings
        Training ratings, in any form :func:`fit` accepts.
    n_factors : int, default=20
    n_epochs : int, default=20
    lr : float, default=0.007
        Learning rate of every parameter (Surprise's ``lr_all``); ``lr * reg < 1``.
    reg : float, default=0.02
        Penalty of the factors ``p, q, y`` (Surprise's ``reg_all``).
    reg_bias : float, optional
        Penalty of the biases; default ``reg``.
    init_mean, init_std : float, default=0, 0.1
        Factors ``p, q, y`` start as ``N(init_mean, init_std^2)`` draws; biases at 0.
    implicit : (users, items) pair, DataFrame or sparse matrix, optional
        Extra implicit feedback: pairs whose item joins ``N(user)`` without a rating
        (e.g. the items of a test set, as Koren does). Users or items that appear
        only here get rows (with zero ``p``/``q`` and bias) and so are predicted from
        the implicit term.
    random_state, n_threads, rating_scale, columns, verbose
        As in :func:`fit`.
    n_blocks : int, optional
        Blocks per dimension of the parallel schedule; default ``n_threads`` (every
        cell a user visits costs one sum over its ``N(u)``). Worker ``b`` sees its own
        steps on ``Y`` at once and the other workers' after each of the ``n_blocks``
        strata; with ``n_blocks=1`` the sweep is serial and takes exactly Surprise's
        steps, user by user.
    validation : tuple (users, items, ratings), DataFrame or sparse matrix, optional
        Held-out ratings: RMSE after every epoch in ``val_rmse``.

    Returns
    -------
    SVDppModel

    Examples
    --------
    >>> from fastgrad import mf
    >>> u, i, r, _ = mf.simulate(200, 100, 5000, n_factors=3, noise=0.3, random_state=0)
    >>> model = mf.fit_svdpp(u, i, r, n_epochs=10, random_state=0, n_threads=1)
    >>> model.rmse(u, i, r) < 0.6
    True
    """
    from ..kernels.mf import (svdpp_implicit_csr, svdpp_implicit_sums,
                             svdpp_sgd_epoch_blocked, svdpp_user_runs)
    t_start = time.perf_counter()
    n_factors = check_scalar(n_factors, "n_factors", kind="int", lo=1)
    n_epochs = check_scalar(n_epochs, "n_epochs", kind="int", lo=0)
    lr = check_scalar(lr, "lr", lo=0.0, lo_open=True)
    reg = check_scalar(reg, "reg", lo=0.0)
    reg_bias = reg if reg_bias is None else check_scalar(reg_bias, "reg_bias", lo=0.0)
    if lr * reg >= 1 or lr * reg_bias >= 1:
        raise ValueError(f"lr * reg must be < 1 (every step shrinks the factors by 1 - lr reg), "
                         f"got lr={lr:g}, reg={reg:g}, reg_bias={reg_bias:g}")
    init_mean = check_scalar(init_mean, "init_mean")
    init_std = check_scalar(init_std, "init_std", lo=0.0)
    rating_scale, n_threads, n_blocks = _check_schedule_args(rating_scale, n_threads, n_blocks, columns)
    columns = tuple(columns)

    u, i, r = as_triples(users, items, ratings, columns=columns, name="data")
    n = r.shape[0]
    if n == 0:
        raise ValueError("ratings must not be empty")
    imp = _implicit_pairs(implicit, columns)
    user_index, uu = _IdIndex.build(u)
    item_index, ii = _IdIndex.build(i)
    nu_r, ni_r = len(user_index), len(item_index)
    if imp is not None:
        user_index, iu = user_index.extend(imp[0])
        item_index, ij = item_index.extend(imp[1])
        nu_i = np.concatenate([uu, iu])
        ni_i = np.concatenate([ii, ij])
    else:
        nu_i, ni_i = uu, ii
    nu, ni = len(user_index), len(item_index)
    cu = np.bincount(uu, minlength=nu)
    ci = np.bincount(ii, minlength=ni)
    uu = uu.astype(np.int32)
    ii = ii.astype(np.int32)
    rng = check_random_state(random_state)
    mu = float(r.mean())

    from ..kernels.mf import mf_normal_rows
    PQY = np.empty((nu + 2 * ni, n_factors))
    with _numba_threads(n_threads):
        mf_normal_rows(PQY, int(rng.integers(_SEED_HIGH)), 0, init_mean, init_std)
    P, Q, Y = PQY[:nu], PQY[nu:nu + ni], PQY[nu + ni:]
    P[nu_r:] = 0.0                     # rows seen only in `implicit`: no rating ever moves them
    Q[ni_r:] = 0.0
    bu, bi = np.zeros(nu), np.zeros(ni)
    params = dict(model="svdpp", n_factors=n_factors, n_epochs=n_epochs, lr=lr, reg=reg,
                  reg_bias=reg_bias, init_mean=init_mean, init_std=init_std, n_threads=n_threads,
                  n_blocks=n_blocks, columns=columns)
    lo, hi = (-np.inf, np.inf) if rating_scale is None else rating_scale
    val = None
    if validation is not None:
        vu, vi, vr = _split_data(validation, "validation", columns)
        if vr.shape[0] == 0:
            raise ValueError("validation must not be empty")
        val = (user_index.lookup(vu), item_index.lookup(vi), vr)

    progress = _EpochProgress(verbose, n_epochs, desc="svdpp")
    history, train_rmse, val_rmse, lrs = [], [], [], []
    shrink = 1.0 - lr * reg
    with _numba_threads(n_threads), contextlib.closing(progress):
        if n_blocks is None:
            # one user block per thread: each block re-sums z_u once per cell it visits
            n_blocks = 1 if n_threads == 1 else n_threads
        trainer = _Trainer(uu, ii, r, nu, ni, rng, n_threads, n_blocks, counts=(cu, ci))
        params["n_blocks"] = trainer.n_blocks
        frame = _Frame(trainer)
        work = frame.gather(bu, bi, P, Q)
        Yw = Y if frame.identity else Y[frame.io]
        wu, wi = frame.rows(nu_i, ni_i)
        indptr, indices, _, _, inv_sqrt = svdpp_implicit_csr(wu, wi, nu, ni)
        B = trainer.n_blocks
        if trainer.serial:
            block_ptr = np.array([0, n], dtype=np.int64)
            strata = np.zeros(1, dtype=np.int64)
            user_start = np.array([0, nu], dtype=np.int64)
        else:
            block_ptr = trainer.block_ptr
            user_start = np.zeros(B + 1, dtype=np.int64)
            np.cumsum(np.bincount(trainer.user_block, minlength=B), out=user_start[1:])
        run_ptr, cell_run_ptr = svdpp_user_runs(trainer.users, trainer.items, trainer.ratings,
                                                block_ptr, B, user_start)
        D = np.empty((B, ni))
        A = np.empty((B, ni, n_factors))
        if val is not None:
            val = frame.rows(val[0], val[1]) + (val[2],)
            Z = np.empty((nu, n_factors))
        for ep in range(n_epochs):
            seed = int(rng.integers(_SEED_HIGH))
            if not trainer.serial:
                strata = rng.permutation(B)
            sse = svdpp_sgd_epoch_blocked(trainer.users, trainer.items, trainer.ratings, block_ptr,
                                          run_ptr, cell_run_ptr, B, strata, seed, mu, *work, Yw,
                                          indptr, indices, inv_sqrt, D, A, lr, reg, reg_bias)
            _check_diverged(sse, ep + 1, lr)
            history.append(sse / n)
            train_rmse.append(math.sqrt(sse / n))
            lrs.append(lr)
            vr_e = None
            if val is not None:
                svdpp_implicit_sums(indptr, indices, Yw, Z)
                vsse, _ = _error_sums(val[0], val[1], val[2], mu, work[0], work[1], work[2] + Z,
                                      work[3], lo, hi, n_threads)
                vr_e = math.sqrt(vsse / val[2].shape[0])
                val_rmse.append(vr_e)
            progress.update(ep + 1, train_rmse[-1], vr_e)
    frame.scatter(work, bu, bi, P, Q)
    if not frame.identity:
        Y[frame.io] = Yw
    # N(u) in the model's own rows
    o_indptr, o_indices, _, _, _ = svdpp_implicit_csr(nu_i, ni_i, nu, ni)
    model = SVDppModel(mu=mu, user_bias=bu, item_bias=bi, P=P, Q=Q, user_ids=user_index.ids,
                       item_ids=item_index.ids, params=params, rating_scale=rating_scale,
                       _users=user_index, _items=item_index, Y=Y, implicit_indptr=o_indptr,
                       implicit_indices=o_indices)
    sse, _ = _error_sums(uu, ii, r, mu, bu, bi, model._pu(), Q, -np.inf, np.inf, n_threads)
    model.objective = (sse + model._penalty_sum(cu, ci)) / n
    model.n_iter = len(history)
    model.converged = len(history) >= 2 and abs(history[-2] - history[-1]) <= 1e-4 * max(1.0, history[-2])
    model.history = np.asarray(history, dtype=np.float64)
    model.train_rmse = np.asarray(train_rmse, dtype=np.float64)
    model.val_rmse = np.asarray(val_rmse, dtype=np.float64)
    model.lr_history = np.asarray(lrs, dtype=np.float64)
    model.best_epoch = model.n_iter
    model.fit_time = time.perf_counter() - t_start
    return model
