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
layers) at ``SolverOptions.multilevel_degree``; when the sample itself is large the same
start is used for it, recursively.

Why: on large, large-diameter graphs the full-network gradient iterations
remove the long-wavelength errors of an MDS start only slowly (each
iteration moves information about one tie-length), while errors left by the
placement are local and are removed in a few iterations of the exact fit.
"""
import numpy as np

from ._problem import fit_shared

def sample_size(Yenc, directed, opts, C=None):
    """Nodes in the first-level sample, or 0 when the multilevel start does not pay.

    ``C``: the tie counts (``Yenc.tie_counts()``), when already computed.
    """
    n = Yenc.shape[1]
    if C is None:
        C = Yenc.tie_counts()
    mean_deg = float(C.sum()) / n / (2.0 if directed else 1.0)
    if mean_deg <= 0:
        return 0
    m = int(np.ceil(n * opts.multilevel_degree / mean_deg))
    m = max(m, 200)
    return m if m <= opts.multilevel_max_fraction * n else 0


def start_shared(Yenc, directed, dim, rng, opts, *, multilevel=True):
    """Shared configuration ``(b, alpha)`` fitted by L-BFGS from a multilevel (or MDS) start."""
    start = init_multilevel(Yenc, directed, dim, rng, opts) if multilevel else None
    b0, a0 = start if start is not None else Yenc.init_mds(dim, rng)
    b, alpha, _ = fit_shared(Yenc, directed, b0, a0, rng, opts, tol=opts.sample_tol, max_iter=opts.sample_max_iter)
    return b, alpha


def init_multilevel(Yenc, directed, dim, rng, opts, m=None):
    """Shared positions ``b`` (n, d) and intercepts ``alpha`` (K,) by the multilevel start.

    Returns ``None`` when the graph is too sparse for a sample to carry the
    configuration (the caller then uses MDS), or when the sample has a layer
    without ties.
    """
    from ..kernels.hlsm_place import hlsm_place_nodes
    n = Yenc.shape[1]
    C = Yenc.tie_counts()
    if m is None:
        m = sample_size(Yenc, directed, opts, C)
    if not m:
        return None
    idx = np.sort(rng.choice(n, size=m, replace=False))
    try:
        sub = Yenc.subgraph(idx)
    except ValueError:  # e.g. a layer without ties among the sampled nodes
        return None
    anchors, alpha = start_shared(sub, directed, dim, rng, opts, multilevel=m >= opts.multilevel_min_n)
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
