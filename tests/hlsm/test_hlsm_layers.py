"""fastgrad.hlsm.Layers: one encoding of every input form, accepted by every hlsm function."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from fastgrad import datasets, hlsm
from test_hlsm_fast import _numpy_nll_grad  # tests/hlsm/ is on sys.path (no __init__.py)


def _reference_encoding(Y):
    """Independent NumPy encoding: 1 tie, 0 non-tie, -1 missing (NaN) or diagonal."""
    Y = np.asarray(Y, dtype=np.float64)
    enc = np.where(np.isnan(Y), -1, Y).astype(np.int8)
    for k in range(Y.shape[0]):
        np.fill_diagonal(enc[k], -1)
    return enc


def _inputs(Y):
    """Every input form the docs promise, for dense data Y (NaN = missing)."""
    sparse = []
    for A in Y:
        S = sp.coo_matrix(np.nan_to_num(A, nan=0.0))
        miss = np.argwhere(np.isnan(A))
        data = np.concatenate([S.data, np.full(len(miss), np.nan)])
        rows = np.concatenate([S.row, miss[:, 0]])
        cols = np.concatenate([S.col, miss[:, 1]])
        sparse.append(sp.csr_matrix((data, (rows, cols)), shape=A.shape))
    return {
        "array": Y,
        "list of arrays": list(Y),
        "float32": Y.astype(np.float32),
        "list of sparse": sparse,
        "Layers": None,  # built with the test's directed
    }


@pytest.mark.parametrize("directed", [False, True])
def test_every_input_form_gives_the_same_encoding_and_likelihood(directed):
    Y, truth = hlsm.simulate(30, 3, directed=directed, missing=0.05, random_state=2)
    ref = _reference_encoding(Y)
    f_ref, gz_ref, ga_ref = _numpy_nll_grad(Y, truth.z, truth.alpha, directed)
    for label, inp in _inputs(Y).items():
        if label == "Layers":
            inp = hlsm.Layers(Y, directed=directed)
        L = hlsm.Layers(inp, directed=directed)
        assert isinstance(L, hlsm.Layers), label
        assert L.shape == (3, 30, 30) and L.directed == directed
        obs = int((ref >= 0).sum())
        assert L.n_obs == (obs if directed else obs // 2), label
        if not L.is_sparse:
            np.testing.assert_array_equal(L.Y, ref, err_msg=label)
        f, gb, ge, ga = hlsm.nll_and_grad(L, truth.b, truth.eps, truth.alpha, directed=directed)
        assert f == pytest.approx(f_ref, rel=1e-12), label
        np.testing.assert_allclose(ge, gz_ref, rtol=1e-9, atol=1e-9, err_msg=label)
        np.testing.assert_allclose(ga, ga_ref, rtol=1e-9, atol=1e-9, err_msg=label)
    # integers and bools encode as their float values
    Yi = np.nan_to_num(Y, nan=0).astype(np.int64)
    np.testing.assert_array_equal(hlsm.Layers(Yi, directed=directed).Y, _reference_encoding(Yi))
    np.testing.assert_array_equal(hlsm.Layers(Yi.astype(bool), directed=directed).Y, _reference_encoding(Yi))


@pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")
def test_layers_is_returned_as_is_and_keeps_multiplex_names():
    data = datasets.load_florentine()
    L = hlsm.Layers(data)
    assert hlsm.Layers(L) is L
    assert L.nodes == list(data.nodes) and L.layer_names == list(data.layers)
    res = hlsm.fit(L, 5.0, random_state=0, max_iter=50, tol=1e-4)
    assert res.nodes == list(data.nodes) and res.layers == list(data.layers)
    assert "Layers" in repr(L) and f"{len(data.nodes)} nodes" in repr(L)


def test_sparse_choice():
    Y, _ = hlsm.simulate(30, 2, random_state=0)
    layers = [sp.csr_matrix(A) for A in Y]
    assert hlsm.Layers(layers).is_sparse  # a list of scipy.sparse layers: sparse
    assert not hlsm.Layers(layers, sparse=False).is_sparse
    with pytest.raises(ValueError, match="sparse=True"):
        hlsm.Layers(Y, sparse=True)
    with pytest.raises(ValueError, match="sparse=False"):
        hlsm.Layers(hlsm.Layers(layers), sparse=False)
    with pytest.raises(ValueError, match="sparse must be"):
        hlsm.Layers(Y, sparse="yes")


def test_bad_input_errors_name_the_argument_and_place():
    Y, _ = hlsm.simulate(20, 2, random_state=0)
    bad = Y.copy()
    bad[1, 3, 7] = bad[1, 7, 3] = 2.0
    with pytest.raises(ValueError, match=r"layer 1 has entries other than 0, 1 or NaN \(Y\[1, 3, 7\] = 2.0\)"):
        hlsm.Layers(bad)
    diag = Y.copy()
    diag[0, 4, 4] = 7.0  # the diagonal is ignored
    np.testing.assert_array_equal(hlsm.Layers(diag).Y, hlsm.Layers(Y).Y)
    asym = Y.copy()
    asym[0, 2, 5], asym[0, 5, 2] = 1.0, 0.0
    with pytest.raises(ValueError, match="layer 0 is not symmetric; pass directed=True"):
        hlsm.Layers(asym)
    assert hlsm.Layers(asym, directed=True).directed
    nan_asym = Y.copy()
    nan_asym[1, 2, 5] = np.nan  # the NaN pattern must be symmetric too
    with pytest.raises(ValueError, match="layer 1 is not symmetric"):
        hlsm.Layers(nan_asym)
    empty = Y.copy()
    empty[1] = 0.0
    with pytest.raises(ValueError, match="layer 1 has no ties"):
        hlsm.Layers(empty)
    with pytest.raises(ValueError, match="layer 0 has no observed dyads"):
        hlsm.Layers(np.full((1, 5, 5), np.nan))
    with pytest.raises(TypeError, match="numeric or bool"):
        hlsm.Layers(Y.astype(str))
    with pytest.raises(TypeError, match="real, got complex"):
        hlsm.Layers(Y.astype(complex))
    with pytest.raises(TypeError, match="directed must be a bool"):
        hlsm.Layers(Y, directed="yes")
    with pytest.raises(ValueError, match="encoded with directed=False"):
        hlsm.Layers(hlsm.Layers(Y), directed=True)
    with pytest.raises(ValueError, match="shape"):
        hlsm.Layers(np.zeros((2, 5, 6)))


@pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")
def test_fit_path_and_selection_accept_layers_bit_identically():
    Y, truth = hlsm.simulate(40, 2, missing=0.05, random_state=3)
    L = hlsm.Layers(Y)
    kw = dict(random_state=0, max_iter=300)
    a, b = hlsm.fit(Y, 2.0, **kw), hlsm.fit(L, 2.0, **kw)
    np.testing.assert_array_equal(a.z, b.z)
    assert a.objective == b.objective
    assert hlsm.objective(L, a.b, a.eps, a.alpha, 2.0) == hlsm.objective(Y, a.b, a.eps, a.alpha, 2.0)
    la, _ = hlsm.lam_max(Y, random_state=0)
    lb, _ = hlsm.lam_max(L, random_state=0)
    assert la == lb
    pa = hlsm.fit_path(Y, n_lams=2, **kw)
    pb = hlsm.fit_path(L, n_lams=2, **kw)
    np.testing.assert_array_equal(pa.lams, pb.lams)
    # held-out pairs: the same split from a dense Layers as from the array
    Ya, ta = hlsm.holdout_pairs(Y, frac=0.1, random_state=1)
    Lb, tb = hlsm.holdout_pairs(L, frac=0.1, random_state=1)
    assert isinstance(Lb, hlsm.Layers)
    np.testing.assert_array_equal(ta.k, tb.k)
    np.testing.assert_array_equal(hlsm.Layers(Ya).Y, Lb.Y)
    with pytest.raises(TypeError, match="dense Layers"):
        hlsm.holdout_pairs(hlsm.Layers([sp.csr_matrix(np.nan_to_num(A)) for A in Y]), frac=0.1)


def test_layers_pickle_round_trip():
    Y, truth = hlsm.simulate(25, 2, directed=True, random_state=4)
    for L in (hlsm.Layers(Y, directed=True), hlsm.Layers([sp.csr_matrix(A) for A in Y], directed=True)):
        L2 = pickle.loads(pickle.dumps(L))
        assert type(L2) is type(L) and isinstance(L2, hlsm.Layers)
        f1 = hlsm.nll_and_grad(L, truth.b, truth.eps, truth.alpha, directed=True)[0]
        f2 = hlsm.nll_and_grad(L2, truth.b, truth.eps, truth.alpha, directed=True)[0]
        assert f1 == f2


def test_solver_options_are_checked():
    Y, _ = hlsm.simulate(20, 2, random_state=0)
    with pytest.raises(ValueError, match="unknown option"):
        hlsm.fit(Y, 1.0, solver_options={"node_preconditoin": False})
    with pytest.raises(TypeError, match="node_precondition must be a bool"):
        hlsm.SolverOptions(node_precondition=1)
    with pytest.raises(ValueError, match="max_rounds must be a positive integer"):
        hlsm.SolverOptions(max_rounds=0)
    with pytest.raises(ValueError, match="stage_dtype"):
        hlsm.SolverOptions(stage_dtype=np.float16)
    with pytest.raises(TypeError, match="solver_options must be a dict"):
        hlsm.fit(Y, 1.0, solver_options=[1])
