import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def _dask_client():
    """A 2-worker cluster in fastgrad's recommended set-up and a client on it."""
    pytest.importorskip("distributed")
    from distributed import Client

    import fastgrad.dask as fd
    with fd.local_cluster(2, numba_threads=1) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def client():
    """One 2-worker dask cluster per test module (fastgrad.dask.local_cluster)."""
    yield from _dask_client()


@pytest.fixture
def fresh():
    """A 2-worker cluster of its own, for a test that kills a worker: later tests never
    depend on the killed worker's restart (seen to take over 60 s once in CI)."""
    yield from _dask_client()


@pytest.fixture
def live(client):
    """The module's client, with both workers up (a previous test may have killed one)."""
    client.wait_for_workers(2, timeout=60)
    return client
