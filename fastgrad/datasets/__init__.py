"""Bundled multiplex networks and readers for a user's own multiplex data.

Every reader returns a :class:`Multiplex`: ``Y`` of shape (K, n, n) with
entries 0/1 (NaN = missing dyad), node names and layer names. Sources and
licences of the bundled data are in ``fastgrad/datasets/data/README.md``.
"""
import csv
import io
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Multiplex", "DATASETS", "load_dataset", "load_aucs", "load_florentine",
    "load_krackhardt", "read_mpx", "read_edgelist", "from_adjacency", "load_movielens", "make_ratings",
]


_DATA = os.path.join(os.path.dirname(__file__), "data")
DATASETS = ("aucs", "florentine", "krackhardt")


@dataclass
class Multiplex:
    """A multiplex network: K layers (relations) over the same n nodes.

    Attributes
    ----------
    Y : ndarray, shape (K, n, n)
        Adjacency of each layer: 1 tie, 0 no tie, NaN missing. Diagonal is 0.
    nodes : list of str
        Node names, in the order of Y's rows.
    layers : list of str
        Layer names, in the order of Y's first axis.
    directed : bool
        Whether ties are directed (otherwise every layer is symmetric).
    attributes : dict
        Node attributes by name (lists aligned with ``nodes``), if any.
    name : str
        Short name of the data set.
    source : str
        Where the data come from (citation).
    """

    Y: np.ndarray
    nodes: list
    layers: list
    directed: bool = False
    attributes: dict = field(default_factory=dict)
    name: str = ""
    source: str = ""

    @property
    def n_nodes(self):
        return self.Y.shape[1]

    @property
    def n_layers(self):
        return self.Y.shape[0]

    def n_ties(self):
        """Number of ties per layer (unordered pairs if undirected)."""
        counts = np.nansum(self.Y, axis=(1, 2))
        return (counts if self.directed else counts / 2).astype(int)

    def __repr__(self):
        kind = "directed" if self.directed else "undirected"
        ties = ", ".join(f"{l}={t}" for l, t in zip(self.layers, self.n_ties()))
        return f"Multiplex({self.name or 'data'}: {self.n_nodes} nodes, {self.n_layers} {kind} layers; ties {ties})"


def load_dataset(name):
    """Load a bundled data set by name: one of ``DATASETS``."""
    loaders = {"aucs": load_aucs, "florentine": load_florentine, "krackhardt": load_krackhardt}
    if name not in loaders:
        raise ValueError(f"dataset must be one of {list(DATASETS)}, got {name!r}")
    return loaders[name]()


def load_aucs():
    """Aarhus University CS department: 61 employees, 5 undirected relations.

    Layers: lunch, work, facebook, leisure, coauthor (Rossi & Magnani 2015;
    R package multinet, Apache-2.0).
    """
    data = read_mpx(os.path.join(_DATA, "aucs.mpx"))
    data.name = "aucs"
    data.source = "Rossi & Magnani (2015), Chaos, Solitons & Fractals 72; R package multinet (Apache-2.0)"
    return data


def load_florentine():
    """Padgett's Florentine families: 15 families, marriage and business ties (undirected)."""
    data = read_mpx(os.path.join(_DATA, "florentine.mpx"))
    data.name = "florentine"
    data.source = "Padgett & Ansell (1993), American Journal of Sociology 98; R package multinet (Apache-2.0)"
    return data


def load_krackhardt():
    """Krackhardt's high-tech managers: 21 managers, 3 directed relations.

    Layers: advice, friendship, reports_to (Krackhardt 1987; R package NetData, GPL-2).
    """
    rows = list(csv.DictReader(open(os.path.join(_DATA, "krack_full_edges.csv"), newline="")))
    layers = ["advice", "friendship", "reports_to"]
    n = max(max(int(r["ego"]), int(r["alter"])) for r in rows)
    Y = np.zeros((3, n, n))
    for r in rows:
        i, j = int(r["ego"]) - 1, int(r["alter"]) - 1
        if i == j:
            continue
        for k, lay in enumerate(layers):
            Y[k, i, j] = float(r[f"{lay}_tie"])
    attrs = {}
    with open(os.path.join(_DATA, "krack_attributes.csv"), newline="") as fh:
        arows = list(csv.DictReader(fh))
    for key in ("AGE", "TENURE", "LEVEL", "DEPT"):
        attrs[key.lower()] = [float(r[key]) for r in arows]
    return Multiplex(Y, [str(i + 1) for i in range(n)], layers, directed=True, attributes=attrs,
                     name="krackhardt",
                     source="Krackhardt (1987), Social Networks 9; R package NetData (GPL-2)")


