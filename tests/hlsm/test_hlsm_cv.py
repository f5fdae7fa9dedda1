"""Held-out pairs: splits, folds, scores (against scikit-learn) and fit_cv's selection."""
import numpy as np
import pytest
import scipy.sparse as sp

from fastgrad import hlsm
from fastgrad.hlsm import _cv as _hlsm_cv

pytestmark = pytest.mark.filterwarnings("ignore::fastgrad.ConvergenceWarning")
metrics = pytest.importorskip("sklearn.metrics")

FAST = dict(max_iter=300)


def _observed(Y, directed):
    n = Y.shape[1]
    obs = ~np.isnan(Y) & ~np.eye(n, dtype=bool)[None]
    if not directed:
        obs &= np.triu(np.ones((n, n), dtype=bool), 1)[None]
    return set(zip(*map(lambda a: a.tolist(), np.nonzero(obs))))


# ----------------------------------------------------------------------------- folds and splits

@pytest.mark.parametrize("directed", [False, True])
def test_folds_partition_observed_pairs(directed):
    Y, _ = hlsm.simulate(20, 3, missing=0.2, directed=directed, random_state=3)
    enc = hlsm.encode_layers(Y, directed=directed)
    k, i, j, y = _hlsm_cv._observed_pairs(enc, directed)
    triples = list(zip(k.tolist(), i.tolist(), j.tolist()))
    assert len(set(triples)) == len(triples)                 # each pair once ...
    assert set(triples) == _observed(Y, directed)            # ... every observed pair, no missing one
    if not directed:
        assert (i < j).all()                                 # one entry per unordered pair
    np.testing.assert_array_equal(y, Y[k, i, j])
    folds = _hlsm_cv._make_folds(k, y, 3, 4, np.random.default_rng(0))
    assert set(np.unique(folds)) == {0, 1, 2, 3}
    for layer in range(3):                                   # stratified: balanced within 1 per stratum
        for val in (0, 1):
            counts = np.bincount(folds[(k == layer) & (y == val)], minlength=4)
            assert counts.max() - counts.min() <= 1
    # hiding a fold: both directions of an undirected pair, nothing else
    f = folds == 0
    H = _hlsm_cv._hide(Y, "dense", enc, k[f], i[f], j[f], directed)
    newly = np.isnan(H) & ~np.isnan(Y)
    assert newly.sum() == f.sum() * (1 if directed else 2)
    assert newly[k[f], i[f], j[f]].all()
    if not directed:
        assert newly[k[f], j[f], i[f]].all()
    Hs = _hlsm_cv._hide(Y, "sparse", enc, k[f], i[f], j[f], directed)
    np.testing.assert_array_equal(np.stack([A.toarray() for A in Hs]), np.where(np.isnan(H), np.nan, H))


def test_fit_cv_folds_cover_every_observed_pair_once():
    Y, _ = hlsm.simulate(20, 2, missing=0.1, random_state=1)
    cv = hlsm.fit_cv(Y, dims=1, lams=[1e9], n_folds=3, random_state=0, **FAST)
    k, i, j = cv.pairs
    assert set(zip(k.tolist(), i.tolist(), j.tolist())) == _observed(Y, False)
    assert cv.folds.shape == k.shape and set(np.unique(cv.folds)) == {0, 1, 2}


@pytest.mark.parametrize("form", ["dense", "sparse", "multiplex"])
def test_holdout_pairs(form):
    from fastgrad import datasets
    data = datasets.load_dataset("krackhardt")               # directed, named
    Y = data.Y
    inp = {"dense": Y, "sparse": [sp.csr_matrix(A) for A in Y], "multiplex": data}[form]
    kw = {} if form == "multiplex" else {"directed": True}
    Y_train, test = hlsm.holdout_pairs(inp, 0.2, random_state=5, **kw)
    assert test.directed and test.shape == Y.shape
    dense = {"dense": lambda t: t, "sparse": lambda t: np.stack([A.toarray() for A in t]),
             "multiplex": lambda t: t.Y}[form](Y_train)
    if form == "multiplex":
        assert Y_train.nodes == data.nodes and Y_train.layers == data.layers
    hidden = np.isnan(dense)
    assert hidden.sum() == len(test)
    assert hidden[test.k, test.i, test.j].all()
    np.testing.assert_array_equal(test.y, Y[test.k, test.i, test.j])
    np.testing.assert_array_equal(dense[~hidden], Y[~hidden])
    for layer in range(3):                                    # 20% of the ties and of the non-ties of each layer
        n_ties = int(Y[layer].sum())
        n_non = 21 * 20 - n_ties
        sel = test.k == layer
        assert int(test.y[sel].sum()) == round(0.2 * n_ties)
        assert int((test.y[sel] == 0).sum()) == round(0.2 * n_non)
    # the same seed gives the same split
    again = hlsm.holdout_pairs(inp, 0.2, random_state=5, **kw)[1]
    np.testing.assert_array_equal(again.i, test.i)


# ----------------------------------------------------------------------------- scores vs scikit-learn

