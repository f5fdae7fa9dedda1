"""Sparse HLSM: memory O(n K d + edges), never an (n, n) array.

The likelihood is split into

* a dense pass over all pairs computed from the positions alone, treating
  every dyad as an observed non-tie (:func:`fastgrad.kernels.hlsm_nll_grad_fast`
  with ``ties_from_y=False``), and
* a correction over the stored entries (:func:`fastgrad.kernels.hlsm_edge_correction`):
  for each tie, ``-eta`` in the nll and ``-1`` in ``d nll / d eta`` (the
  non-tie term ``softplus(eta)`` is replaced by the tie term
  ``softplus(eta) - eta``); for each missing dyad, its non-tie contribution is
  removed.

Initialisation scales the same way: pivot MDS (Brandes & Pich 2006) of the
geodesic distances from a few dozen BFS pivots instead of classical MDS of all
pairs (used only when n is small enough for the dense version to be cheap).
Used by :func:`fastgrad.hlsm.fit` for scipy.sparse input (``sparse="auto"``
or ``True``).
"""
import time

import numpy as np

from ._base import (AUTO_MIN_N, LayersBase, check_layer_shapes, classical_mds, ext_kernel, fast_kernels,
                    finish_start, is_sparse_input)

__all__ = ["SparseLayers", "encode_sparse", "layers_from_edges", "nll_grad_sparse", "nll_sparse",
           "case_control_layers", "dyad_lists", "nll_grad_sparse_ext"]

#: Below this many nodes ``init="mds"`` uses exact classical MDS (as the dense path).
EXACT_MDS_MAX_N = 2000


class SparseLayers(LayersBase):
    """Encoded sparse multiplex data (symmetric count matrices per layer, stacked CSR):
    the sparse variant of :class:`fastgrad.hlsm.Layers`.

    Attributes
    ----------
    K, n : int
    directed : bool
    t_ptr, m_ptr : ndarray of int64, shape (K, n + 1)
        Absolute row pointers of the tie and missing count matrices.
    t_idx, m_idx : ndarray of int32
    t_cnt, m_cnt : ndarray of float64
        ``c_ij`` (ties among the dyads of pair {i, j}) and ``m_ij`` (missing ones).
    n_ties, n_missing : ndarray of int64, shape (K,)
        Dyads per layer (ordered dyads if directed, pairs if not).
    tie_layers, miss_layers : list of scipy.sparse.csr_matrix
        The tie and missing patterns of each layer (row i, column j: dyad i -> j).
    dense_part : bool
        True: the likelihood is the all-non-tie pass plus the corrections.
        False (case-control, :func:`case_control_layers`): the stored entries
        alone define the (approximate) likelihood.
    """

    is_sparse = True

    @classmethod
    def from_fields(cls, *, K, n, directed, t_ptr, t_idx, t_cnt, m_ptr, m_idx, m_cnt, n_ties, n_missing,
                    tie_layers, miss_layers, dense_part=True, dyads=None):
        #: ``dyads``: per-dyad terms for the node-effect kernels (:func:`dyad_lists`), built on first use
        return cls._from_fields(K=K, n=n, directed=bool(directed), t_ptr=t_ptr, t_idx=t_idx, t_cnt=t_cnt,
                                m_ptr=m_ptr, m_idx=m_idx, m_cnt=m_cnt, n_ties=n_ties, n_missing=n_missing,
                                tie_layers=tie_layers, miss_layers=miss_layers, dense_part=dense_part,
                                dyads=dyads)

    @property
    def n_obs(self):
        return int(self.K * self.pairs_per_layer - self.n_missing.sum())

    def nll_grad(self, z, alpha, dtype=np.float64):
        return nll_grad_sparse(self, z, alpha, dtype=dtype)

    def nll(self, z, alpha, *, per_layer=False, dtype=np.float64):
        return nll_sparse(self, z, alpha, per_layer=per_layer, dtype=dtype)

    def nll_grad_ext(self, z, alpha, so, ro, X, XT, beta, with_grad=True, per_layer=False):
        if X.shape[0]:
            raise ValueError("covariates need dense layers (the sparse likelihood does not take covariates)")
        nll, gz, ga, gs, gr = nll_grad_sparse_ext(self, z, alpha, so, ro, with_grad=with_grad,
                                                  per_layer=per_layer)
        return nll, gz, ga, gs, gr, (np.zeros((self.K, 0)) if with_grad and not per_layer else None)

    def degrees(self):
        csum = np.concatenate([[0.0], np.cumsum(self.t_cnt)])
        return csum[self.t_ptr[:, 1:]] - csum[self.t_ptr[:, :-1]]

    def tie_counts(self):
        import scipy.sparse as sp
        K, n = self.K, self.n
        C = sp.csr_matrix((n, n))
        for k in range(K):
            lo, hi = self.t_ptr[k, 0], self.t_ptr[k, -1]
            C = C + sp.csr_matrix((self.t_cnt[lo:hi], self.t_idx[lo:hi], self.t_ptr[k] - lo), shape=(n, n))
        C = C.tocsr()
        C.sum_duplicates()
        return C

    def logit_density(self):
        out = np.empty(self.K)
        for k in range(self.K):
            p = self.n_ties[k] / max(self.pairs_per_layer - self.n_missing[k], 1)
            p = min(max(p, 1e-6), 1 - 1e-6)
            out[k] = np.log(p / (1 - p))
        return out

    def subgraph(self, idx):
        from ._dense import encode_dense
        out = []
        for k in range(self.K):
            T = self.tie_layers[k][idx][:, idx].tocsr()
            M = self.miss_layers[k][idx][:, idx].tocsr()
            if M.nnz:
                M = M.copy()
                M.data[:] = np.nan
                T = (T + M).tocsr()
            out.append(T)
        if idx.size <= AUTO_MIN_N:
            return encode_dense(out, directed=self.directed)
        return encode_sparse(out, directed=self.directed)

    def dyad_values(self, k, i, j):
        y = np.asarray(self.tie_layers[k][i, j]).ravel().astype(np.float64)
        if self.n_missing[k]:
            y[np.asarray(self.miss_layers[k][i, j]).ravel() > 0] = -1.0
        return y

    def init_mds(self, dim, rng):
        return init_mds_sparse(self, dim, rng)


