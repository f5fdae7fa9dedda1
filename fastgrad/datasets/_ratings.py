"""Synthetic rating data with MovieLens' heavy-tailed user activity and item popularity.

:func:`make_ratings` draws ``n_ratings`` distinct (user, item) pairs and 1-5 star
ratings from a biased low-rank model. The defaults reproduce the shape of
MovieLens-100k (943 users, 1682 items, 100,000 ratings):

- user activity: every user rates at least ``min_user_ratings`` (20) items; the
  excess over it is log-normal (``user_sigma=1.15``), capped at 45% of the items, so the degrees are
  right-skewed (ML-100k: min 20, median 65, mean 106, max 737);
- item popularity: item of popularity rank ``k`` (of ``n``) is drawn with weight
  ``(-log((k - 1/2) / n)) ** item_exponent`` (``1.8``) -- Zipf-like at the head, with a long
  tail of rarely rated items (ML-100k: median 27, mean 59, max 583, 141 items
  rated once) -- and every item is rated at least once;
- each user's items are drawn without replacement, proportionally to these
  weights (successive sampling), in parallel with one counter-based stream per
  user, so a seed gives the same data on any number of threads;
- ratings: ``s = mu + bu + bi + p_u . q_i + noise * N(0, 1)`` with the item bias
  partly tied to popularity (popular films are rated higher), then cut into
  1..5 stars at the quantiles of MovieLens-100k's star histogram
  (6.1%, 11.4%, 27.1%, 34.2%, 21.2%).
"""
import math

import numpy as np
from numba import njit, prange

from .._validation import check_random_state, check_scalar
from ..kernels.mf import _cell_seed, _splitmix64, _u53

__all__ = ["make_ratings", "ML100K_STAR_SHARES"]

#: Shares of 1..5 stars in MovieLens-100k.
ML100K_STAR_SHARES = (0.06110, 0.11370, 0.27145, 0.34174, 0.21201)