def test_roc_auc_equals_sklearn():
    rng = np.random.default_rng(0)
    for m, ties in ((50, False), (400, True), (3, False)):
        y = rng.integers(0, 2, m)
        y[:2] = (0, 1)
        s = rng.standard_normal(m)
        if ties:
            s = np.round(s, 1)                                # many tied scores
        np.testing.assert_allclose(hlsm.roc_auc(y, s), metrics.roc_auc_score(y, s), rtol=1e-12)
    assert hlsm.roc_auc(np.array([True, False]), [0.9, 0.1]) == 1.0


def test_score_pairs_equals_sklearn():
    Y, _ = hlsm.simulate(30, 3, random_state=2)
    Y_train, test = hlsm.holdout_pairs(Y, 0.2, random_state=0)
    res = hlsm.fit(Y_train, lam=3.0, random_state=0, **FAST)
    s = hlsm.score_pairs(res, test)
    p = res.predict_proba()[test.k, test.i, test.j]
    np.testing.assert_allclose(s["log_loss"], metrics.log_loss(test.y, p), rtol=1e-10)
    np.testing.assert_allclose(s["brier"], metrics.brier_score_loss(test.y, p), rtol=1e-10)
    per = [metrics.roc_auc_score(test.y[test.k == k], p[test.k == k]) for k in range(3)]
    np.testing.assert_allclose(s["auc_layers"], per, rtol=1e-12)
    np.testing.assert_allclose(s["auc"], np.mean(per), rtol=1e-12)
    assert s["n_pairs"] == len(test)
    # the same scores from index arrays with labels, with the full data, and from a probability array
    s2 = hlsm.score_pairs(res, test.pairs, test.y)
    s3 = hlsm.score_pairs(res.predict_proba(), test.pairs, Y)
    for other in (s2, s3):
        np.testing.assert_allclose(other["auc_layers"], s["auc_layers"], rtol=1e-12)
        np.testing.assert_allclose(other["log_loss"], s["log_loss"], rtol=1e-12)


def test_score_pairs_layer_without_both_classes_is_nan():
    Y, _ = hlsm.simulate(20, 2, random_state=0)
    P = np.full(Y.shape, 0.3)
    k = np.array([0, 0, 0, 1, 1])
    i = np.array([0, 1, 2, 0, 1])
    j = np.array([5, 6, 7, 5, 6])
    y = np.array([0, 1, 0, 0, 0])
    s = hlsm.score_pairs(P, (k, i, j), y)
    assert s["auc_layers"][0] == 0.5 and np.isnan(s["auc_layers"][1]) and s["auc"] == 0.5


def test_score_and_split_bad_input():
    Y, _ = hlsm.simulate(20, 2, random_state=0)
    P = np.full(Y.shape, 0.5)
    pairs = (np.array([0, 1]), np.array([0, 1]), np.array([2, 3]))
    with pytest.raises(ValueError, match="y .*needed"):
        hlsm.score_pairs(P, pairs)
    with pytest.raises(ValueError, match="one value per pair"):
        hlsm.score_pairs(P, pairs, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        hlsm.score_pairs(P, pairs, np.array([0, 2]))
    with pytest.raises(ValueError, match="outside"):
        hlsm.score_pairs(P, (np.array([2]), np.array([0]), np.array([1])), np.array([1]))
    with pytest.raises(ValueError, match="diagonal"):
        hlsm.score_pairs(P, (np.array([0]), np.array([1]), np.array([1])), np.array([1]))
    with pytest.raises(TypeError, match="integer"):
        hlsm.score_pairs(P, (np.array([0.0]), np.array([1]), np.array([2])), np.array([1]))
    with pytest.raises(TypeError, match="HeldOutPairs or a tuple"):
        hlsm.score_pairs(P, "pairs", np.array([1]))
    with pytest.raises(ValueError, match="within"):
        hlsm.score_pairs(np.full(Y.shape, 1.5), pairs, np.array([0, 1]))
    with pytest.raises(ValueError, match="both classes"):
        hlsm.roc_auc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="different lengths"):
        hlsm.roc_auc([0, 1], [0.2])
    with pytest.raises(ValueError, match="NaN"):
        hlsm.roc_auc([0, 1], [0.2, np.nan])
    for frac in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="frac"):
            hlsm.holdout_pairs(Y, frac)
    with pytest.raises(TypeError, match="directed"):
        hlsm.holdout_pairs(Y, 0.1, directed="yes")
    with pytest.raises(ValueError, match="hides no pair"):
        hlsm.holdout_pairs(Y, 1e-6)


