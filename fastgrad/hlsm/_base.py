"""The base of the encoded multiplex data and the checks both encodings use."""
import numpy as np

from .. import _threads

__all__ = ["LayersBase", "check_layer_shapes", "newton_intercept", "is_sparse_input", "AUTO_MIN_N", "classical_mds",
           "finish_start", "fast_kernels"]

#: ``sparse="auto"`` in :func:`fastgrad.hlsm.fit` switches to the sparse likelihood
#: for sparse input from this many nodes.
AUTO_MIN_N = 2000


class LayersBase:
    """What the dense and sparse encodings share; the interface is :class:`fastgrad.hlsm.Layers`."""

    #: Set by the concrete classes.
    is_sparse = False
    #: Node and layer names (from a :class:`fastgrad.datasets.Multiplex`), or None.
    nodes = None
    layer_names = None

    @classmethod
    def _from_fields(cls, **fields):
        obj = object.__new__(cls)
        obj.__dict__.update(fields)
        return obj

    @property
    def shape(self):
        return (self.K, self.n, self.n)

    @property
    def pairs_per_layer(self):
        return self.n * (self.n - 1) // (1 if self.directed else 2)

    def __repr__(self):
        kind = "sparse" if self.is_sparse else "dense"
        return (f"<fastgrad.hlsm.Layers: {self.K} layers, {self.n} nodes, "
                f"{'directed' if self.directed else 'undirected'}, {kind}, {self.n_obs} observed dyads>")

    # The interface every representation implements (see DenseLayers, SparseLayers).
    def nll_grad(self, z, alpha, dtype=np.float64):  # pragma: no cover - abstract
        """``(nll, grad_z, grad_alpha)`` at layer positions ``z`` (K, n, d)."""
        raise NotImplementedError

    def nll(self, z, alpha, *, per_layer=False, dtype=np.float64):  # pragma: no cover - abstract
        """The negative log-likelihood (per layer, shape (K,), with ``per_layer``)."""
        raise NotImplementedError

    def nll_grad_ext(self, z, alpha, so, ro, X, XT, beta, with_grad=True,
                     per_layer=False):  # pragma: no cover - abstract
        """``(nll, grad_z, grad_alpha, grad_so, grad_ro, grad_beta)`` with node effects ``so``/``ro``
        (K, n) and dyad covariates ``X`` (p, n, n; ``XT`` its transpose) with coefficients ``beta``."""
        raise NotImplementedError

    def degrees(self):  # pragma: no cover - abstract
        """(K, n) tie counts per node and layer (in + out ties if directed)."""
        raise NotImplementedError

    def tie_counts(self):  # pragma: no cover - abstract
        """(n, n) scipy.sparse CSR matrix of ties per pair summed over layers (both dyads if directed)."""
        raise NotImplementedError

    def logit_density(self):  # pragma: no cover - abstract
        """(K,) log-odds of a tie among the observed dyads of each layer."""
        raise NotImplementedError

    def subgraph(self, idx):  # pragma: no cover - abstract
        """The layers of the subgraph induced by the sorted node indices ``idx`` (validated again)."""
        raise NotImplementedError

    def dyad_values(self, k, i, j):  # pragma: no cover - abstract
        """Float values of the dyads ``(i[m], j[m])`` of layer ``k``: 1 tie, 0 non-tie, -1 missing."""
        raise NotImplementedError

    def fit_intercepts(self, b, rng, n_pairs=200_000, n_newton=30):
        """(K,) intercepts maximising the likelihood with shared positions ``b`` fixed
        (safeguarded Newton on a random sample of ``n_pairs`` ordered pairs)."""
        K, n = self.K, self.n
        m = min(n_pairs, n * (n - 1))
        i = rng.integers(0, n, size=m)
        j = rng.integers(0, n - 1, size=m)
        j = j + (j >= i)
        d2 = ((b[i] - b[j]) ** 2).sum(axis=1)
        alpha = self.logit_density() + float(np.median(d2))
        for k in range(K):
            y = self.dyad_values(k, i, j)
            obs = y >= 0
            alpha[k] = newton_intercept(y[obs], d2[obs], alpha[k], n_newton=n_newton)
        return alpha

    def init_mds(self, dim, rng):  # pragma: no cover - abstract
        """``(b, alpha)``: MDS positions of the union graph and their intercepts."""
        raise NotImplementedError



def fast_kernels(dtype):
    """``(nll_grad, nll)``: the fast pass-over-pairs kernels for ``dtype`` (float64 or float32)."""
    from ..kernels import hlsm as K
    dt = np.dtype(dtype)
    if dt == np.float64:
        return K.hlsm_nll_grad_fast, K.hlsm_nll_fast
    if dt == np.float32:
        return K.hlsm_nll_grad_fast32, K.hlsm_nll_fast32
    raise ValueError(f"dtype must be numpy.float64 or numpy.float32, got {dtype!r}")


def uses_pair_kernel(work, directed):
    """True if :func:`ext_kernel` gives :func:`~fastgrad.kernels.hlsm_nll_grad_ext_pairs` (known
    without importing numba): undirected layers and ``work`` (K n^2) below
    :data:`fastgrad._threads.SMALL_WORK`. A size rule, so the choice (and the result) does not
    depend on the thread count."""
    return not directed and work < _threads.SMALL_WORK