@njit(cache=True, parallel=True)
def _sample_items(deg, offsets, reserved_ptr, reserved, cum_w, log_w, seed, out):
    """Items of every user: its ``reserved`` ones first, then draws without replacement
    proportional to the weights (rejection of repeats; Gumbel top-k for heavy users)."""
    n_users = deg.shape[0]
    n_items = cum_w.shape[0]
    total = cum_w[n_items - 1]
    for u in prange(n_users):
        state = _cell_seed(seed, u)
        o = offsets[u]
        d = deg[u]
        seen = np.zeros(n_items, dtype=np.bool_)
        c = 0
        for t in range(reserved_ptr[u], reserved_ptr[u + 1]):
            j = reserved[t]
            seen[j] = True
            out[o + c] = j
            c += 1
        if 3 * d > n_items:            # heavy user: exact successive sampling by Gumbel keys
            keys = np.empty(n_items)
            for j in range(n_items):
                state, bits = _splitmix64(state)
                g = -math.log(-math.log((np.int64(bits >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)))
                keys[j] = -np.inf if seen[j] else log_w[j] + g
            order = np.argsort(-keys)
            t = 0
            while c < d:
                out[o + c] = order[t]
                c += 1
                t += 1
        else:
            while c < d:
                state, bits = _splitmix64(state)
                x = _u53(bits) * total
                j = np.searchsorted(cum_w, x, side="right")
                if j >= n_items:
                    j = n_items - 1
                if not seen[j]:
                    seen[j] = True
                    out[o + c] = j
                    c += 1


def _user_degrees(rng, n_users, n_ratings, min_deg, sigma, cap):
    """Degrees ``>= min_deg``, log-normal excess, summing to ``n_ratings``, each ``<= cap``."""
    base = np.full(n_users, min_deg, dtype=np.int64)
    extra = n_ratings - base.sum()
    w = np.exp(sigma * rng.standard_normal(n_users))
    deg = base.copy()
    remaining = extra
    free = np.ones(n_users, dtype=bool)
    for _ in range(50):                         # water-filling under the cap
        if remaining <= 0 or not free.any():
            break
        share = np.where(free, w, 0.0)
        share = share / share.sum() * remaining
        add = np.floor(share).astype(np.int64)
        frac = share - add
        short = int(remaining - add.sum())
        if short > 0:                           # largest remainders
            add[np.argsort(-frac, kind="stable")[:short]] += 1
        deg += add
        over = np.maximum(deg - cap, 0)
        deg -= over
        free &= deg < cap
        remaining = int(over.sum())
    return deg


def make_ratings(n_users=943, n_items=1682, n_ratings=100_000, *, random_state=None,
                 min_user_ratings=20, max_user_share=0.45, user_sigma=1.15, item_exponent=1.8, n_factors=10,
                 mu=3.53, bias_std=0.35, popularity_bias=0.25, factor_std=None, noise=0.6,
                 star_shares=ML100K_STAR_SHARES, return_truth=False):
    """Heavy-tailed synthetic ratings shaped like MovieLens (ML-100k by default).

    Parameters
    ----------
    n_users, n_items, n_ratings : int
        Sizes (every user and every item gets at least one rating; needs
        ``n_users * min_user_ratings <= n_ratings <= n_users * n_items`` and
        ``n_items <= n_ratings``).
    random_state : None, int or numpy.random.Generator
        Seed; the result does not depend on the number of threads.
    min_user_ratings : int, default=20
        Least number of ratings per user (MovieLens keeps users with >= 20).
    max_user_share : float, default=0.45
        No user rates more than ``ceil(max_user_share * n_items)`` items (ML-100k's
        most active user rated 737 of 1682; the cap is raised to
        ``min_user_ratings`` or ``n_ratings / n_users`` if these are larger).
    user_sigma : float, default=1.15
        Log-normal sigma of a user's ratings in excess of the minimum.
    item_exponent : float, default=1.8
        Item of rank ``k`` has weight ``(-log((k - 1/2) / n_items)) ** item_exponent``
        (0 = uniform; larger = heavier head).
    n_factors : int, default=10
        Rank of the interaction term.
    mu, bias_std : float
        Mean and spread of the latent score; user and item biases are
        ``N(0, bias_std^2)``.
    popularity_bias : float, default=0.25
        Item bias gets ``popularity_bias * z``, ``z`` the standardised log of
        the item's weight (popular items are rated higher, as in MovieLens).
    factor_std : float, optional
        Standard deviation of the factor entries; default
        ``(0.3 / n_factors) ** 0.25`` (interaction variance 0.3).
    noise : float, default=0.6
        Standard deviation of the Gaussian noise on the latent score (with the
        defaults, biased MF with 100 factors reaches a held-out RMSE of about
        0.95 on an 80/20 split, as on ML-100k's u1 split).
    star_shares : sequence of float or None
        Shares of the stars ``1..len(star_shares)``: the scores are cut at these
        quantiles. ``None`` returns the continuous scores.
    return_truth : bool, default=False
        Also return a dict with ``mu, user_bias, item_bias, P, Q, noise, scores``.

    Returns
    -------
    users, items : int64 ndarray of shape (n_ratings,)
        Rows ``0..n_users-1`` and ``0..n_items-1``, ordered by user.
    ratings : float64 ndarray of shape (n_ratings,)
    truth : dict, only with ``return_truth=True``

    Examples
    --------
    >>> from fastgrad.datasets import make_ratings
    >>> u, i, r = make_ratings(random_state=0)
    >>> u.shape, int(np.bincount(u).min()) >= 20, sorted(set(r.tolist()))
    ((100000,), True, [1.0, 2.0, 3.0, 4.0, 5.0])
    """
    n_users = check_scalar(n_users, "n_users", kind="int", lo=1)
    n_items = check_scalar(n_items, "n_items", kind="int", lo=1)
    min_user_ratings = check_scalar(min_user_ratings, "min_user_ratings", kind="int", lo=1,
                                    hi=n_items)
    n_ratings = check_scalar(n_ratings, "n_ratings", kind="int",
                             lo=max(n_users * min_user_ratings, n_items), hi=n_users * n_items)
    max_user_share = check_scalar(max_user_share, "max_user_share", lo=0.0, hi=1.0, lo_open=True)
    user_sigma = check_scalar(user_sigma, "user_sigma", lo=0.0)
    item_exponent = check_scalar(item_exponent, "item_exponent", lo=0.0)
    n_factors = check_scalar(n_factors, "n_factors", kind="int", lo=1)
    mu = check_scalar(mu, "mu")
    bias_std = check_scalar(bias_std, "bias_std", lo=0.0)
    popularity_bias = check_scalar(popularity_bias, "popularity_bias")
    noise = check_scalar(noise, "noise", lo=0.0)
    if factor_std is None:
        factor_std = (0.3 / n_factors) ** 0.25
    factor_std = check_scalar(factor_std, "factor_std", lo=0.0)
    if star_shares is not None:
        shares = np.asarray(star_shares, dtype=np.float64)
        if shares.ndim != 1 or shares.size < 2 or not np.all(np.isfinite(shares)) or (shares <= 0).any():
            raise ValueError("star_shares must be a 1-D sequence of at least 2 positive shares")
        shares = shares / shares.sum()
    rng = check_random_state(random_state)

    # item weights by popularity rank, ranks assigned to items at random
    x = (np.arange(n_items) + 0.5) / n_items
    w_rank = (-np.log(x)) ** item_exponent
    item_w = np.empty(n_items)
    item_w[rng.permutation(n_items)] = w_rank
    item_w = np.maximum(item_w, 1e-12)
    cap = max(math.ceil(max_user_share * n_items), min_user_ratings, -(-n_ratings // n_users))
    deg = _user_degrees(rng, n_users, n_ratings, min_user_ratings, user_sigma, min(cap, n_items))
    # every item once: its first rating goes to a user drawn by remaining capacity
    reserved_user = np.empty(n_items, dtype=np.int64)
    load = np.zeros(n_users, dtype=np.int64)
    cum_d = np.cumsum(deg.astype(np.float64))
    picks = np.searchsorted(cum_d, rng.random(n_items) * cum_d[-1], side="right")
    for j, uu in enumerate(np.minimum(picks, n_users - 1)):
        while load[uu] >= deg[uu]:                # full: next user (rare)
            uu = (uu + 1) % n_users
        reserved_user[j] = uu
        load[uu] += 1
    order = np.argsort(reserved_user, kind="stable")
    reserved = order.astype(np.int64)
    reserved_ptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(load, out=reserved_ptr[1:])
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(deg, out=offsets[1:])
    items = np.empty(n_ratings, dtype=np.int64)
    seed = int(rng.integers(2**63 - 1))
    _sample_items(deg, offsets, reserved_ptr, reserved, np.cumsum(item_w), np.log(item_w), seed,
                  items)
    users = np.repeat(np.arange(n_users, dtype=np.int64), deg)

    # ratings from a biased low-rank model, cut into stars at fixed quantiles
    bu = rng.normal(0.0, bias_std, n_users)
    lw = np.log(item_w)
    z = (lw - lw.mean()) / (lw.std() or 1.0)
    bi = rng.normal(0.0, bias_std, n_items) + popularity_bias * z
    P = rng.normal(0.0, factor_std, (n_users, n_factors))
    Q = rng.normal(0.0, factor_std, (n_items, n_factors))
    scores = mu + bu[users] + bi[items] + noise * rng.standard_normal(n_ratings)
    step = 1 << 19                                   # chunks: no (n_ratings, n_factors) temporaries
    for a in range(0, n_ratings, step):
        b = min(a + step, n_ratings)
        scores[a:b] += np.einsum("ij,ij->i", P[users[a:b]], Q[items[a:b]])
    if star_shares is None:
        ratings = scores
    else:
        cuts = np.quantile(scores, np.cumsum(shares)[:-1])
        ratings = (np.searchsorted(cuts, scores, side="right") + 1).astype(np.float64)
    if return_truth:
        truth = dict(mu=mu, user_bias=bu, item_bias=bi, P=P, Q=Q, noise=noise, scores=scores)
        return users, items, ratings, truth
    return users, items, ratings