def test_fit_cv_bad_input():
    Y, _ = hlsm.simulate(20, 2, random_state=0)
    cases = [
        (dict(metric="accuracy"), ValueError, "metric must be one of"),
        (dict(n_folds=1), ValueError, "n_folds"),
        (dict(n_folds=2.5), TypeError, "n_folds"),
        (dict(dims=0), ValueError, "dims"),
        (dict(dims=(2, 20)), ValueError, "smaller than the number of nodes"),
        (dict(dims="2"), TypeError, "dims"),
        (dict(dims=()), ValueError, "dims must not be empty"),
        (dict(lams=[-1.0]), ValueError, "lams"),
        (dict(lams=[]), ValueError, "lams"),
        (dict(dim=2), TypeError, "use dims"),
        (dict(lam=2.0), TypeError, "use lams"),
        (dict(callback=print), TypeError, "callback"),
    ]
    for kw, exc, match in cases:
        with pytest.raises(exc, match=match):
            hlsm.fit_cv(Y, **kw)
    Z = Y.copy()
    Z[1] = 0.0
    Z[1, 0, 1] = Z[1, 1, 0] = 1.0                           # a layer with one tie cannot be cross-validated
    with pytest.raises(ValueError, match="layer 1 has 1 observed ties"):
        hlsm.fit_cv(Z, dims=1)
    with pytest.raises(ValueError, match="not symmetric"):
        hlsm.fit_cv(np.triu(Y), dims=1)


# ----------------------------------------------------------------------------- selection

@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_hidden_pair_never_influences_a_fold_fit(monkeypatch, form):
    """Flip every value of fold 0: fold 0's fits are unchanged, so its per-layer AUCs become 1 - AUC."""
    Y, _ = hlsm.simulate(24, 2, random_state=4)
    kw = dict(dims=(1, 2), lams=[1e9, 2.0, 0.0], n_folds=3, random_state=0, **FAST)
    to_input = (lambda A: A) if form == "dense" else (lambda A: [sp.csr_matrix(L) for L in A])
    cv = hlsm.fit_cv(to_input(Y), **kw)
    folds = cv.folds.copy()
    monkeypatch.setattr(_hlsm_cv, "_make_folds", lambda *a, **k: folds.copy())
    k, i, j = cv.pairs
    f = folds == 0
    Y2 = Y.copy()
    Y2[k[f], i[f], j[f]] = 1.0 - Y2[k[f], i[f], j[f]]
    Y2[k[f], j[f], i[f]] = Y2[k[f], i[f], j[f]]
    cv2 = hlsm.fit_cv(to_input(Y2), **kw)
    np.testing.assert_allclose(cv2.fold_scores[:, 0, 1], 1.0 - cv.fold_scores[:, 0, 1], rtol=0, atol=1e-12)
    # ... while the other folds, which train on the flipped pairs, do change
    assert np.abs(cv2.fold_scores[:, 1:, 1] - cv.fold_scores[:, 1:, 1]).max() > 1e-3


def test_fit_cv_picks_true_dim():
    Y, truth = hlsm.simulate(40, 3, dim=2, deviating_layers=(), alpha=[1.5, 2.0, 2.5], random_state=7)
    cv = hlsm.fit_cv(Y, dims=(1, 2, 3), lams=[1e9], n_folds=4, random_state=0, **FAST)
    assert cv.dim == 2
    ll = cv.scores["loglik"]
    assert ll[1] > ll[0] and ll[1] > ll[2]
    assert cv.best.b.shape == (40, 2) and (cv.best.eps == 0).all()
    assert hlsm.procrustes_error(cv.best.b, truth.b) < 0.4


def test_fit_cv_result_and_refit(tmp_path):
    Y, _ = hlsm.simulate(24, 2, random_state=0)
    cv = hlsm.fit_cv(Y, dims=(1, 2), n_folds=3, metric="auc", random_state=0, **FAST)
    s = cv.scores
    m = len(_hlsm_cv.LAM_RATIOS)
    assert s["dim"].tolist() == [1] * m + [2] * m
    np.testing.assert_allclose(s["lam_ratio"], list(_hlsm_cv.LAM_RATIOS) * 2)
    np.testing.assert_allclose(s["auc"], np.nanmean(cv.fold_scores[:, :, 1], axis=1))
    np.testing.assert_allclose(s["brier_std"], np.std(cv.fold_scores[:, :, 2], axis=1, ddof=1))
    b = cv.best_index
    assert s["auc"][b] == np.nanmax(s["auc"]) and cv.cv_auc == s["auc"][b]
    assert (cv.dim, cv.lam) == (s["dim"][b], s["lam"][b])
    assert cv.best.b.shape[1] == cv.dim
    if cv.lam_ratio < 1:
        assert cv.best.lam == cv.lam
    else:
        assert (cv.best.eps == 0).all()
    assert cv.lam_max[1] > 0 and cv.lam_max[2] > 0
    # the same seed reproduces everything
    again = hlsm.fit_cv(Y, dims=(1, 2), n_folds=3, metric="auc", random_state=0, **FAST)
    np.testing.assert_array_equal(again.fold_scores, cv.fold_scores)
    assert "selected" in cv.summary()
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    fig = cv.plot(path=tmp_path / "cv.png")
    assert (tmp_path / "cv.png").stat().st_size > 1000
    plt.close(fig)
    with pytest.raises(ValueError, match="metric"):
        cv.plot("nope")
