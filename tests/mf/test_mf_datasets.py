"""Tests of the MovieLens-shaped rating generator (fastgrad.datasets.make_ratings)."""
import numba
import numpy as np
import pytest

from fastgrad.datasets import make_ratings


@pytest.fixture(scope="module")
def ml100k():
    return make_ratings(random_state=0)


def test_shape_and_distinct_pairs(ml100k):
    u, i, r = ml100k
    assert u.shape == i.shape == r.shape == (100_000,)
    assert u.max() == 942 and i.max() == 1681
    assert np.unique(u * 1682 + i).size == 100_000            # no repeated (user, item)
    assert set(np.unique(r).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_degree_distributions_are_heavy_tailed_like_ml100k(ml100k):
    u, i, r = ml100k
    du = np.bincount(u, minlength=943)
    di = np.bincount(i, minlength=1682)
    # users (ML-100k: min 20, median 65, mean 106, max 737)
    assert du.min() >= 20 and du.min() <= 25
    assert 50 <= np.median(du) <= 80
    assert du.mean() / np.median(du) > 1.4                    # right-skewed
    assert 500 <= du.max() <= 760
    # items (ML-100k: min 1, median 27, mean 59, max 583, 141 items rated once)
    assert di.min() == 1
    assert 18 <= np.median(di) <= 36
    assert 450 <= di.max() <= 750
    assert 80 <= (di == 1).sum() <= 220
    # Zipf-like head: log-degree falls roughly linearly in log-rank over the top 300 items
    top = np.sort(di)[::-1][:300].astype(float)
    slope = np.polyfit(np.log(np.arange(1, 301)), np.log(top), 1)[0]
    assert -1.0 < slope < -0.2
    # the uniform draw of the old benchmark is not heavy-tailed: the test would fail on it
    flat = np.bincount(np.random.default_rng(0).integers(0, 1682, 100_000))
    assert flat.max() < 450 and np.median(flat) > 36


def test_star_shares_and_signal(ml100k):
    u, i, r = ml100k
    shares = np.bincount(r.astype(int), minlength=6)[1:] / r.size
    np.testing.assert_allclose(shares, [0.0611, 0.1137, 0.2715, 0.3417, 0.2120], atol=2e-3)
    # popular items are rated higher (ML-100k: positive correlation of degree and mean rating)
    di = np.bincount(i)
    mean_i = np.bincount(i, weights=r) / di
    assert np.corrcoef(np.log(di), mean_i)[0, 1] > 0.1


def test_seeded_and_thread_independent():
    a = make_ratings(200, 300, 8000, random_state=3)
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = make_ratings(200, 300, 8000, random_state=3)
    finally:
        numba.set_num_threads(saved)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = make_ratings(200, 300, 8000, random_state=4)
    assert not np.array_equal(a[1], c[1])


def test_truth_and_continuous_scores():
    u, i, r, truth = make_ratings(100, 150, 4000, star_shares=None, noise=0.0, return_truth=True,
                                  random_state=1)
    sig = (truth["mu"] + truth["user_bias"][u] + truth["item_bias"][i]
           + np.einsum("ij,ij->i", truth["P"][u], truth["Q"][i]))
    np.testing.assert_allclose(r, sig)


def test_bad_input():
    with pytest.raises(ValueError, match="n_ratings"):
        make_ratings(100, 50, 1000)                      # fewer than 100 * 20
    with pytest.raises(ValueError, match="n_ratings"):
        make_ratings(10, 5, 60, min_user_ratings=2)       # more than all pairs
    with pytest.raises(TypeError, match="n_users"):
        make_ratings(10.5, 50, 1000)
    with pytest.raises(ValueError, match="star_shares"):
        make_ratings(10, 50, 300, star_shares=[1.0, -1.0])
    with pytest.raises(ValueError, match="max_user_share"):
        make_ratings(10, 50, 300, max_user_share=0)
