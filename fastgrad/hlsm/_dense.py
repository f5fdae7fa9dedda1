"""Dense multiplex data: :class:`DenseLayers` (an int8 array) and its compiled encoding."""
import numpy as np

from ._base import (LayersBase, check_layer_shapes, classical_mds, ext_kernel, fast_kernels, finish_start,
                    hop_distances)

__all__ = ["DenseLayers", "encode_layers", "encode_dense"]


class DenseLayers(LayersBase):
    """Dense encoding: ``Y`` int8 (K, n, n), 1 tie, 0 non-tie, -1 missing or diagonal;
    ``YT`` its transpose per layer (the same array when undirected)."""

    is_sparse = False

    @classmethod
    def from_encoded(cls, Y, directed, n_obs=None):
        """From the int8 encoding ``Y`` (``n_obs``: its observed ordered dyads, when known)."""
        Y = np.ascontiguousarray(Y, dtype=np.int8)
        YT = np.ascontiguousarray(Y.transpose(0, 2, 1)) if directed else Y
        if n_obs is None:
            n_obs = int(np.count_nonzero(Y >= 0))
        return cls._from_fields(Y=Y, YT=YT, directed=bool(directed), K=Y.shape[0], n=Y.shape[1],
                                n_obs=n_obs if directed else n_obs // 2)

    def nll_grad(self, z, alpha, dtype=np.float64):
        z = np.ascontiguousarray(z)
        grad_z = np.empty_like(z)
        grad_alpha = np.empty_like(alpha)
        nll = fast_kernels(dtype)[0](self.Y, self.YT, z, alpha, self.directed, grad_z, grad_alpha)
        return float(nll), grad_z, grad_alpha

    def nll(self, z, alpha, *, per_layer=False, dtype=np.float64):
        kern = fast_kernels(dtype)[1]
        z = np.ascontiguousarray(z)
        if per_layer:
            return np.array([kern(self.Y[k:k + 1], np.ascontiguousarray(z[k:k + 1]), alpha[k:k + 1],
                                  self.directed) for k in range(self.K)])
        return float(kern(self.Y, z, alpha, self.directed))

    def nll_grad_ext(self, z, alpha, so, ro, X, XT, beta, with_grad=True, per_layer=False):
        """nll and gradients (z, alpha, so, ro, beta) of the model with node effects ``so``/``ro``
        (K, n) and covariates ``X`` (p, n, n) with coefficients ``beta`` (K, p)."""
        K, n, _ = z.shape
        hlsm_nll_grad_ext = ext_kernel(K * n * n, self.directed)
        z = np.ascontiguousarray(z)
        p = X.shape[0]
        beta = np.ascontiguousarray(beta, dtype=np.float64).reshape(K, p)
        gz, ga = np.empty_like(z), np.empty(K)
        gs, gr, gb = np.empty((K, n)), np.empty((K, n)), np.empty((K, p))
        if per_layer:
            out = np.empty(K)
            for k in range(K):
                sl = slice(k, k + 1)
                out[k] = hlsm_nll_grad_ext(self.Y[sl], self.YT[sl], np.ascontiguousarray(z[sl]), alpha[sl],
                                           np.ascontiguousarray(so[sl]), np.ascontiguousarray(ro[sl]),
                                           X, XT, beta[sl], self.directed, True, False,
                                           gz[sl], ga[sl], gs[sl], gr[sl], gb[sl])
            return out, None, None, None, None, None
        nll = hlsm_nll_grad_ext(self.Y, self.YT, z, np.ascontiguousarray(alpha), so, ro, X, XT, beta,
                                self.directed, True, with_grad, gz, ga, gs, gr, gb)
        if not with_grad:
            return float(nll), None, None, None, None, None
        return float(nll), gz, ga, gs, gr, gb

    def degrees(self):
        """(K, n) tie counts per node and layer (in + out ties if directed)."""
        ties = self.Y == 1
        deg = ties.sum(axis=2, dtype=np.float64)
        return deg + ties.sum(axis=1, dtype=np.float64) if self.directed else deg

    def tie_counts(self):
        """(n, n) CSR matrix of ties per pair summed over layers (both dyads if directed)."""
        import scipy.sparse as sp
        T = (self.Y == 1).sum(axis=0)
        if self.directed:
            T = T + T.T
        return sp.csr_matrix(T.astype(np.float64))

    def logit_density(self):
        """(K,) log-odds of a tie among the observed dyads of each layer."""
        out = np.empty(self.K)
        for k in range(self.K):
            obs = self.Y[k] >= 0
            p = (self.Y[k] == 1).sum() / max(obs.sum(), 1)
            p = min(max(p, 1e-6), 1 - 1e-6)
            out[k] = np.log(p / (1 - p))
        return out

    def subgraph(self, idx):
        sub = DenseLayers.from_encoded(self.Y[:, idx][:, :, idx], self.directed)
        for k in range(self.K):
            _check_counts(int((sub.Y[k] >= 0).sum()), int((sub.Y[k] == 1).sum()), k, "Y")
        return sub

    def dyad_values(self, k, i, j):
        return self.Y[k, i, j].astype(np.float64)

    def init_mds(self, dim, rng):
        """Classical MDS of geodesic distances of the union graph, then a scale and intercepts."""
        union = (self.Y == 1).any(axis=0)
        union = union | union.T
        D = hop_distances(union)
        ti, tj = np.nonzero(np.triu(union, 1))
        X = finish_start(classical_mds(D, dim), ti, tj, rng)
        return X, self.fit_intercepts(X, rng)


# ----------------------------------------------------------------------------- encoding

def encode_dense(Y, *, directed=False, name="Y"):
    """:class:`DenseLayers` of any input :func:`encode_layers` accepts."""
    enc, n_obs = _encode(Y, directed, name)
    return DenseLayers.from_encoded(enc, directed, n_obs)


def encode_layers(Y, *, directed=False, name="Y"):
    """Validate multiplex data and encode it for the kernels.

    Parameters
    ----------
    Y : array_like or sequence
        Array of shape (K, n, n), or a sequence of K (n, n) matrices (NumPy,
        scipy.sparse), or a :class:`fastgrad.datasets.Multiplex`. Entries are
        0/1 (bool or numeric); NaN marks a missing dyad. The diagonal is ignored.
    directed : bool, default=False
        If False every layer must be symmetric (including its NaN pattern).
    name : str
        Argument name for error messages.

    Returns
    -------
    ndarray of int8, shape (K, n, n)
        1 tie, 0 no tie, -1 missing or diagonal. No float copy of Y is kept.

    See Also
    --------
    Layers : the encoding with its likelihood methods, accepted by every hlsm function.
    """
    return _encode(Y, directed, name)[0]


def _encode(Y, directed, name):
    """``(int8 encoding, observed ordered dyads)`` of ``Y``."""
    if isinstance(Y, LayersBase):
        if Y.is_sparse:
            raise ValueError(f"{name} is sparse Layers; it has no dense encoding")
        return Y.Y, None
    if hasattr(Y, "Y") and hasattr(Y, "layers"):  # a Multiplex
        Y = Y.Y
    if isinstance(Y, np.ndarray) and Y.ndim == 3 and Y.dtype != object:
        A = _numeric(Y, name, "the layers")
        check_layer_shapes(A, name)
        enc, counts = _encode_compiled(A, directed, name)
        return enc, int(counts[:, 0].sum())
    layers = _layer_list(Y, name)
    K = len(layers)
    n = check_layer_shapes(layers, name)
    out = np.empty((K, n, n), dtype=np.int8)
    for k, A in enumerate(layers):
        if hasattr(A, "tocoo"):
            out[k] = _encode_sparse_layer(A, k, name)
            np.fill_diagonal(out[k], -1)
            _check_layer(out[k:k + 1], directed, name, first=k)
        else:
            out[k] = _encode_compiled(_numeric(A, name, f"layer {k}")[None], directed, name, first=k)[0][0]
    return out, None


def _numeric(A, name, what):
    """``A`` as an array the compiled encoder takes (bool viewed as uint8), or a TypeError."""
    A = np.asarray(A)
    if A.dtype == bool:
        return A.view(np.uint8)
    if not np.issubdtype(A.dtype, np.number):
        raise TypeError(f"{name}: {what} must be numeric or bool, got dtype {A.dtype}")
    if np.iscomplexobj(A):
        raise TypeError(f"{name}: {what} must be real, got complex")
    if not A.dtype.isnative:
        A = A.astype(A.dtype.newbyteorder("="))
    return np.ascontiguousarray(A)


def _encode_compiled(A, directed, name, first=0):
    """Encode (K, n, n) numeric ``A`` with :func:`fastgrad.kernels.hlsm_encode_layers` (in
    NumPy for small inputs) and raise the errors of :func:`encode_layers` (layers numbered
    from ``first``)."""
    from .._threads import SMALL_WORK
    K, n = A.shape[0], A.shape[1]
    out = np.empty((K, n, n), dtype=np.int8)
    bad = np.empty((K, n), dtype=np.int64)
    asym = np.empty((K, n), dtype=np.int64)
    counts = np.empty((K, 2), dtype=np.int64)
    if K * n * n < SMALL_WORK:
        # small layers: NumPy takes well under a millisecond per layer here, and the first
        # fit does not compile the encoding kernel (1.3 s, Xeon, 2026-12-02)
        _encode_numpy(A, bool(directed), out, bad, asym, counts)
    else:
        from .._threads import runs_serially
        from ..kernels import hlsm_encode as E
        kernel = E.hlsm_encode_layers_serial if runs_serially(K * n * n) else E.hlsm_encode_layers
        kernel(A, bool(directed), out, bad, asym, counts)
    for k in range(K):
        rows = np.flatnonzero(bad[k] >= 0)
        if rows.size:
            i, j = int(rows[0]), int(bad[k, rows[0]])
            raise ValueError(f"{name}: layer {first + k} has entries other than 0, 1 or NaN "
                             f"(Y[{first + k}, {i}, {j}] = {A[k, i, j]})")
        if not directed and (asym[k] >= 0).any():
            raise ValueError(f"{name}: layer {first + k} is not symmetric; pass directed=True for directed ties")
        _check_counts(int(counts[k, 0]), int(counts[k, 1]), first + k, name)
    return out, counts


def _encode_numpy(A, directed, out, first_bad, asym, counts):
    """:func:`fastgrad.kernels.hlsm_encode_layers` in NumPy: the same outputs, bit for bit
    (``asym``: the first column ``j < i`` of each row with an asymmetric pair, or -1)."""
    K, n = A.shape[0], A.shape[1]
    tie = A == 1
    ok = tie | (A == 0)
    np.subtract(tie, ~ok, out=out, dtype=np.int8, casting="unsafe")
    diag = np.arange(n)
    out[:, diag, diag] = -1
    bad = ~ok & (A == A)                       # neither 0, 1 nor NaN
    bad[:, diag, diag] = False
    ok[:, diag, diag] = False
    tie[:, diag, diag] = False
    counts[:, 0] = ok.sum(axis=(1, 2))
    counts[:, 1] = tie.sum(axis=(1, 2))
    first_bad[...] = np.where(bad.any(axis=2), bad.argmax(axis=2), -1)
    asym[...] = -1
    if not directed:
        low = np.tril(out != out.transpose(0, 2, 1), -1)
        asym[...] = np.where(low.any(axis=2), low.argmax(axis=2), -1)


def _check_counts(n_obs, n_ties, k, name):
    if n_obs == 0:
        raise ValueError(f"{name}: layer {k} has no observed dyads (all missing)")
    if n_ties == 0 or n_ties == n_obs:
        raise ValueError(f"{name}: layer {k} has {'no ties' if n_ties == 0 else 'only ties'}; "
                         "its intercept alpha_k would be infinite")


def _check_layer(enc, directed, name, first):
    E = enc[0]
    if not directed and not np.array_equal(E, E.T):
        raise ValueError(f"{name}: layer {first} is not symmetric; pass directed=True for directed ties")
    _check_counts(int((E >= 0).sum()), int((E == 1).sum()), first, name)


def _layer_list(Y, name):
    if isinstance(Y, np.ndarray):
        if Y.ndim != 3:
            raise ValueError(f"{name} must have shape (K, n, n), got ndim={Y.ndim} shape {Y.shape}")
        return list(Y)
    if hasattr(Y, "tocsr"):
        raise ValueError(f"{name}: a single sparse matrix is one layer; pass a list of K layers")
    if isinstance(Y, (list, tuple)):
        if len(Y) == 0:
            raise ValueError(f"{name} must contain at least one layer")
        out = []
        for k, A in enumerate(Y):
            if hasattr(A, "tocoo"):
                out.append(A)
            else:
                arr = np.asarray(A)
                if arr.ndim != 2:
                    raise ValueError(f"{name}: layer {k} must be 2-dimensional, got shape {arr.shape}")
                out.append(arr)
        return out
    try:
        arr = np.asarray(Y)
    except Exception as exc:  # pragma: no cover - defensive
        raise TypeError(f"{name} must be an array of shape (K, n, n) or a list of matrices: {exc}") from None
    if arr.dtype == object:
        raise TypeError(f"{name} must be numeric, got an object array")
    return _layer_list(arr, name)


def _encode_sparse_layer(A, k, name):
    C = A.tocoo()
    data = np.asarray(C.data, dtype=np.float64)
    ok = (data == 0) | (data == 1) | np.isnan(data)
    if not ok.all():
        raise ValueError(f"{name}: layer {k} has entries other than 0, 1 or NaN (e.g. {data[~ok][0]})")
    enc = np.zeros(A.shape, dtype=np.int8)
    enc[C.row, C.col] = np.where(np.isnan(data), -1, data).astype(np.int8)
    return enc
