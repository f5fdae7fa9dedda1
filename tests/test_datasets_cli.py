"""Bundled data sets, multiplex readers and the `python -m fastgrad hlsm` command."""
import io

import numpy as np
import pytest
import scipy.sparse as sp

from fastgrad import datasets
from fastgrad.__main__ import main


@pytest.mark.parametrize("name, shape, directed, ties", [
    ("aucs", (5, 61, 61), False, {"lunch": 193, "work": 194, "facebook": 124, "leisure": 88, "coauthor": 21}),
    ("florentine", (2, 15, 15), False, {"marriage": 20, "business": 15}),
    ("krackhardt", (3, 21, 21), True, {"advice": 190, "friendship": 102, "reports_to": 20}),
])
def test_bundled_datasets(name, shape, directed, ties):
    data = datasets.load_dataset(name)
    assert data.Y.shape == shape and data.directed is directed
    assert len(data.nodes) == shape[1] and len(set(data.nodes)) == shape[1]
    assert dict(zip(data.layers, data.n_ties().tolist())) == ties   # counts in the data's documentation
    for k in range(shape[0]):
        assert np.all(np.diag(data.Y[k]) == 0)
        if not directed:
            np.testing.assert_array_equal(data.Y[k], data.Y[k].T)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset must be one of"):
        datasets.load_dataset("karate")


CSV = "source,target,layer\na,b,work\nb,c,work\nc,a,lunch\nb,a,work\n"


def test_read_edgelist_undirected_and_directed():
    data = datasets.read_edgelist(io.StringIO(CSV))
    assert data.nodes == ["a", "b", "c"] and data.layers == ["work", "lunch"]
    np.testing.assert_array_equal(data.Y[0], [[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    d = datasets.read_edgelist(io.StringIO(CSV), directed=True)
    np.testing.assert_array_equal(d.Y[0], [[0, 1, 0], [1, 0, 1], [0, 0, 0]])


@pytest.mark.parametrize("kwargs, text, match", [
    (dict(layers=["work"]), CSV, "names layer 'lunch' not in layers"),
    (dict(nodes=["a", "b"]), CSV, "names node 'c' not in nodes"),
    ({}, "from,to,layer\na,b,x\n", "lacks column"),
    ({}, "source,target,layer\na,,x\n", "empty source"),
    ({}, "source,target,layer\n", "has no edges"),
    (dict(nodes=["a", "a", "b", "c"]), CSV, "duplicate node names"),
])
def test_read_edgelist_inconsistent(kwargs, text, match):
    with pytest.raises(ValueError, match=match):
        datasets.read_edgelist(io.StringIO(text), **kwargs)


def test_from_adjacency_numpy_sparse_networkx():
    A = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    B = np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0]], dtype=float)
    m1 = datasets.from_adjacency([A, sp.csr_matrix(B)], layer_names=["x", "y"])
    np.testing.assert_array_equal(m1.Y, np.stack([A, B]))
    assert m1.directed is False
    nx = pytest.importorskip("networkx")
    g1, g2 = nx.from_numpy_array(A), nx.from_numpy_array(B)
    m2 = datasets.from_adjacency([g1, g2])
    np.testing.assert_array_equal(m2.Y, np.stack([A, B]))
    with pytest.raises(ValueError, match="square"):
        datasets.from_adjacency([np.zeros((2, 3))])
    with pytest.raises(ValueError, match="different shapes"):
        datasets.from_adjacency([A, np.zeros((4, 4))])


def test_cli_hlsm_on_edgelist(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from fastgrad import hlsm
    Y, _ = hlsm.simulate(25, 2, random_state=0)
    rows = ["source,target,layer"]
    for k in range(2):
        for i, j in zip(*np.nonzero(np.triu(Y[k], 1))):
            rows.append(f"n{i},n{j},L{k}")
    path = tmp_path / "edges.csv"
    path.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    assert main(["hlsm", "--edgelist", str(path), "--lam", "3", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "alpha" in text and "L0" in text and "L1" in text
    assert (out / "hlsm_edges_positions.csv").read_text().count("\n") == 1 + 2 * 25
    res = np.load(out / "hlsm_edges_result.npz")
    assert res["eps"].shape == (2, 25, 2)
    assert (out / "hlsm_edges_plot.png").stat().st_size > 1000


def test_cli_reports_bad_input(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("from,to\na,b\n")
    assert main(["hlsm", "--edgelist", str(path), "--lam", "1", "--out", str(tmp_path)]) == 1
    assert "lacks column" in capsys.readouterr().err


def _edgelist(tmp_path, n=20, K=2):
    from fastgrad import hlsm
    Y, _ = hlsm.simulate(n, K, random_state=0)
    rows = ["source,target,layer"]
    for k in range(K):
        for i, j in zip(*np.nonzero(np.triu(Y[k], 1))):
            rows.append(f"n{i},n{j},L{k}")
    path = tmp_path / "edges.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_hlsm_select_prints_cross_validated_auc(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = _edgelist(tmp_path)
    out = tmp_path / "out"
    assert main(["hlsm", "--edgelist", str(path), "--select", "--dims", "1,2", "--folds", "2",
                 "--max-iter", "200", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2-fold cross-validation" in text and "<- selected" in text
    auc = float(text.split("cross-validated AUC ")[1].split()[0])
    assert 0.5 < auc <= 1.0
    assert (out / "hlsm_edges_cv.png").stat().st_size > 1000
    assert (out / "hlsm_edges_plot.png").stat().st_size > 1000
    # the old flag still works and says it is deprecated
    assert main(["hlsm", "--edgelist", str(path), "--select-lam", "--dim", "1", "--folds", "2",
                 "--max-iter", "200", "--no-plot", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "deprecated" in captured.err and "cross-validated AUC" in captured.out
    rows = [line for line in captured.out.splitlines() if line[:3].strip().isdigit()]
    from fastgrad.hlsm._cv import LAM_RATIOS      # one row per lam of the default grid
    assert len(rows) == len(LAM_RATIOS) and all(line.startswith("  1 ") for line in rows)  # --dim 1 only
    assert main(["hlsm", "--edgelist", str(path), "--bic", "--max-iter", "200", "--no-plot",
                 "--out", str(out)]) == 0
    assert "BIC" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (["--lam", "1", "--select"], "cannot be combined"),
    (["--select", "--bic"], "choose one of"),
    (["--select", "--dims", "1,x"], "--dims must be comma-separated integers"),
])
def test_cli_hlsm_bad_options(tmp_path, capsys, argv, match):
    path = _edgelist(tmp_path)
    assert main(["hlsm", "--edgelist", str(path), *argv, "--no-plot", "--out", str(tmp_path)]) == 1
    assert match in capsys.readouterr().err