def read_mpx(path):
    """Read a multinet ``.mpx`` multiplex file.

    Sections ``#LAYERS name,DIRECTED|UNDIRECTED``, ``#ACTOR ATTRIBUTES``,
    ``#ACTORS`` and ``#EDGES actor1,actor2,layer`` are used; duplicate edges
    (e.g. both directions of an undirected tie) count once. Without a
    ``#LAYERS`` section, layers are taken from the edges (undirected).
    """
    sections, current = {}, None
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("--"):
                continue
            if line.startswith("#"):
                current = line[1:].strip().upper()
                sections.setdefault(current, [])
                continue
            if current is None:
                raise ValueError(f"{path}: data before any #SECTION header")
            sections[current].append([c.strip() for c in line.split(",")])
    layer_dir = {}
    for row in sections.get("LAYERS", []):
        layer_dir[row[0]] = len(row) > 1 and row[1].upper() == "DIRECTED"
    attr_names = [r[0] for r in sections.get("ACTOR ATTRIBUTES", [])]
    nodes, attrs = [], {a: [] for a in attr_names}
    for row in sections.get("ACTORS", []):
        nodes.append(row[0])
        for a, v in zip(attr_names, row[1:] + [""] * len(attr_names)):
            attrs[a].append(_maybe_float(v))
    edges = sections.get("EDGES", [])
    for row in edges:
        if len(row) < 3:
            raise ValueError(f"{path}: edge line {row!r} needs actor1,actor2,layer")
        if row[2] not in layer_dir:
            layer_dir[row[2]] = False
    if any(layer_dir.values()) and not all(layer_dir.values()):
        raise ValueError(f"{path}: mixing directed and undirected layers is not supported")
    directed = any(layer_dir.values())
    return _from_edges([(r[0], r[1], r[2]) for r in edges], directed=directed,
                       nodes=nodes or None, layers=list(layer_dir), attributes=attrs,
                       add_nodes=True, where=path)


def read_edgelist(path_or_buffer, *, directed=False, source="source", target="target",
                  layer="layer", delimiter=",", nodes=None, layers=None):
    """Read a multiplex network from a CSV edge list with a header row.

    Parameters
    ----------
    path_or_buffer : str, os.PathLike or file-like
        CSV text with at least the columns ``source``, ``target`` and ``layer``.
    directed : bool, default=False
        If False, each row is an undirected tie (listing both directions is fine).
    source, target, layer : str
        Column names.
    delimiter : str, default=","
        Field separator.
    nodes, layers : sequence of str, optional
        The full node and layer lists (fixing their order, and allowing
        isolated nodes or empty layers). When given, an edge naming a node or
        layer not in them raises ``ValueError``.

    Returns
    -------
    Multiplex
    """
    if isinstance(path_or_buffer, (str, os.PathLike)):
        with open(path_or_buffer, newline="", encoding="utf-8") as fh:
            text = fh.read()
        where = os.fspath(path_or_buffer)
    else:
        text = path_or_buffer.read()
        where = "edge list"
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    cols = reader.fieldnames or []
    missing = [c for c in (source, target, layer) if c not in cols]
    if missing:
        raise ValueError(f"edge list {where!r} lacks column(s) {missing}; it has {cols}")
    edges = []
    for lineno, row in enumerate(reader, start=2):
        s, t, l = (row[source] or "").strip(), (row[target] or "").strip(), (row[layer] or "").strip()
        if not s or not t or not l:
            raise ValueError(f"edge list {where!r} line {lineno}: empty source, target or layer")
        edges.append((s, t, l))
    if not edges:
        raise ValueError(f"edge list {where!r} has no edges")
    return _from_edges(edges, directed=directed, nodes=nodes, layers=layers,
                       add_nodes=nodes is None, where=where)


