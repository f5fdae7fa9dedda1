"""Distributed multinomial fits (fastgrad.dask) against single-machine fits."""
import os

import numpy as np
import pytest

pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import dask.array as da  # noqa: E402

import fastgrad.dask as fd  # noqa: E402
from fastgrad import multinomial  # noqa: E402


def _data(n=3000, p=5, K=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    B = rng.normal(size=(p, K))
    logits = X @ B + rng.gumbel(size=(n, K))
    y = np.array(list("abcdefgh"))[np.argmax(logits, axis=1)]
    return X, y


@pytest.mark.parametrize("kw", [dict(lam=0.0), dict(lam=0.01, weighted=True),
                                dict(lam=0.01, solver="lbfgs"),
                                dict(lam=0.001, fit_intercept=False)],
                         ids=["newton", "newton-l2-weighted", "lbfgs", "no-intercept"])
def test_matches_local_fit(client, kw, monkeypatch):
    # the local Newton fit with exact Hessians throughout (the cluster sums exact partition
    # Hessians; the local default sub-samples the first two, which moves the stopping point
    # by about the solver tolerance, 1e-10)
    monkeypatch.setattr(multinomial._model, "_SUBSAMPLE_MIN_PER_PARAM", 10**9)
    kw = dict(kw)
    X, y = _data()
    if kw.pop("weighted", False):
        kw["sample_weight"] = np.random.default_rng(1).uniform(0, 2, size=X.shape[0])
    Xd = da.from_array(X, chunks=(700, 3))
    res = multinomial.fit(Xd, da.from_array(y, chunks=(700,)), **kw)
    ref = multinomial.fit(X, y, **kw)
    assert res.solver == ref.solver and res.converged
    assert list(res.classes) == list(ref.classes) == list("abcd")
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)
    np.testing.assert_allclose(res.intercept, ref.intercept, atol=1e-8)
    assert abs(res.objective - ref.objective) < 1e-12
    assert abs(res.loss - ref.loss) < 1e-12
    assert res.n_iter == ref.n_iter
    # Newton on the summed partition Hessians converges as fast as on one machine
    if res.solver == "newton":
        assert res.n_iter <= 10


def test_numpy_input_with_client_keyword(client):
    X, y = _data(seed=4)
    res = multinomial.fit(X, y, lam=0.01, client=client)
    ref = multinomial.fit(X, y, lam=0.01)
    assert res.info["n_partitions"] == 4
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)


def test_against_scikit_learn_and_wrapper(client):
    sklearn = pytest.importorskip("sklearn.linear_model")
    from fastgrad.sklearn import MultinomialLogisticRegression
    X, y = _data(seed=2)
    est = MultinomialLogisticRegression().fit(da.from_array(X, chunks=(1000, -1)), y)
    sk = sklearn.LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(est.predict_proba(X), sk.predict_proba(X), atol=1e-6)
    assert est.n_features_in_ == X.shape[1] and list(est.classes_) == list(sk.classes_)


def test_bad_input(client):
    X, y = _data(n=400)
    Xd = da.from_array(X, chunks=(100, -1))
    with pytest.raises(ValueError, match="chunked along rows like X"):
        multinomial.fit(Xd, da.from_array(y, chunks=(200,)))
    with pytest.raises(ValueError, match="2-dimensional"):
        multinomial.fit(X[:, 0], y, client=client)
    with pytest.raises(ValueError, match="at least two classes"):
        multinomial.fit(Xd, np.zeros(400))
    with pytest.raises(ValueError, match="solver"):
        multinomial.fit(Xd, y, solver="sgd")
    with pytest.raises(ValueError, match="non-negative"):
        multinomial.fit(Xd, y, sample_weight=-np.ones(400))
    with pytest.raises(ValueError, match="warm_start"):
        multinomial.fit(Xd, y, warm_start=(np.zeros((2, 5)), np.zeros(2)))


def test_worker_lost_mid_fit(client):
    X, y = _data(n=5000, seed=3)
    Xd = da.from_array(X, chunks=(800, -1))
    ref = multinomial.fit(X, y, lam=1e-3)
    killed = []

    def kill(it, state):
        if it == 2 and not killed:
            addr = sorted(client.scheduler_info(n_workers=-1)["workers"])[-1]
            client.run(os._exit, 1, workers=[addr], on_error="ignore")
            killed.append(addr)
        return False

    try:
        res = multinomial.fit(Xd, y, lam=1e-3, callback=kill)
    except fd.WorkerLostError as exc:
        assert "lost workers" in str(exc)
    else:
        assert killed
        np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)
        np.testing.assert_allclose(res.intercept, ref.intercept, atol=1e-8)
    client.wait_for_workers(2, timeout=60)
    assert killed[0] not in client.scheduler_info(n_workers=-1)["workers"]
