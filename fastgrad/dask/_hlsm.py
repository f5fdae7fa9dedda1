"""HLSM on Dask: node row-blocks on the workers, positions broadcast every iteration.

The encoded layers (:func:`fastgrad.hlsm.encode_layers`, int8, -1 missing) are cut
into row blocks ``Y[:, lo:hi, :]``; block ``p`` is scattered once to worker ``p`` and
stays there. Every likelihood evaluation broadcasts the positions ``z`` (K, n, d) and
the intercepts ``alpha``; each worker returns the nll and gradient of the dyads whose
row ``i`` it holds (pairs ``j < i`` when undirected, ordered pairs ``(i, j)`` when
directed) -- :func:`hlsm_nll_grad_rows` -- and the client adds the partial results
in block order. Tasks are pinned to the owner of their block (no work stealing), so
the blocks never move. The proximal-gradient
machinery of :func:`fastgrad.hlsm.fit` (initialisation, preconditioner, FISTA,
line search) runs unchanged on the client, which computes the initialisation
locally from ``Y``, so a fit equals the local one to solver tolerance.

A lost worker takes its row block with it: the client still holds ``Y``, scatters
the lost blocks again and repeats the evaluation (the same numbers: the result of
an evaluation does not depend on where its blocks are). After ``max_retries``
failed attempts :class:`fastgrad.dask.WorkerLostError` is raised.
"""
import numpy as np
from numba import njit, prange

from ..kernels._math import softplus_sigmoid

__all__ = ["hlsm_nll_grad_rows", "DaskHLSMEvaluator", "make_evaluator"]

_N_CHUNKS = 8          # row chunks per layer: fixed, so sums do not depend on the thread count
_INLINE_BYTES = 1 << 20   # positions larger than this (times the tasks) are scattered, not inlined
_PIECE_BYTES = 1 << 24    # row blocks travel in pieces of at most 16 MB (small transient memory)


