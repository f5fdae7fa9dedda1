"""Distributed GLM fits (fastgrad.dask) against single-machine fits on the same data."""
import os

import numpy as np
import pytest

pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import dask.array as da  # noqa: E402

import fastgrad.dask as fd  # noqa: E402
from fastgrad import glm  # noqa: E402


def _data(n=2500, p=8, logistic=False, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[:, 1] *= 3.0
    w = np.zeros(p)
    w[:3] = [1.0, -0.5, 0.25]
    t = X @ w + 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-t))).astype(float) if logistic \
        else t + rng.normal(size=n)
    return X, y


CASES = [
    dict(loss="squared", lam=0.01, l1_ratio=0.0, solver="lbfgs"),
    dict(loss="logistic", lam=0.002, l1_ratio=0.0, solver="lbfgs"),
    dict(loss="squared", lam=0.05, l1_ratio=1.0, solver="fista"),
    dict(loss="logistic", lam=0.01, l1_ratio=0.5, solver="fista"),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda k: f"{k['loss']}-l1_{k['l1_ratio']}")
def test_matches_local_fit(client, kw):
    X, y = _data(logistic=kw["loss"] == "logistic")
    Xd = da.from_array(X, chunks=(600, 4))  # uneven row blocks, two column blocks
    yd = da.from_array(y, chunks=(600,))
    res = glm.fit(Xd, yd, tol=1e-12, **kw)  # dispatches to fastgrad.dask
    ref = glm.fit(X, y, tol=1e-12, **kw)
    assert res.solver == kw["solver"] and res.info["n_partitions"] == 5
    # the same solver on the same objective: the same iterates up to summation order
    np.testing.assert_allclose(res.coef, ref.coef, rtol=0, atol=1e-8)
    assert abs(res.intercept - ref.intercept) < 1e-8
    assert abs(res.objective - ref.objective) < 1e-12
    # an independent reference: coordinate descent on one machine
    cd = glm.fit(X, y, loss=kw["loss"], lam=kw["lam"], l1_ratio=kw["l1_ratio"], solver="cd",
                 tol=1e-10)
    np.testing.assert_allclose(res.coef, cd.coef, atol=2e-5)
    assert res.objective <= cd.objective + 1e-9


def test_weights_auto_solver_and_numpy_targets(client):
    X, y = _data(logistic=True, seed=1)
    sw = np.random.default_rng(2).uniform(0.0, 3.0, size=X.shape[0])
    Xd = da.from_array(X, chunks=(700, -1))
    res = glm.fit(Xd, y, loss="logistic", lam=0.001, sample_weight=sw, tol=1e-12)
    assert res.solver == "lbfgs"
    ref = glm.fit(X, y, loss="logistic", lam=0.001, sample_weight=sw, solver="lbfgs", tol=1e-12)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)
    # weights are normalised over ALL rows: doubling them changes nothing
    res2 = fd.fit_glm(Xd, y, loss="logistic", lam=0.001, sample_weight=2 * sw, tol=1e-12,
                      client=client)
    np.testing.assert_allclose(res2.coef, res.coef, atol=1e-10)
    # lasso by auto -> FISTA
    Xs, ys = _data(seed=3)
    r = glm.fit(da.from_array(Xs, chunks=(500, -1)), ys, lam=0.05, l1_ratio=1.0, tol=1e-12)
    assert r.solver == "fista"
    np.testing.assert_allclose(r.coef, glm.fit(Xs, ys, lam=0.05, l1_ratio=1.0).coef, atol=2e-6)


def test_numpy_input_with_client_keyword(client):
    import scipy.sparse as sp
    X, y = _data(seed=7)
    res = glm.fit(X, y, lam=0.01, client=client, tol=1e-12)  # sent to the workers in 4 blocks
    assert res.info["n_partitions"] == 4
    ref = glm.fit(X, y, lam=0.01, solver="lbfgs", tol=1e-12)
    np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)
    with pytest.raises(TypeError, match="sparse X"):
        glm.fit(sp.csr_matrix(X), y, client=client)


def test_only_parameters_cross_the_network(client):
    X, y = _data(n=20000, p=20, logistic=True, seed=4)  # X is 3.2 MB
    Xd = da.from_array(X, chunks=(5000, -1))
    res = glm.fit(Xd, y, loss="logistic", lam=1e-3, tol=1e-10)
    calls = res.info["map_reduce_calls"]
    assert calls >= res.n_iter
    # per call: the (p+1)-vector and a few scalars out to 4 tasks, (value, grad, gc) back
    assert res.info["bytes_out"] / calls < 4 * 1000
    assert res.info["bytes_in"] / calls < 1000


def test_sklearn_wrapper_with_dask_array(client):
    from fastgrad.sklearn import LogisticRegression
    X, y01 = _data(logistic=True, seed=5)
    labels = np.where(y01 > 0, "yes", "no")
    est = LogisticRegression(C=0.5, solver="lbfgs", tol=1e-12).fit(
        da.from_array(X, chunks=(800, -1)), da.from_array(labels, chunks=(800,)))
    ref = LogisticRegression(C=0.5, solver="lbfgs", tol=1e-12).fit(X, labels)
    assert list(est.classes_) == ["no", "yes"] and est.n_features_in_ == X.shape[1]
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-8)
    np.testing.assert_allclose(est.intercept_, ref.intercept_, atol=1e-8)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))


def test_bad_input(client):
    X, y = _data(n=300)
    Xd = da.from_array(X, chunks=(100, -1))
    with pytest.raises(ValueError, match="chunked along rows like X"):
        glm.fit(Xd, da.from_array(y, chunks=(150,)))
    with pytest.raises(ValueError, match="inconsistent lengths"):
        glm.fit(Xd, y[:-1])
    with pytest.raises(ValueError, match="solver"):
        glm.fit(Xd, y, solver="bogus")
    with pytest.raises(ValueError, match="'cd' needs the whole data set"):
        glm.fit(Xd, y, solver="cd", lam=0.1, l1_ratio=1.0)
    with pytest.raises(ValueError, match="only 0 and 1"):
        glm.fit(Xd, y, loss="logistic")
    Xnan = X.copy()
    Xnan[250, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        glm.fit(da.from_array(Xnan, chunks=(100, -1)), y)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        glm.fit(Xd[Xd[:, 0] > 0], y)
    with pytest.raises(TypeError, match="client"):
        fd.fit_glm(Xd, y, client="tcp://nowhere")


def test_worker_lost_mid_fit(client):
    """Killing a worker at iteration 2: recovered (same model) or a clear error, never wrong."""
    X, y = _data(n=6000, p=10, logistic=True, seed=6)
    Xd = da.from_array(X, chunks=(1000, -1))
    ref = glm.fit(X, y, loss="logistic", lam=1e-3, solver="lbfgs", tol=1e-12)
    killed = []

    def kill(it, state):
        if it == 2 and not killed:
            addr = sorted(client.scheduler_info(n_workers=-1)["workers"])[0]
            client.run(os._exit, 1, workers=[addr], on_error="ignore")
            killed.append(addr)
        return False

    try:
        res = glm.fit(Xd, y, loss="logistic", lam=1e-3, solver="lbfgs", tol=1e-12,
                      callback=kill)
    except fd.WorkerLostError as exc:
        assert "lost workers" in str(exc)
    else:
        assert killed
        np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)
        assert abs(res.intercept - ref.intercept) < 1e-8
    client.wait_for_workers(2, timeout=60)
    # the nanny restarted the killed worker process (on a new port)
    assert killed[0] not in client.scheduler_info(n_workers=-1)["workers"]
