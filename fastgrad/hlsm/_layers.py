"""The public :class:`Layers`: multiplex data validated and encoded once.

Every HLSM routine (likelihood, initialisation, selection, held-out scoring, the
Dask back-end) works on a ``Layers``; the dense variant
(:class:`~fastgrad.hlsm._dense.DenseLayers`, an int8 array) and the sparse one
(:class:`~fastgrad.hlsm._sparse.SparseLayers`, O(n K d + edges)) implement the
same methods (:class:`~fastgrad.hlsm._base.LayersBase`), so callers never branch
on the representation.
"""
import abc

import numpy as np

from ._base import AUTO_MIN_N, is_sparse_input
from ._dense import DenseLayers, encode_dense
from ._sparse import SparseLayers, encode_sparse

__all__ = ["Layers", "as_layers", "use_sparse", "AUTO_MIN_N"]

class Layers(abc.ABC):
    """Multiplex network data (K layers over n nodes), validated and encoded once.

    Build it once and pass it to :func:`fastgrad.hlsm.fit`,
    :func:`~fastgrad.hlsm.nll_and_grad`, :func:`~fastgrad.hlsm.fit_path`... in
    place of ``Y``: repeated calls then never validate or encode the data again.

    Parameters
    ----------
    Y : array_like, sequence of matrices, Multiplex or Layers
        An array of shape (K, n, n), a sequence of K (n, n) NumPy or scipy.sparse
        matrices, or a :class:`fastgrad.datasets.Multiplex`. Entries are 0/1
        (bool or numeric); NaN marks a missing dyad; the diagonal is ignored.
        Edge lists: :func:`fastgrad.hlsm.layers_from_edges`. A ``Layers`` is
        returned as it is.
    directed : bool, default=False
        If False every layer must be symmetric (its NaN pattern included).
    sparse : {"auto", True, False}, default="auto"
        Representation. ``"auto"``: sparse (memory O(n K d + edges), no (n, n)
        array) for a list of scipy.sparse layers, dense otherwise; ``True``
        needs scipy.sparse layers; ``False`` always dense (int8, K n^2 bytes).

    Attributes
    ----------
    K, n : int
    directed : bool
    shape : tuple ``(K, n, n)``
    is_sparse : bool
    n_obs : int
        Observed dyads over all layers (pairs if undirected).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import hlsm
    >>> Y, truth = hlsm.simulate(40, 3, random_state=0)
    >>> L = hlsm.Layers(Y)
    >>> L.shape, L.is_sparse
    ((3, 40, 40), False)
    >>> nll, gb, ge, ga = hlsm.nll_and_grad(L, truth.b, truth.eps, truth.alpha)
    """

    def __new__(cls, Y, *, directed=False, sparse="auto"):
        return as_layers(Y, directed=directed, sparse=sparse)


Layers.register(DenseLayers)
Layers.register(SparseLayers)


def use_sparse(Y, sparse):
    """Decide the ``sparse`` option of :func:`fastgrad.hlsm.fit` for input ``Y``."""
    if isinstance(Y, Layers):
        return Y.is_sparse
    if sparse is True or (isinstance(sparse, str) and sparse == "auto"):
        ok = is_sparse_input(Y)
        if sparse is True and not ok:
            raise ValueError("sparse=True needs Y as a list of scipy.sparse matrices "
                             "(see fastgrad.hlsm.layers_from_edges for edge lists)")
        return ok and (sparse is True or Y[0].shape[0] >= AUTO_MIN_N)
    if sparse is False:
        return False
    raise ValueError(f"sparse must be 'auto', True or False, got {sparse!r}")


def as_layers(Y, *, directed=False, sparse="auto", name="Y"):
    """``Y`` as a :class:`Layers` (returned as is if it already is one).

    ``sparse="auto"`` encodes every list of scipy.sparse layers sparse (no
    (n, n) array is built); ``False`` forces the dense encoding, ``True`` the sparse one.
    """
    if not isinstance(directed, (bool, np.bool_)):
        raise TypeError(f"directed must be a bool, got {type(directed).__name__}")
    if isinstance(Y, Layers):
        if Y.directed != bool(directed):
            raise ValueError(f"{name} was encoded with directed={Y.directed}; pass directed={Y.directed}")
        if sparse is False and Y.is_sparse:
            raise ValueError(f"{name} is sparse Layers; sparse=False needs dense layers")
        return Y
    if isinstance(sparse, str) and sparse == "auto":
        sparse = is_sparse_input(Y)
    if use_sparse(Y, sparse):
        out = encode_sparse(Y, directed=directed, name=name)
    else:
        out = encode_dense(Y, directed=directed, name=name)
    if hasattr(Y, "Y") and hasattr(Y, "layers"):  # a Multiplex: keep its names
        out.nodes = list(getattr(Y, "nodes", [])) or None
        out.layer_names = list(Y.layers) or None
    return out


