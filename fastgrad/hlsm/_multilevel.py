"""Multilevel start for large HLSM fits: fit a node sample, place the rest.

The latent space model is closed under node sampling: the subgraph induced by
a random subset of nodes follows the same model, with the same positions and
the same intercepts ``alpha_k``. So a fit of the shared configuration
(``eps = 0``) on a sample of ``m`` nodes estimates the positions of those
nodes and the intercepts at the cost of an ``m``-node fit, and every other
node can then be placed on its own against these anchors
(:func:`fastgrad.kernels.hlsm_place.hlsm_place_nodes`: a few Newton steps in
``d`` dimensions per node, O(n m K) in all). The sample is as small as it
can be while keeping the sampled nodes' expected degree (ties summed over
layers) at ``MULTILEVEL_DEGREE``; when the sample itself is large the same
start is used for it, recursively.

Why: on large, large-diameter graphs the full-network gradient iterations
remove the long-wavelength errors of an MDS start only slowly (each
iteration moves information about one tie-length), while errors left by the
placement are local and are removed in a few iterations of the exact fit.
"""
import numpy as np

#: ``init="auto"`` uses the multilevel start from this many nodes (else MDS).
MULTILEVEL_MIN_N = 4000
#: Expected ties (summed over layers) of a sampled node within the sample.
MULTILEVEL_DEGREE = 30.0
#: The sample is at most this fraction of the nodes (otherwise the start is MDS).
MULTILEVEL_MAX_FRACTION = 0.5
#: Stopping rule of the sample fit (a start only: the full fit polishes).
SAMPLE_TOL = 1e-9
SAMPLE_MAX_ITER = 3000
#: Stopping rule of the shared-configuration L-BFGS stage on all nodes, before the penalised fit.
SHARED_TOL = 1e-9
SHARED_MAX_ITER = 500
#: Before proximal gradient, L-BFGS on the penalty smoothed with this Huber width (multilevel fits).
SMOOTH_STAGE = True
SMOOTH_MU = 1e-2
SMOOTH_TOL = 1e-7
#: Precision of the pass over all pairs in the L-BFGS stages (proximal gradient is float64).
STAGE_DTYPE = np.float32
SMOOTH_MAX_ITER = 1000


def _tie_counts(Yenc, directed):
    """(n, n) CSR matrix of ties per pair summed over layers (both dyads if directed)."""
    import scipy.sparse as sp
    if isinstance(Yenc, np.ndarray):
        T = (Yenc == 1).sum(axis=0)
        if directed:
            T = T + T.T
        return sp.csr_matrix(T.astype(np.float64))
    K, n = Yenc.K, Yenc.n
    C = sp.csr_matrix((n, n))
    for k in range(K):
        lo, hi = Yenc.t_ptr[k, 0], Yenc.t_ptr[k, -1]
        C = C + sp.csr_matrix((Yenc.t_cnt[lo:hi], Yenc.t_idx[lo:hi], Yenc.t_ptr[k] - lo), shape=(n, n))
    C = C.tocsr()
    C.sum_duplicates()
    return C


def sample_size(Yenc, directed, C=None):
    """Nodes in the first-level sample, or 0 when the multilevel start does not pay.

    ``C``: the tie counts of :func:`_tie_counts`, when already computed.
    """
    n = Yenc.shape[1]
    if C is None:
        C = _tie_counts(Yenc, directed)
    mean_deg = float(C.sum()) / n / (2.0 if directed else 1.0)
    if mean_deg <= 0:
        return 0
    m = int(np.ceil(n * MULTILEVEL_DEGREE / mean_deg))
    m = max(m, 200)
    return m if m <= MULTILEVEL_MAX_FRACTION * n else 0


