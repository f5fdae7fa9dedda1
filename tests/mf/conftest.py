import numpy as np
import pytest

from fastgrad import mf


def _simulated_split(n_users, n_items, n_ratings, n_factors, noise, random_state, n_train):
    u, i, r, truth = mf.simulate(n_users=n_users, n_items=n_items, n_ratings=n_ratings,
                                 n_factors=n_factors, noise=noise, random_state=random_state)
    return u, i, r, np.arange(r.size) >= n_train, truth


@pytest.fixture(scope="session")
def simulated_split():
    """``simulated_split(n_users, n_items, n_ratings, n_factors, noise, random_state, n_train)``:
    ``mf.simulate`` data and a test mask (the ratings after the first ``n_train``)."""
    return _simulated_split


def _python_epoch(users, items, ratings, mu, bu, bi, P, Q, lr, reg, reg_bias):
    sse = 0.0
    for u, i, r in zip(users, items, ratings):
        e = r - (mu + bu[u] + bi[i] + P[u] @ Q[i])
        sse += e * e
        bu[u] += lr * (e - reg_bias * bu[u])
        bi[i] += lr * (e - reg_bias * bi[i])
        p = P[u].copy()
        P[u] += lr * (e * Q[i] - reg * P[u])
        Q[i] += lr * (e * p - reg * Q[i])
    return sse


@pytest.fixture(scope="session")
def python_epoch():
    """``python_epoch(users, items, ratings, mu, bu, bi, P, Q, lr, reg, reg_bias) -> sse``: a
    plain float64 loop of the documented SGD step, in place (the reference of the kernels)."""
    return _python_epoch


@pytest.fixture
def ratings_file(tmp_path):
    """``ratings_file(name, sep)``: a small MovieLens-style file of simulated 1-5 star ratings
    (user, item, rating, timestamp per line), for the CLI tests."""
    def write(name, sep):
        u, i, r, _ = mf.simulate(n_users=60, n_items=40, n_ratings=1500, n_factors=2, noise=0.3,
                                 random_state=0)
        r = np.clip(np.round(r), 1, 5)
        path = tmp_path / name
        path.write_text("".join(f"{a}{sep}{b}{sep}{int(c)}{sep}{978300000 + k}\n"
                                for k, (a, b, c) in enumerate(zip(u, i, r))))
        return path
    return write