def _from_edges(edges, *, directed, nodes, layers, attributes=None, add_nodes, where):
    node_list = list(nodes) if nodes is not None else []
    if len(set(node_list)) != len(node_list):
        raise ValueError(f"{where}: duplicate node names")
    index = {v: i for i, v in enumerate(node_list)}
    layer_list = list(layers) if layers is not None else []
    lindex = {v: i for i, v in enumerate(layer_list)}
    fixed_layers = layers is not None
    for s, t, l in edges:
        for v in (s, t):
            if v not in index:
                if not add_nodes:
                    raise ValueError(f"{where}: edge ({s}, {t}, {l}) names node {v!r} not in nodes")
                index[v] = len(node_list)
                node_list.append(v)
        if l not in lindex:
            if fixed_layers:
                raise ValueError(f"{where}: edge ({s}, {t}, {l}) names layer {l!r} not in layers {layer_list}")
            lindex[l] = len(layer_list)
            layer_list.append(l)
    n, K = len(node_list), len(layer_list)
    Y = np.zeros((K, n, n))
    for s, t, l in edges:
        i, j, k = index[s], index[t], lindex[l]
        if i == j:
            continue
        Y[k, i, j] = 1.0
        if not directed:
            Y[k, j, i] = 1.0
    attrs = {}
    for a, vals in (attributes or {}).items():
        vals = list(vals) + [None] * (n - len(vals))
        attrs[a] = vals
    return Multiplex(Y, node_list, layer_list, directed=directed, attributes=attrs)


def from_adjacency(layers, *, nodes=None, layer_names=None, directed=None):
    """Build a :class:`Multiplex` from K adjacency matrices.

    Parameters
    ----------
    layers : sequence
        K square matrices of equal size: NumPy arrays (NaN = missing dyad),
        scipy.sparse matrices, or networkx graphs (needs networkx).
    nodes : sequence, optional
        Node names (for networkx graphs: also the node order; default is the
        order of first appearance across the graphs).
    layer_names : sequence of str, optional
        Default ``layer0, layer1, ...``.
    directed : bool, optional
        Default: True for directed networkx graphs or any asymmetric matrix.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("layers must contain at least one adjacency matrix")
    if any(_is_networkx(g) for g in layers):
        import networkx as nx
        if nodes is None:
            seen = {}
            for g in layers:
                for v in g.nodes:
                    seen.setdefault(v, None)
            nodes = list(seen)
        if directed is None:
            directed = any(g.is_directed() for g in layers)
        mats = []
        for g in layers:
            if not _is_networkx(g):
                raise TypeError("layers mixes networkx graphs with other types")
            unknown = set(g.nodes) - set(nodes)
            if unknown:
                raise ValueError(f"a graph has nodes not in nodes: {sorted(map(str, unknown))[:5]}")
            mats.append(nx.to_numpy_array(g, nodelist=list(nodes), weight=None))
        layers = mats
    dense = []
    for k, A in enumerate(layers):
        if hasattr(A, "toarray"):
            A = A.toarray()
        A = np.asarray(A, dtype=np.float64)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"layers[{k}] must be a square matrix, got shape {A.shape}")
        dense.append(A)
    if len({A.shape for A in dense}) != 1:
        raise ValueError(f"layers have different shapes: {[A.shape for A in dense]}")
    Y = np.stack(dense)
    n = Y.shape[1]
    for k in range(len(dense)):
        np.fill_diagonal(Y[k], 0.0)
    if directed is None:
        directed = not np.array_equal(np.nan_to_num(Y, nan=-1), np.nan_to_num(Y.transpose(0, 2, 1), nan=-1))
    nodes = [str(v) for v in nodes] if nodes is not None else [str(i) for i in range(n)]
    if len(nodes) != n:
        raise ValueError(f"nodes has {len(nodes)} names for {n} nodes")
    names = list(layer_names) if layer_names is not None else [f"layer{k}" for k in range(len(dense))]
    if len(names) != len(dense):
        raise ValueError(f"layer_names has {len(names)} names for {len(dense)} layers")
    return Multiplex(Y, nodes, names, directed=bool(directed))


def _is_networkx(obj):
    return type(obj).__module__.startswith("networkx")


def _maybe_float(v):
    try:
        return float(v)
    except ValueError:
        return None if v in ("", "NA") else v


def __getattr__(name):
    if name == "load_movielens":
        from .movielens import load_movielens
        return load_movielens
    if name == "make_ratings":  # compiled code: numba is imported only when it is used
        from ._ratings import make_ratings
        return make_ratings
    raise AttributeError(f"module 'fastgrad.datasets' has no attribute {name!r}")