def _subsample(Yenc, idx, directed):
    """Encoded data of the subgraph induced by ``idx`` (dense int8 up to 2000 nodes, else sparse)."""
    from . import _model as hlsm
    from ._layers import AUTO_MIN_N, encode_sparse
    if isinstance(Yenc, np.ndarray):
        sub = Yenc[:, idx][:, :, idx].astype(np.float64)
        sub[sub < 0] = np.nan
        return hlsm.encode_layers(sub, directed=directed)
    out = []
    for k in range(Yenc.K):
        T = Yenc.tie_layers[k][idx][:, idx].tocsr()
        M = Yenc.miss_layers[k][idx][:, idx].tocsr()
        if M.nnz:
            M = M.copy()
            M.data[:] = np.nan
            T = (T + M).tocsr()
        out.append(T)
    if idx.size <= AUTO_MIN_N:
        return hlsm.encode_layers(out, directed=Yenc.directed)
    return encode_sparse(out, directed=Yenc.directed)


def start_shared(Yenc, directed, dim, rng, *, multilevel=True):
    """Shared configuration ``(b, alpha)`` fitted by L-BFGS from a multilevel (or MDS) start."""
    from . import _model as hlsm
    start = init_multilevel(Yenc, directed, dim, rng) if multilevel else None
    b0, a0 = start if start is not None else hlsm._init_mds(Yenc, dim, rng)
    b, alpha, _ = hlsm._fit_shared(Yenc, directed, b0, a0, rng, tol=SAMPLE_TOL, max_iter=SAMPLE_MAX_ITER)
    return b, alpha


def init_multilevel(Yenc, directed, dim, rng, m=None):
    """Shared positions ``b`` (n, d) and intercepts ``alpha`` (K,) by the multilevel start.

    Returns ``None`` when the graph is too sparse for a sample to carry the
    configuration (the caller then uses MDS), or when the sample has a layer
    without ties.
    """
    from ..kernels.hlsm_place import hlsm_place_nodes
    n = Yenc.shape[1]
    C = _tie_counts(Yenc, directed)
    if m is None:
        m = sample_size(Yenc, directed, C)
    if not m:
        return None
    idx = np.sort(rng.choice(n, size=m, replace=False))
    try:
        sub = _subsample(Yenc, idx, directed)
    except ValueError:  # e.g. a layer without ties among the sampled nodes
        return None
    anchors, alpha = start_shared(sub, directed, dim, rng, multilevel=m >= MULTILEVEL_MIN_N)
    anchors = np.ascontiguousarray(anchors)
    rest = np.setdiff1d(np.arange(n), idx)
    Ca = C[rest][:, idx].tocsr()
    Ca.sum_duplicates()
    deg = np.asarray(Ca.sum(axis=1)).ravel()
    u0 = np.zeros((rest.size, dim))
    has = deg > 0
    u0[has] = (Ca[has] @ anchors) / deg[has, None]
    placed = np.empty_like(u0)
    hlsm_place_nodes(u0, anchors, alpha, 2.0 if directed else 1.0, Ca.indptr.astype(np.int64),
                     Ca.indices.astype(np.int64), Ca.data.astype(np.float64), 50, placed)
    b = np.empty((n, dim))
    b[idx] = anchors
    b[rest] = placed
    # nodes without a tie to the sample: at the mean of their placed partners, else near a random anchor
    lost = rest[~has]
    if lost.size:
        known = np.ones(n, dtype=bool)
        known[lost] = False
        Cl = C[lost].tocsr()
        for _ in range(3):
            W = Cl[:, known]
            dl = np.asarray(W.sum(axis=1)).ravel()
            ok = dl > 0
            if not ok.any():
                break
            pos = (W[ok] @ b[known]) / dl[ok, None]
            b[lost[ok]] = pos
            known[lost[ok]] = True
            lost, Cl = lost[~ok], Cl[~ok]
            if not lost.size:
                break
        if lost.size:
            spread = float(np.sqrt(np.mean(np.var(anchors, axis=0))))
            b[lost] = anchors[rng.integers(0, m, size=lost.size)] + spread * rng.standard_normal((lost.size, dim))
    b -= b.mean(axis=0)
    return b, alpha