def layers_from_edges(layer, source, target, n, K, *, missing=None):
    """Build K sparse (n, n) layers from an edge list, without any dense array.

    Parameters
    ----------
    layer, source, target : array_like of int
        One entry per tie: layer index in ``[0, K)``, nodes in ``[0, n)``.
    n, K : int
    missing : tuple of three arrays, optional
        ``(layer, source, target)`` of missing dyads (stored as NaN).

    Returns
    -------
    list of scipy.sparse.csr_matrix
    """
    import scipy.sparse as sp
    out = []
    arrays = [np.asarray(a, dtype=np.int64) for a in (layer, source, target)]
    miss = None if missing is None else [np.asarray(a, dtype=np.int64) for a in missing]
    for nm, a in zip(("layer", "source", "target"), arrays):
        hi = K if nm == "layer" else n
        if a.ndim != 1 or a.shape != arrays[0].shape:
            raise ValueError(f"{nm} must be a 1-d array as long as the others")
        if a.size and (a.min() < 0 or a.max() >= hi):
            raise ValueError(f"{nm} has values outside [0, {hi})")
    for k in range(K):
        sel = arrays[0] == k
        rows, cols = arrays[1][sel], arrays[2][sel]
        data = np.ones(rows.size)
        if miss is not None:
            ms = miss[0] == k
            rows = np.concatenate([rows, miss[1][ms]])
            cols = np.concatenate([cols, miss[2][ms]])
            data = np.concatenate([data, np.full(int(ms.sum()), np.nan)])
        A = sp.coo_matrix((data, (rows, cols)), shape=(n, n)).tocsr()
        A.sum_duplicates()
        out.append(A)
    return out


def _symmetric_counts(P, directed):
    """Symmetric count matrix of a 0/1 pattern: P + P.T (directed) or P (undirected)."""
    C = (P + P.T) if directed else P
    C = C.tocsr()
    C.sum_duplicates()
    C.sort_indices()
    return C