def ext_kernel(work, directed=True):
    """The kernel of the extended likelihood for ``work`` = K n^2 dyads: for small undirected
    layers :func:`~fastgrad.kernels.hlsm_nll_grad_ext_pairs` (each pair once: half the work of
    the row kernels; 117 against 238 us per gradient on aucs), else
    :func:`~fastgrad.kernels.hlsm_nll_grad_ext` or, for a call that runs on one thread, its
    serial twin (bit-identical; see :func:`fastgrad._threads.runs_serially`)."""
    from ..kernels import hlsm as K          # here: importing the kernels imports numba
    if uses_pair_kernel(work, directed):
        return K.hlsm_nll_grad_ext_pairs
    return K.hlsm_nll_grad_ext_serial if _threads.runs_serially(work) else K.hlsm_nll_grad_ext


def is_sparse_input(Y):
    """True for a non-empty list/tuple of scipy.sparse matrices."""
    return isinstance(Y, (list, tuple)) and len(Y) > 0 and all(hasattr(A, "tocsr") for A in Y)


def check_layer_shapes(layers, name):
    """Check K square layers of one common size n >= 3 and return n."""
    shapes = {tuple(A.shape) for A in layers}
    for k, A in enumerate(layers):
        if len(A.shape) != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"{name}: layer {k} must be a square (n, n) matrix, got shape {tuple(A.shape)}")
    if len(shapes) != 1:
        raise ValueError(f"{name}: layers must all have the same shape, got {sorted(shapes)}")
    n = layers[0].shape[0]
    if n < 3:
        raise ValueError(f"{name}: at least 3 nodes are needed, got n={n}")
    return n


def newton_intercept(y, d2, a, n_newton=30, max_step=8.0):
    """Solve ``sum(sigmoid(a - d2) - y) = 0`` for ``a`` by safeguarded Newton.

    Plain Newton steps (as the dense path) while they are moderate; steps are
    clipped to ``max_step`` and kept inside the bracket ``g(lo) < 0 < g(hi)``
    found so far (bisection otherwise), so it cannot diverge when the start is
    far off (large graph diameters make ``a - d2`` span hundreds).
    """
    lo, hi = -np.inf, np.inf
    for _ in range(n_newton * 3):
        eta = a - d2
        p = 0.5 * (1.0 + np.tanh(0.5 * eta))
        g = (p - y).sum()
        h = (p * (1 - p)).sum() + 1e-12
        if g > 0:
            hi = min(hi, a)
        else:
            lo = max(lo, a)
        step = g / h
        step = min(max(step, -max_step), max_step)
        new = a - step
        if not lo < new < hi:
            new = 0.5 * (lo + hi) if np.isfinite(lo) and np.isfinite(hi) else a - step
        step, a = a - new, new
        if abs(step) < 1e-10:
            break
    return a


def hop_distances(adjacency, work=1 << 23):
    """All-pairs hop counts (n, n) float64 of the undirected graph with boolean ``adjacency``
    (n, n, symmetric), ``inf`` between components: level-synchronous BFS from every node.

    The same distances as ``scipy.sparse.csgraph.shortest_path(..., unweighted=True)``, in
    NumPy: that import (``scipy.sparse``) took 0.1-0.2 s of a 1.9 s warm
    ``python -m fastgrad hlsm`` run, whose fit needs nothing else from it. Each level expands
    the frontier of a batch of sources over the nodes' neighbour lists at once; batches hold
    about ``work`` (source, neighbour) pairs per level at most.
    """
    n = adjacency.shape[0]
    rows, cols = np.nonzero(adjacency)
    deg = np.bincount(rows, minlength=n)
    start = np.concatenate(([0], np.cumsum(deg)))
    D = np.full((n, n), np.inf)
    batch = max(1, min(n, work // max(rows.size, 1)))
    for s0 in range(0, n, batch):
        src = np.arange(s0, min(s0 + batch, n))
        Db = D[s0:s0 + src.size]                      # a view: filled in place
        fs = np.arange(src.size)                     # frontier: (row of Db, node) pairs
        fv = src
        Db[fs, fv] = 0.0
        level = 0.0
        while fs.size:
            level += 1.0
            d = deg[fv]
            ends = np.cumsum(d)
            if ends.size == 0 or ends[-1] == 0:
                break
            nbr = cols[np.repeat(start[fv] - (ends - d), d) + np.arange(ends[-1])]
            reached = np.zeros(Db.shape, dtype=bool)
            reached[np.repeat(fs, d), nbr] = True
            reached &= np.isinf(Db)
            fs, fv = np.nonzero(reached)
            Db[fs, fv] = level
    return D


def classical_mds(D, dim):
    """Classical MDS: ``dim`` coordinates whose distances approximate ``D`` (n, n), graph
    distances with ``inf`` between components (replaced by the largest finite distance + 1)."""
    finite = np.isfinite(D)
    D[~finite] = D[finite].max() + 1.0 if finite.any() else 1.0
    D2 = D * D
    J = D2 - D2.mean(axis=0, keepdims=True)
    B = -0.5 * (J - J.mean(axis=1, keepdims=True))
    from .._threads import serial_blas
    with serial_blas():  # a small matrix: OpenBLAS's threads cost 1-45 ms here, 0.4 ms on one
        vals, vecs = np.linalg.eigh(B)
    order = np.argsort(vals)[::-1][:dim]
    return vecs[:, order] * np.sqrt(np.maximum(vals[order], 1e-12))


def finish_start(X, ti, tj, rng):
    """Start positions from MDS coordinates ``X``: jittered (breaks exact ties), centred, and
    scaled so that the tied pairs ``(ti, tj)`` sit at squared distance 1 on average."""
    X += 1e-3 * rng.standard_normal(X.shape) * (np.abs(X).max() + 1.0)
    X -= X.mean(axis=0)
    if ti.size:
        msd = float(((X[ti] - X[tj]) ** 2).sum(axis=1).mean())
        if msd > 0:
            X /= np.sqrt(msd)
    return X
