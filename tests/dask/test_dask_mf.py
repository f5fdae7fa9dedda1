"""Distributed stratified SGD (fastgrad.dask.fit_mf) against the single-machine fit."""
import os
import warnings
from collections import defaultdict

import numpy as np
import pytest

pytest.importorskip("distributed")

import fastgrad  # noqa: E402
from fastgrad import mf  # noqa: E402

KW = dict(n_factors=6, n_epochs=4, random_state=3)


@pytest.fixture(scope="module")
def data():
    u, i, r, _ = mf.simulate(n_users=150, n_items=100, n_ratings=6000, n_factors=3, noise=0.3,
                             random_state=0)
    return u, i, r


def _assert_same_model(a, b):
    for name in ("P", "Q", "user_bias", "item_bias"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    # the running SSE's sum over cells and the penalty are vectorised sums (order may differ)
    np.testing.assert_allclose(a.train_rmse, b.train_rmse, rtol=1e-13)
    np.testing.assert_allclose(a.history, b.history, rtol=1e-13)
    assert a.n_iter == b.n_iter and a.params["n_blocks"] == b.params["n_blocks"]


@pytest.mark.parametrize("n_blocks, shuffle", [(2, "once"), (3, "once"), (2, "epoch")])
def test_equals_local_blocked_fit_bitwise(live, data, n_blocks, shuffle):
    from fastgrad.dask import fit_mf
    local = mf.fit(*data, n_blocks=n_blocks, shuffle=shuffle, **KW)
    stats = {}
    dist = fit_mf(live, *data, n_blocks=n_blocks, stats=stats, shuffle=shuffle, **KW)
    _assert_same_model(local, dist)
    assert stats["recoveries"] == 0 and len(stats["seconds"]) == KW["n_epochs"]
    # and it is a real fit: the serial schedule gives a different (but as good) model
    serial = mf.fit(*data, n_blocks=1, **KW)
    assert not np.array_equal(serial.P, dist.P)
    assert dist.rmse(*data) < 0.9 * mf.fit(*data, **dict(KW, n_epochs=0)).rmse(*data)


def test_default_blocks_and_mf_fit_client_keyword(live, data):
    local = mf.fit(*data, n_blocks=2, **KW)
    dist = mf.fit(*data, client=live, **KW)           # n_blocks defaults to the 2 workers
    _assert_same_model(local, dist)


def test_validation_early_stopping_and_callback_as_local(live, data):
    from fastgrad.dask import fit_mf
    u, i, r = data
    tr, va = slice(0, 5000), slice(5000, None)
    seen = {"local": [], "dask": []}
    kw = dict(KW, n_epochs=6, n_blocks=2, validation=(u[va], i[va], r[va]), early_stopping=True,
              tol=1e-3, patience=1, lr=0.02)

    def cb(key):
        return lambda ep, st: seen[key].append((ep, st["val_rmse"], st["P"][0, 0])) or ep >= 5

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastgrad.ConvergenceWarning)
        local = mf.fit(u[tr], i[tr], r[tr], callback=cb("local"), **kw)
        dist = fit_mf(live, u[tr], i[tr], r[tr], callback=cb("dask"), **kw)
    _assert_same_model(local, dist)
    np.testing.assert_allclose(local.val_rmse, dist.val_rmse, rtol=1e-13)
    np.testing.assert_allclose(seen["local"], seen["dask"], rtol=1e-13)
    assert len(seen["dask"]) == dist.n_iter