@njit(parallel=True, cache=True)
def hlsm_nll_grad_rows(Yrows, row0, z, alpha, so, ro, directed, with_grad, grad_z, grad_alpha, grad_so, grad_ro):
    """Negative log-likelihood (and gradient) of the dyads in rows ``row0 .. row0 + m - 1``.

    ``eta_ijk = alpha_k + so_ik + ro_jk - ||z_ik - z_jk||^2`` (node effects: pass
    ``ro = so`` for undirected sociality, zeros for none). Summing this over a
    partition of the rows gives :func:`fastgrad.kernels.hlsm_nll_grad_ext`
    (without covariates).

    Parameters
    ----------
    Yrows : int8 array, shape (K, m, n)
        Rows ``row0 .. row0 + m - 1`` of the encoded layers (1 tie, 0 no tie,
        -1 missing; the diagonal is never read).
    row0 : int
        Node index of the first row.
    z : float64 array, shape (K, n, d)
        Layer positions of all nodes.
    alpha : float64 array, shape (K,)
        Layer intercepts.
    so, ro : float64 arrays, shape (K, n)
        Node effects of the row node ``i`` and of the column node ``j``.
    directed : bool
        Dyads ``(i, j)``, ``j != i`` (True) or pairs ``j < i`` (False) of every row ``i``.
    with_grad : bool
        Also write the gradient (otherwise the gradient outputs are not touched).
    grad_z : float64 array, shape (K, n, d)
        Output: the rows' share of ``d nll / d z`` (non-zero for partners ``j``
        outside the rows too).
    grad_alpha : float64 array, shape (K,)
        Output: the rows' share of ``d nll / d alpha``.
    grad_so, grad_ro : float64 arrays, shape (K, n)
        Output: the rows' share of ``d nll / d so`` and ``d nll / d ro`` (for
        undirected sociality the gradient in ``g`` is their sum).

    Returns
    -------
    float
        The rows' share of the negative log-likelihood.
    """
    K, m, n = Yrows.shape
    d = z.shape[2]
    C = min(_N_CHUNKS, max(m, 1))
    gpart = np.zeros((K * C, n, d)) if with_grad else np.zeros((1, 1, d))
    spart = np.zeros((K * C, n)) if with_grad else np.zeros((1, 1))
    rpart = np.zeros((K * C, n)) if with_grad else np.zeros((1, 1))
    nll_part = np.zeros(K * C)
    ga_part = np.zeros(K * C)
    for t in prange(K * C):
        k = t // C
        ch = t - k * C
        a = alpha[k]
        g = gpart[t] if with_grad else gpart[0]
        gs = spart[t] if with_grad else spart[0]
        gr = rpart[t] if with_grad else rpart[0]
        diff = np.empty(d)
        nl = 0.0
        ga = 0.0
        for li in range((m * ch) // C, (m * (ch + 1)) // C):
            i = row0 + li
            jmax = n if directed else i
            ai = a + so[k, i]
            rsum = 0.0
            for j in range(jmax):
                y = Yrows[k, li, j]
                if j == i or y < 0:
                    continue
                dist = 0.0
                for c in range(d):
                    diff[c] = z[k, i, c] - z[k, j, c]
                    dist += diff[c] * diff[c]
                eta = ai + ro[k, j] - dist
                sp, s = softplus_sigmoid(eta)
                r = s - float(y)                   # d nll / d eta
                nl += sp - float(y) * eta
                ga += r
                if with_grad:                      # d eta / d z_i = -2 (z_i - z_j) = -d eta / d z_j
                    rsum += r
                    gr[j] += r
                    for c in range(d):
                        g[i, c] -= 2.0 * r * diff[c]
                        g[j, c] += 2.0 * r * diff[c]
            if with_grad:
                gs[i] += rsum
        nll_part[t] = nl
        ga_part[t] = ga
    if with_grad:
        for t in prange(K * n):
            k = t // n
            i = t - k * n
            for c in range(d):
                acc = 0.0
                for ch in range(C):
                    acc += gpart[k * C + ch, i, c]
                grad_z[k, i, c] = acc
            acc_s = 0.0
            acc_r = 0.0
            for ch in range(C):
                acc_s += spart[k * C + ch, i]
                acc_r += rpart[k * C + ch, i]
            grad_so[k, i] = acc_s
            grad_ro[k, i] = acc_r
    nll = 0.0
    for k in range(K):
        acc = 0.0
        for ch in range(C):
            nll += nll_part[k * C + ch]
            acc += ga_part[k * C + ch]
        if with_grad:
            grad_alpha[k] = acc
    return nll


def _part_nll_grad(part, z, alpha, so, ro, with_grad):
    """One row block's share: ``(nll, grad_z, grad_alpha[, grad_so, grad_ro])`` or ``nll``. Runs on a worker."""
    Yrows, row0, directed = part
    K, n = alpha.shape[0], z.shape[1]
    effects = so is not None
    if not effects:
        so = ro = np.zeros((K, n))
    grad_z = np.empty_like(z) if with_grad else np.empty((1, 1, 1))
    grad_alpha = np.empty_like(alpha)
    grad_so, grad_ro = (np.empty((K, n)), np.empty((K, n))) if with_grad else (np.empty((1, 1)), np.empty((1, 1)))
    nll = float(hlsm_nll_grad_rows(Yrows, row0, z, alpha, so, ro, directed, with_grad, grad_z, grad_alpha,
                                   grad_so, grad_ro))
    if not with_grad:
        return nll
    # the plain model sends back only what it needs (one partial result per worker)
    return (nll, grad_z, grad_alpha, grad_so, grad_ro) if effects else (nll, grad_z, grad_alpha)


def row_blocks(n, n_parts, directed):
    """Row boundaries with about equal numbers of dyads per block (``j < i``: rows grow)."""
    p = np.arange(n_parts + 1) / n_parts
    cuts = n * (p if directed else np.sqrt(p))
    bounds = np.unique(np.clip(np.round(cuts).astype(np.int64), 0, n))
    bounds[0], bounds[-1] = 0, n
    return bounds


class DaskHLSMEvaluator:
    """nll and gradient of the HLSM from row blocks of ``Y`` held on the workers.

    Parameters
    ----------
    client : distributed.Client
    Yenc : int8 ndarray, shape (K, n, n)
        Encoded layers (:func:`fastgrad.hlsm.encode_layers`).
    directed : bool
    n_parts : int, optional
        Row blocks; default the number of workers.
    max_retries : int, default=2
        Evaluations repeated after losing workers before giving up.
    stats : dict, optional
        Accumulates ``calls``, ``grad_calls``, ``bytes_scattered`` (row blocks),
        ``bytes_out`` (positions sent, one copy per worker), ``bytes_in`` (partial
        results gathered), ``recoveries`` and ``seconds``.
    """

    def __init__(self, client, Yenc, directed, n_parts=None, max_retries=2, stats=None):
        if getattr(Yenc, "is_sparse", False):
            raise ValueError("a distributed HLSM fit needs dense layers; pass sparse=False")
        self.client = client
        self.Y = getattr(Yenc, "Y", Yenc)  # the int8 array of dense Layers
        self.directed = bool(directed)
        self.max_retries = max_retries
        self.stats = {} if stats is None else stats
        for key in ("calls", "grad_calls", "bytes_scattered", "bytes_out", "bytes_in", "recoveries",
                    "seconds"):
            self.stats.setdefault(key, 0)
        from ._retry import alive_workers
        self.bounds = row_blocks(Yenc.shape[1], n_parts or len(alive_workers(client)), self.directed)
        self.blocks = None          # [(owner, [futures of its pieces])], scattered by the first call

    def _scatter(self):
        """Scatter row block p to worker p, in pieces of at most ``_PIECE_BYTES``."""
        from ._retry import alive_workers, pickled_size
        workers = alive_workers(self.client)
        K, _, n = self.Y.shape
        self.blocks = []
        for p, (lo, hi) in enumerate(zip(self.bounds[:-1], self.bounds[1:])):
            owner = workers[p % len(workers)]
            cuts = np.linspace(lo, hi, max(1, -(-(hi - lo) * K * n // _PIECE_BYTES)) + 1).astype(np.int64)
            futs = []
            for a, b in zip(cuts[:-1], cuts[1:]):
                piece = (np.ascontiguousarray(self.Y[:, a:b, :]), int(a), self.directed)
                self.stats["bytes_scattered"] += pickled_size(piece)
                futs += self.client.scatter([piece], workers=[owner], hash=False)
            self.blocks.append((owner, futs))

    def _evaluate(self, z, alpha, so, ro, with_grad):
        """One task per piece, pinned to its owner (no work stealing: the data never move);
        each worker adds its pieces' results, the client adds the blocks' in block order."""
        from ._retry import pickled_size
        from ._objective import _locked, tree_sum
        if self.blocks is None:
            self._scatter()
        client = self.client
        owners = sorted({owner for owner, _ in self.blocks})
        n_tasks = sum(len(futs) for _, futs in self.blocks)
        args = (z, alpha, so, ro, with_grad)
        if z.nbytes * n_tasks > _INLINE_BYTES:     # large positions: one copy per worker
            sent = pickled_size(z) * len(owners) + pickled_size(args[1:]) * n_tasks
            args = (client.scatter(z, workers=owners, broadcast=True, hash=False), alpha, so, ro, with_grad)
        else:
            sent = pickled_size(args) * n_tasks
        sums = []
        for owner, futs in self.blocks:
            pin = dict(workers=[owner], allow_other_workers=False, pure=False)
            parts = [client.submit(_locked, _part_nll_grad, f, *args, **pin) for f in futs]
            sums.append(client.submit(tree_sum, *parts, **pin) if len(parts) > 1 else parts[0])
        results = client.gather(sums)
        self.stats["bytes_out"] += sent
        self.stats["bytes_in"] += sum(pickled_size(r) for r in results)
        return tree_sum(*results)

    def _recover(self):
        self.blocks = None          # the next attempt scatters the row blocks afresh

    def _call(self, z, alpha, with_grad, so=None, ro=None):
        import time

        from ._retry import with_recovery
        t0 = time.perf_counter()
        z = np.ascontiguousarray(z)
        if so is not None:
            so, ro = np.ascontiguousarray(so, dtype=np.float64), np.ascontiguousarray(ro, dtype=np.float64)
        out = with_recovery(self.client, lambda: self._evaluate(z, alpha, so, ro, with_grad), self._recover,
                            self.max_retries, "hlsm: a likelihood evaluation", self.stats,
                            len(self.bounds) - 1)
        self.stats["calls"] += 1
        self.stats["grad_calls"] += int(with_grad)
        self.stats["seconds"] += time.perf_counter() - t0
        return out

    def nll_grad(self, z, alpha):
        """``(nll, grad_z, grad_alpha)`` summed over the row blocks."""
        return self._call(z, alpha, True)

    def nll_grad_ext(self, z, alpha, so, ro, beta, with_grad=True):
        """With node effects ``so``/``ro`` (K, n): ``(nll, grad_z, grad_alpha, grad_so, grad_ro, grad_beta)``
        as :meth:`fastgrad.hlsm.Layers.nll_grad_ext` (no covariates: ``beta`` has no columns)."""
        if np.size(beta):
            raise ValueError("dyad covariates are not available with a Dask client")
        out = self._call(z, alpha, with_grad, so, ro)
        if not with_grad:
            return out, None, None, None, None, None
        nll, gz, ga, gs, gr = out
        if not self.directed:  # one sociality effect per node: both ends of its pairs
            gs = gs + gr
        return nll, gz, ga, gs, gr, np.zeros((alpha.shape[0], 0))

    def nll(self, z, alpha):
        """The negative log-likelihood only."""
        return self._call(z, alpha, False)

    def close(self):
        """Drop the row blocks from the workers."""
        from ._objective import release
        release(self.client, [f for _, futs in self.blocks or [] for f in futs])
        self.blocks = None


def make_evaluator(client, Yenc, directed):
    """Hook used by :func:`fastgrad.hlsm.fit` when it is given a ``client``."""
    from ._retry import ClientOptions
    from ._setup import check_client, get_client
    opts = client if isinstance(client, ClientOptions) else ClientOptions(client, None, 2)
    client = get_client(opts.client)
    check_client(client)
    return DaskHLSMEvaluator(client, Yenc, directed, max_retries=opts.max_retries, stats=opts.stats)
