"""Side-by-side: fastgrad.mf vs scikit-surprise SVD on MovieLens-100k-shaped ratings.

100,000 simulated ratings (943 users, 1,682 items, integer stars 1..5), a 90/10
split, defaults of both libraries (100 factors, 20 epochs, lr 0.005, reg 0.02),
predictions clipped to (1, 5) as Surprise does. Times are whole fits (id mapping
included), best of a few repeats, measured in this process one after the other.
The time per epoch is (fit time - fixed cost) / n_epochs, where the fixed cost is
the best time of a fit with ``n_epochs=0`` (no callback: a callback would copy the
parameters out of the working frame after every epoch).
"""
import os

import numba
import numpy as np

from fastgrad import mf

from ._timing import best_of


def _data(n_ratings, n_users, n_items, seed=0):
    u, i, r, _ = mf.simulate(n_users, n_items, n_ratings, n_factors=10, noise=0.8, random_state=seed)
    r = np.clip(np.round(r), 1, 5)
    test = np.random.default_rng(seed + 1).random(r.size) < 0.1
    return u, i, r, test


def run(quick=False):
    import pandas as pd
    import surprise

    n_ratings, n_users, n_items, n_epochs = (20_000, 300, 500, 5) if quick else (100_000, 943, 1682, 20)
    u, i, r, test = _data(n_ratings, n_users, n_items)
    tr, te = ~test, test
    n_train = int(tr.sum())

    reader = surprise.Reader(rating_scale=(1, 5))
    trainset = surprise.Dataset.load_from_df(
        pd.DataFrame({"u": u[tr], "i": i[tr], "r": r[tr]}), reader).build_full_trainset()
    testset = list(zip(u[te], i[te], r[te]))

    def fit_surprise():
        algo = surprise.SVD(n_epochs=n_epochs, random_state=0)
        algo.fit(trainset)
        return algo

    t_sur, algo = best_of(fit_surprise, 1 if quick else 2)
    rmse_sur = surprise.accuracy.rmse(algo.test(testset), verbose=False)

    rows = []
    max_threads = numba.config.NUMBA_NUM_THREADS
    for nt in [t for t in (2, 1) if t <= max_threads]:
        def fit_ours(epochs=n_epochs):
            return mf.fit(u[tr], i[tr], r[tr], n_epochs=epochs, rating_scale=(1, 5),
                          random_state=0, n_threads=nt)
        fit_ours(1)                                                       # compile / load cache
        t_ours, model = best_of(fit_ours, 3 if quick else 7)
        # fixed cost = a fit without epochs (ids, initialisation, schedule, final objective);
        # one epoch = the rest divided by n_epochs (SGD sweep + the fit loop's bookkeeping)
        t_fixed, _ = best_of(lambda: fit_ours(0), 3 if quick else 15)
        per_epoch = (t_ours - t_fixed) / n_epochs
        rmse_ours = model.rmse(u[te], i[te], r[te])
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        rows.append(dict(
            task=f"MF fit {n_train} ratings, 100 factors, {n_epochs} epochs, {nt} thread(s)",
            fastgrad_s=t_ours, peer="surprise.SVD (1 thread)", peer_s=t_sur,
            note=(f"RMSE fastgrad {rmse_ours:.4f} vs surprise {rmse_sur:.4f} "
                  f"(diff {rmse_ours - rmse_sur:+.4f}); {per_epoch * 1e3:.2f} ms/epoch; "
                  f"fixed cost {t_fixed * 1e3:.2f} ms/fit; "
                  f"{n_train / per_epoch / 1e6:.1f}M rating updates/s; "
                  f"B={model.params['n_blocks']}; load avg {load:.2f} on {os.cpu_count()} cpus")))
    return rows
