"""fastgrad.dask set-up: optional import, client look-up, Numba threading checks."""
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import dask.array as da  # noqa: E402
from distributed import Client  # noqa: E402

import fastgrad.dask as fd  # noqa: E402
from fastgrad import glm  # noqa: E402


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_import_fastgrad_does_not_import_dask():
    out = _run("import sys, fastgrad, fastgrad.glm, fastgrad.multinomial, fastgrad.sklearn\n"
               "print(sorted(m for m in sys.modules if m.split('.')[0] in "
               "('dask', 'distributed')))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_dask_names_the_extra():
    out = _run("import sys; sys.modules['distributed'] = None\nimport fastgrad.dask")
    assert out.returncode != 0
    assert "ImportError" in out.stderr and "fastgrad[dask]" in out.stderr


def test_no_client_is_a_clear_error():
    from distributed import get_client
    try:
        get_client()
    except ValueError:
        pass
    else:  # pragma: no cover - another test left a client open
        pytest.skip("a distributed client is active in this process")
    X = da.from_array(np.ones((10, 2)), chunks=(5, 2))
    with pytest.raises(ValueError, match="needs a dask.distributed Client"):
        glm.fit(X, np.ones(10))
    with pytest.raises(ValueError, match="needs a dask.distributed Client"):
        fd.check_client()


def test_closed_client_is_a_clear_error():
    cluster = fd.local_cluster(1, numba_threads=1)
    client = Client(cluster)
    client.close()
    cluster.close()
    X = da.from_array(np.ones((10, 2)), chunks=(5, 2))
    with pytest.raises(ValueError, match="client is closed"):
        glm.fit(X, np.ones(10), client=client)
    with pytest.raises(ValueError, match="client is closed"):
        fd.get_client(client)
    with pytest.raises(TypeError, match="distributed.Client"):
        fd.get_client("tcp://127.0.0.1:8786")
    # a "current" client still shutting down (as an earlier test's once was in CI) is none
    import distributed
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(distributed, "get_client", lambda: client)
        with pytest.raises(ValueError, match="needs a dask.distributed Client"):
            fd.get_client()


def test_safe_cluster_and_options():
    with fd.local_cluster(2, numba_threads=1) as cluster, Client(cluster) as client:
        info = fd.check_client(client, on_unsafe="raise")
        assert len(info) == 2
        for v in info.values():
            assert v["nthreads"] == 1 and v["numba_threads"] == 1 and v["safe"]
            assert v["layer"] in ("omp", "tbb", "workqueue")
        with pytest.raises(ValueError, match="on_unsafe"):
            fd.check_client(client, on_unsafe="ignore")


def test_multithreaded_workqueue_workers_are_detected_and_safe():
    """Two Dask threads per worker with Numba's workqueue layer: check_client flags it
    (or refuses with on_unsafe='raise'); fits still run correctly thanks to the kernel lock
    (without it the workqueue layer aborts the worker on concurrent entry)."""
    env = {"NUMBA_THREADING_LAYER": "workqueue", "NUMBA_NUM_THREADS": "2"}
    with fd.local_cluster(1, threads_per_worker=2, env=env) as cluster, \
            Client(cluster) as client:
        info = fd.check_client(client)
        (v,) = info.values()
        assert v == {"nthreads": 2, "layer": "workqueue", "numba_threads": 2, "safe": False}
        with pytest.raises(ValueError, match="workqueue"):
            fd.check_client(client, on_unsafe="raise")
        rng = np.random.default_rng(0)
        X = rng.normal(size=(16000, 6))  # 4000-row blocks: parallel kernel launches
        y = (X[:, 0] + rng.normal(size=16000) > 0).astype(float)
        # client passed explicitly: in a full CI run the "current" client once was an
        # earlier test's client still shutting down ("No scheduler connected")
        res = glm.fit(da.from_array(X, chunks=(4000, -1)), y, loss="logistic", lam=1e-3,
                      tol=1e-12, client=client)
        ref = glm.fit(X, y, loss="logistic", lam=1e-3, solver="lbfgs", tol=1e-12)
        np.testing.assert_allclose(res.coef, ref.coef, atol=1e-8)
        # the worker survived every concurrent task
        assert list(client.scheduler_info(n_workers=-1)["workers"]) == list(info)


def test_map_reduce_contract():
    """map_reduce sums partition shares in a fixed tree; custom combine; stats."""
    from fastgrad.dask._objective import map_reduce, persist_partitions, release
    with fd.local_cluster(2, numba_threads=1) as cluster, Client(cluster) as client:
        a = np.arange(1000.0)
        parts = persist_partitions(client, _block_sum_prep, da.from_array(a, chunks=97), None)
        stats = {}
        s, m = map_reduce(client, parts, _scaled_sum, 2.0, stats=stats)
        assert s == pytest.approx(2.0 * a.sum()) and m == 11
        big = np.ones(20000)  # scattered to the workers instead of sent with each task
        s2, _ = map_reduce(client, parts, _dot_len, big, stats=stats)
        assert s2 == 11 * 20000
        assert stats["calls"] == 2 and stats["bytes_out"] < 3 * big.nbytes
        assert map_reduce(client, parts, _block_max, combine=max) == 999.0
        release(client, parts)


def _block_sum_prep(block, none):
    assert none is None
    return block


def _scaled_sum(part, c):
    return c * float(part.sum()), 1


def _dot_len(part, v):
    return float(v.sum()), 1


def _block_max(part):
    return float(part.max())


def test_unrecoverable_worker_loss_raises_worker_lost_error():
    """A task that kills every worker it runs on: a clear WorkerLostError, no result."""
    import dask
    from fastgrad.dask._objective import map_reduce, persist_partitions
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            fd.local_cluster(1, numba_threads=1) as cluster, Client(cluster) as client:
        parts = persist_partitions(client, _block_sum_prep, da.from_array(np.ones(10), chunks=5),
                                   None)
        with pytest.raises(fd.WorkerLostError, match="lost workers"):
            map_reduce(client, parts, _die)


def _die(part):
    os._exit(1)