def test_strata_run_on_distinct_workers_and_rows_never_move(live, data):
    """Stratum cells on different workers; row block b always on the same worker; only Q moves."""
    from fastgrad.dask._mf import DSGDTrainer, pickled_size
    u, i, r = data
    uu = np.unique(u, return_inverse=True)[1].astype(np.int32)
    ii = np.unique(i, return_inverse=True)[1].astype(np.int32)
    nu, ni, k = uu.max() + 1, ii.max() + 1, 4
    rng = np.random.default_rng(0)
    tr = DSGDTrainer(live, uu, ii, r, nu, ni, rng, n_blocks=2)
    P, Q = rng.normal(0, 0.1, (nu, k)), rng.normal(0, 0.1, (ni, k))
    bu, bi = np.zeros(nu), np.zeros(ni)
    for _ in range(3):
        tr.epoch(float(r.mean()), bu, bi, P, Q, 0.01, 0.02, 0.02)
    by_stratum = defaultdict(set)
    by_block = defaultdict(set)
    for epoch, s, b, c, addr in tr.placement:
        by_stratum[epoch, s].add(addr)
        by_block[b].add(addr)
        assert c // 2 == b and c % 2 == (b + s) % 2        # cell (b, (b + s) mod B)
    assert len(by_stratum) == 6 and all(len(v) == 2 for v in by_stratum.values())
    assert all(len(v) == 1 for v in by_block.values()) and len(set.union(*by_block.values())) == 2
    # per epoch both item blocks move exactly once (placed for the first stratum, then swapped)
    q_bytes = sum(pickled_size((Q[rows], bi[rows])) for rows in tr.item_rows)
    assert tr.stats["bytes_between_workers"] == [q_bytes] * 3
    assert tr.stats["bytes_from_client"][1:] == [0, 0]        # data and params stay put
    assert tr.stats["bytes_from_client"][0] > r.nbytes


def kill_worker_at(client, epoch):
    """A callback that kills the second worker (its process exits) after ``epoch``."""
    def cb(ep, state):
        if ep == epoch:
            addr = sorted(client.scheduler_info(n_workers=-1)["workers"])[1]
            try:
                client.run(os._exit, 1, workers=[addr])
            except Exception:   # the worker dies before it answers
                pass
    return cb


def dying_once(task, flag):
    """``task``, except that the first call that finds the file ``flag`` deletes it and kills
    its worker process (``os.remove`` is atomic: exactly one call dies)."""
    def run(*args):
        try:
            os.remove(flag)
        except FileNotFoundError:
            return task(*args)
        os._exit(1)
    return run


def test_worker_killed_inside_an_epoch_is_recovered_exactly(fresh, data, tmp_path, monkeypatch):
    """A cell task of epoch 3 kills its own worker: the epoch is rerun from the checkpoint."""
    from fastgrad.dask import _mf, fit_mf
    flag = str(tmp_path / "kill")
    monkeypatch.setattr(_mf, "_cell_task", dying_once(_mf._cell_task, flag))
    local = mf.fit(*data, n_blocks=2, **KW)
    stats = {}
    dist = fit_mf(fresh, *data, n_blocks=2, stats=stats, **KW,
                  callback=lambda ep, st: ep == 2 and open(flag, "w").close())
    assert not os.path.exists(flag) and stats["recoveries"] >= 1
    _assert_same_model(local, dist)


def test_worker_killed_mid_fit_is_recovered_exactly(fresh, data):
    from fastgrad.dask import fit_mf
    local = mf.fit(*data, n_blocks=2, **KW)
    stats = {}
    dist = fit_mf(fresh, *data, n_blocks=2, stats=stats, callback=kill_worker_at(fresh, 2), **KW)
    assert stats["recoveries"] >= 1
    _assert_same_model(local, dist)


def test_worker_killed_without_retries_raises_clear_error(fresh, data):
    from fastgrad.dask import WorkerLostError, fit_mf
    with pytest.raises(WorkerLostError, match="no model is returned"):
        fit_mf(fresh, *data, n_blocks=2, max_retries=0, callback=kill_worker_at(fresh, 1), **KW)


def test_bad_input(live, data):
    from fastgrad.dask import fit_mf
    u, i, r = data
    with pytest.raises(TypeError, match="client"):
        fit_mf("localhost:8786", u, i, r)
    bad = r.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="ratings"):
        fit_mf(live, u, i, bad)
    with pytest.raises(ValueError, match="n_blocks"):
        fit_mf(live, u, i, r, n_blocks=1)
    with pytest.raises(ValueError, match="max_retries"):
        fit_mf(live, u, i, r, max_retries=-1)