def encode_sparse(Y, *, directed=False, name="Y"):
    """Validate a list of scipy.sparse layers and encode them for the sparse kernels.

    Stored entries equal to 1 are ties, NaN are missing dyads, explicit zeros
    are non-ties (as every absent entry); the diagonal is ignored. Nothing of
    size n^2 is created.

    Returns
    -------
    SparseLayers
    """
    import scipy.sparse as sp
    if isinstance(Y, SparseLayers):
        if Y.directed != bool(directed):
            raise ValueError(f"{name} was encoded with directed={Y.directed}")
        return Y
    if not is_sparse_input(Y):
        raise TypeError(f"{name} must be a list of scipy.sparse matrices")
    K = len(Y)
    n = check_layer_shapes(Y, name)
    ties, miss = [], []
    for k, A in enumerate(Y):
        C = sp.coo_matrix(A)
        data = np.asarray(C.data, dtype=np.float64)
        off = C.row != C.col
        ok = (data == 0) | (data == 1) | np.isnan(data)
        if not ok[off].all():
            raise ValueError(f"{name}: layer {k} has entries other than 0, 1 or NaN (e.g. {data[off & ~ok][0]})")
        t = off & (data == 1)
        m = off & np.isnan(data)
        T = sp.csr_matrix((np.ones(int(t.sum())), (C.row[t], C.col[t])), shape=(n, n))
        M = sp.csr_matrix((np.ones(int(m.sum())), (C.row[m], C.col[m])), shape=(n, n))
        T.sum_duplicates()
        M.sum_duplicates()
        T.data[:] = 1.0  # duplicates of one dyad count once
        M.data[:] = 1.0
        if not directed and ((T != T.T).nnz or (M != M.T).nnz):
            raise ValueError(f"{name}: layer {k} is not symmetric; pass directed=True for directed ties")
        if (T.multiply(M)).nnz:
            raise ValueError(f"{name}: layer {k} stores a dyad both as a tie and as missing")
        ties.append(T)
        miss.append(M)
    per = n * (n - 1) // (1 if directed else 2)
    halve = 1 if directed else 2
    n_ties = np.array([T.nnz // halve for T in ties], dtype=np.int64)
    n_missing = np.array([M.nnz // halve for M in miss], dtype=np.int64)
    for k in range(K):
        n_obs = per - n_missing[k]
        if n_obs <= 0:
            raise ValueError(f"{name}: layer {k} has no observed dyads (all missing)")
        if n_ties[k] == 0 or n_ties[k] == n_obs:
            raise ValueError(f"{name}: layer {k} has {'no ties' if n_ties[k] == 0 else 'only ties'}; "
                             "its intercept alpha_k would be infinite")

    def stack(mats):
        ptr = np.empty((K, n + 1), dtype=np.int64)
        idx, cnt, off = [], [], 0
        for k, P in enumerate(mats):
            C = _symmetric_counts(P, directed)
            ptr[k] = C.indptr + off
            off += C.nnz
            idx.append(C.indices.astype(np.int32))
            cnt.append(C.data.astype(np.float64))
        cat = (lambda xs, dt: np.concatenate(xs) if xs else np.empty(0, dt))
        return ptr, cat(idx, np.int32), cat(cnt, np.float64)

    t_ptr, t_idx, t_cnt = stack(ties)
    m_ptr, m_idx, m_cnt = stack(miss)
    return SparseLayers.from_fields(K=K, n=n, directed=bool(directed), t_ptr=t_ptr, t_idx=t_idx, t_cnt=t_cnt,
                        m_ptr=m_ptr, m_idx=m_idx, m_cnt=m_cnt, n_ties=n_ties, n_missing=n_missing,
                        tie_layers=ties, miss_layers=miss)


_DUMMY_Y = np.zeros((1, 1, 1), dtype=np.int8)


def nll_grad_sparse(S, z, alpha, *, dtype=np.float64):
    """nll, grad_z, grad_alpha of the HLSM for sparse data ``S`` at positions ``z`` (K, n, d).

    ``dtype=numpy.float32`` does the dense all-non-tie pass over all pairs in
    float32 (:func:`fastgrad.kernels.hlsm_nll_grad_fast32`, about twice as
    fast); the edge correction, the sums and the outputs stay float64.
    """
    from ..kernels.hlsm import hlsm_edge_correction
    nll_grad, _ = fast_kernels(dtype)
    z = np.ascontiguousarray(z)
    grad_z = np.empty_like(z)
    grad_alpha = np.empty(S.K)
    if S.dense_part:
        dense = nll_grad(_DUMMY_Y, _DUMMY_Y, z, alpha, S.directed, grad_z, grad_alpha, False)
    else:
        grad_z[:] = 0.0
        grad_alpha[:] = 0.0
        dense = 0.0
    corr = np.zeros(S.K)
    hlsm_edge_correction(S.t_ptr, S.t_idx, S.t_cnt, S.m_ptr, S.m_idx, S.m_cnt, z, alpha, True,
                         grad_z, grad_alpha, corr)
    return float(dense + corr.sum()), grad_z, grad_alpha


def nll_sparse(S, z, alpha, *, per_layer=False, dtype=np.float64):
    """nll (or the (K,) per-layer nll) for sparse data ``S``; ``dtype`` as in :func:`nll_grad_sparse`."""
    from ..kernels.hlsm import hlsm_edge_correction
    _, nll_fast = fast_kernels(dtype)
    z = np.ascontiguousarray(z)
    K = S.K
    if not S.dense_part:
        layer = np.zeros(K)
    elif per_layer:
        layer = np.array([nll_fast(_DUMMY_Y, np.ascontiguousarray(z[k:k + 1]), alpha[k:k + 1], S.directed, False)
                          for k in range(K)])
    else:
        layer = np.zeros(K)
        layer[0] = nll_fast(_DUMMY_Y, z, alpha, S.directed, False)
    dummy_g = np.empty((1, 1, 1))
    hlsm_edge_correction(S.t_ptr, S.t_idx, S.t_cnt, S.m_ptr, S.m_idx, S.m_cnt, z, alpha, False,
                         dummy_g, np.empty(1), layer)
    return layer if per_layer else float(layer.sum())


# ----------------------------------------------------------------------------- node effects

def _stack_dyads(mats, K, n):
    """Stack per-layer (rows, cols, ct, cs) dyad lists into row-sorted CSR arrays and by receiver."""
    out = []
    for by_receiver in (False, True):
        ptr = np.empty((K, n + 1), dtype=np.int64)
        idx, cts, css, off = [], [], [], 0
        for k, (rows, cols, ct, cs) in enumerate(mats):
            r, c = (cols, rows) if by_receiver else (rows, cols)
            order = np.lexsort((c, r))
            ptr[k] = np.searchsorted(r[order], np.arange(n + 1)) + off
            off += r.size
            idx.append(c[order].astype(np.int32))
            cts.append(ct[order])
            css.append(cs[order])
        cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.empty(0, dt))
        out += [ptr, cat(idx, np.int32), cat(cts, np.float64), cat(css, np.float64)]
    return tuple(out)


def _coo(P):
    C = P.tocoo()
    return C.row.astype(np.int64), C.col.astype(np.int64)


def dyad_lists(S):
    """Per-dyad coefficients ``(ct, cs)`` of the stored dyads of ``S`` for
    :func:`fastgrad.kernels.hlsm_dyad_correction` (cached on ``S``).

    Exact likelihood (on top of the all-non-tie pass): a tie i -> j has
    (1, 0), a missing dyad (0, -1). Undirected layers store both (i, j) and (j, i).
    Case-control layers set them in :func:`case_control_layers`.
    """
    if S.dyads is None:
        mats = []
        for T, M in zip(S.tie_layers, S.miss_layers):
            tr, tc = _coo(T)
            mr, mc = _coo(M)
            mats.append((np.concatenate([tr, mr]), np.concatenate([tc, mc]),
                         np.concatenate([np.ones(tr.size), np.zeros(mr.size)]),
                         np.concatenate([np.zeros(tr.size), -np.ones(mr.size)])))
        S.dyads = _stack_dyads(mats, S.K, S.n)
    return S.dyads


def nll_grad_sparse_ext(S, z, alpha, so, ro, *, with_grad=True, per_layer=False):
    """nll (and gradients in z, alpha, s, r) with node effects for sparse data ``S``.

    The all-non-tie pass of :func:`fastgrad.kernels.hlsm_nll_grad_ext` plus the
    stored-dyad terms (:func:`fastgrad.kernels.hlsm_dyad_correction`). Returns
    ``(nll, grad_z, grad_alpha, grad_s, grad_r)`` (``nll`` per layer, shape (K,),
    if ``per_layer``; the gradients are None without ``with_grad``).
    """
    from ..kernels.hlsm import hlsm_dyad_correction
    z = np.ascontiguousarray(z)
    K, n, d = z.shape
    hlsm_nll_grad_ext = ext_kernel(K * n * n, S.directed)
    gz, ga = np.zeros_like(z), np.zeros(K)
    gs, gr = np.zeros((K, n)), np.zeros((K, n))
    X0, b0 = np.zeros((0, 1, 1)), np.zeros((K, 0))
    layer = np.zeros(K)
    if S.dense_part:
        if per_layer:
            for k in range(K):
                sl = slice(k, k + 1)
                layer[k] = hlsm_nll_grad_ext(_DUMMY_Y, _DUMMY_Y, np.ascontiguousarray(z[sl]), alpha[sl],
                                             np.ascontiguousarray(so[sl]), np.ascontiguousarray(ro[sl]),
                                             X0, X0, b0[sl], S.directed, False, False,
                                             gz[sl], ga[sl], gs[sl], gr[sl], b0[sl])
        else:
            layer[0] = hlsm_nll_grad_ext(_DUMMY_Y, _DUMMY_Y, z, alpha, so, ro, X0, X0, b0, S.directed, False,
                                         with_grad, gz, ga, gs, gr, b0)
    D = dyad_lists(S)
    hlsm_dyad_correction(*D, z, alpha, so, ro, S.directed, with_grad, gz, ga, gs, gr, layer)
    nll = layer if per_layer else float(layer.sum())
    if not with_grad:
        return nll, None, None, None, None
    return nll, gz, ga, gs, gr


# ----------------------------------------------------------------------------- initialisation

def _union_graph(S):
    U = S.tie_layers[0].copy()
    for T in S.tie_layers[1:]:
        U = U + T
    U = U + U.T
    U.data[:] = 1.0
    return U.tocsr()


def init_mds_sparse(S, dim, rng, n_pivots=64):
    """Shared positions from the union graph: exact classical MDS for small n, pivot MDS otherwise.

    Pivot MDS (Brandes & Pich 2006): BFS distances from ``n_pivots`` pivots
    chosen by max-min distance, double centring of the (n, p) squared distance
    matrix ``C``, positions ``C V`` with ``V`` the top eigenvectors of ``C^T C``.
    Memory O(n p). Then scaled so tied pairs sit at squared distance ~1.
    """
    from scipy.sparse.csgraph import shortest_path
    n = S.n
    U = _union_graph(S)
    if n <= EXACT_MDS_MAX_N:
        X = classical_mds(shortest_path(U, method="D", directed=False, unweighted=True), dim)
    else:
        p = min(n_pivots, n)
        pivots = np.empty(p, dtype=np.int64)
        pivots[0] = rng.integers(n)
        D = np.empty((p, n))
        mind = np.full(n, np.inf)
        for q in range(p):
            D[q] = shortest_path(U, method="D", directed=False, unweighted=True, indices=pivots[q])
            fin = np.isfinite(D[q])
            D[q, ~fin] = (D[q, fin].max() + 1.0) if fin.any() else 1.0
            mind = np.minimum(mind, D[q])
            if q + 1 < p:
                pivots[q + 1] = int(np.argmax(mind))
        C = (D * D).T  # (n, p)
        C = C - C.mean(axis=0, keepdims=True)
        C = -0.5 * (C - C.mean(axis=1, keepdims=True))
        vals, vecs = np.linalg.eigh(C.T @ C)
        order = np.argsort(vals)[::-1][:dim]
        X = C @ vecs[:, order]
    Uc = U.tocoo()
    up = Uc.row < Uc.col
    X = finish_start(X, Uc.row[up], Uc.col[up], rng)
    return X, S.fit_intercepts(X, rng)


# ----------------------------------------------------------------------------- case-control likelihood

def _sample_controls(T, M, m, rng):
    """For each row i, ``m`` columns drawn uniformly with replacement among the
    observed non-ties of row i (not i, not a tie, not missing), and their count."""
    import scipy.sparse as sp
    n = T.shape[0]
    B = (T + M).tocsr()
    B.sum_duplicates()
    B.sort_indices()
    keys = np.repeat(np.arange(n, dtype=np.int64), np.diff(B.indptr)) * n + B.indices
    n0 = (n - 1) - np.diff(B.indptr)
    rows = np.repeat(np.arange(n, dtype=np.int64), m)
    cols = np.empty(rows.size, dtype=np.int64)
    todo = np.arange(rows.size)
    todo = todo[n0[rows] > 0]
    while todo.size:
        c = rng.integers(0, n - 1, size=todo.size)
        c = c + (c >= rows[todo])  # never the node itself
        k = rows[todo] * n + c
        pos = np.searchsorted(keys, k)
        hit = (pos < keys.size) & (keys[np.minimum(pos, keys.size - 1)] == k)
        cols[todo[~hit]] = c[~hit]
        todo = todo[hit]
    keep = n0[rows] > 0
    W = sp.csr_matrix((np.ones(int(keep.sum())), (rows[keep], cols[keep])), shape=(n, n))
    W.sum_duplicates()  # repeated draws add up
    w = np.where(n0 > 0, n0 / m, 0.0)
    return sp.diags(w) @ W


def case_control_layers(S, n_controls, random_state=None):
    """Case-control approximation of the likelihood (Raftery, Niu, Hoff & Yeung 2012).

    Every tie is kept; for each node and layer the sum over its observed
    non-ties is estimated from ``n_controls`` of them drawn at random
    (with replacement), each weighted by ``(number of non-ties of the node) /
    n_controls``. An unbiased estimate of the log-likelihood and its gradient
    at cost O(edges + n K n_controls) per pass instead of O(n^2 K).

    Parameters
    ----------
    S : SparseLayers
        From :func:`encode_sparse`.
    n_controls : int
        Controls per node and layer.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    SparseLayers
        With ``dense_part=False``: pass it to :func:`fastgrad.hlsm.fit` in
        place of ``Y``. Its ``nll`` figures are the case-control estimates;
        evaluate the exact likelihood with :func:`nll_sparse` on ``S``.
    """
    from .._validation import check_random_state, check_scalar
    n_controls = check_scalar(n_controls, "n_controls", kind="int", lo=1)
    rng = check_random_state(random_state)
    K, n = S.K, S.n
    half = 1.0 if S.directed else 0.5
    m_ptr = np.empty((K, n + 1), dtype=np.int64)
    idx, cnt, off = [], [], 0
    dyads = []
    for k in range(K):
        Wc = _sample_controls(S.tie_layers[k], S.miss_layers[k], n_controls, rng)
        # per dyad for the node-effect kernels: a tie (1, 1), a control of weight w (0, w)
        # (undirected: each pair's weight shared by its two rows, symmetric storage)
        T = S.tie_layers[k]
        Wd = Wc if S.directed else 0.5 * (Wc + Wc.T)
        Cd = (T + Wd).tocoo()
        Td = T.tocsr()
        tie = np.asarray(Td[Cd.row, Cd.col]).ravel()
        dyads.append((Cd.row.astype(np.int64), Cd.col.astype(np.int64), tie, Cd.data.astype(np.float64)))
        # per unordered pair {i, j}: softplus(eta) weighted by the ties among its
        # dyads plus the control weights of both rows (halved when undirected,
        # where each pair's terms are shared by its two rows)
        C = _symmetric_counts(S.tie_layers[k], S.directed) + half * (Wc + Wc.T)
        C = C.tocsr()
        C.sum_duplicates()
        C.sort_indices()
        m_ptr[k] = C.indptr + off
        off += C.nnz
        idx.append(C.indices.astype(np.int32))
        cnt.append(-C.data)  # the kernel subtracts m * softplus: negative counts add it
    return SparseLayers.from_fields(K=K, n=n, directed=S.directed, t_ptr=S.t_ptr, t_idx=S.t_idx, t_cnt=S.t_cnt,
                        m_ptr=m_ptr, m_idx=np.concatenate(idx), m_cnt=np.concatenate(cnt),
                        n_ties=S.n_ties, n_missing=S.n_missing, tie_layers=S.tie_layers,
                        miss_layers=S.miss_layers, dense_part=False, dyads=_stack_dyads(dyads, K, n))
