"""Side-by-side: fastgrad.mf vs scikit-surprise SVD / SVDpp and cornac MF on MovieLens-like data.

Data: :func:`fastgrad.datasets.make_ratings` -- 100,000 ratings of 943 users on
1,682 items with MovieLens-100k's heavy-tailed user activity and item
popularity, 1..5 stars -- split 80/20 at random (the shape of ML-100k's u1
split). With the real files, set ``FASTGRAD_MOVIELENS`` to the ml-100k
directory (its ``u1.base``/``u1.test`` are used) or to any ratings file
(split 80/20).

Every library runs with the same hyper-parameters (Surprise ``SVD`` defaults:
100 factors, 20 epochs, lr 0.005, reg 0.02; ``SVDpp`` defaults: 20 factors,
lr 0.007, reg 0.02), predictions clipped to (1, 5); fastgrad's MF runs with float32 and
float64 parameters (``dtype``). Times are whole fits (id
mapping included, data-set objects of the peers built outside the timing), best
of a few repeats, in this process one after the other. The time per epoch is
(fit time - fixed cost) / n_epochs, where the fixed cost is the best time of a
fit with ``n_epochs=0``. Peers that are not installed are skipped.
"""
import os

import numba
import numpy as np

from fastgrad import mf
from fastgrad.datasets import make_ratings

from ._timing import best_of


def load_data(quick=False, seed=0):
    """``(u_train, i_train, r_train, u_test, i_test, r_test, label)``."""
    path = os.environ.get("FASTGRAD_MOVIELENS")
    if path and not quick:
        from fastgrad.datasets import load_movielens
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "u1.base")):
            a = load_movielens(os.path.join(path, "u1.base"), sep="\t")
            b = load_movielens(os.path.join(path, "u1.test"), sep="\t")
            return a[0], a[1], a[2], b[0], b[1], b[2], "MovieLens-100k u1 split"
        u, i, r, _ = load_movielens(path)
        label = f"MovieLens file {os.path.basename(path)}"
    else:
        shape = (300, 500, 20_000) if quick else (943, 1682, 100_000)
        u, i, r = make_ratings(*shape, random_state=seed)
        label = f"make_ratings{shape}"
    test = np.random.default_rng(seed + 1).random(r.size) < 0.2
    tr = ~test
    return u[tr], i[tr], r[tr], u[test], i[test], r[test], label


def _rmse(pred, r):
    return float(np.sqrt(np.mean((np.clip(pred, 1, 5) - r) ** 2)))


def _cornac(u, i, r, ut, it, rt, n_epochs, nt):
    try:
        import cornac
    except ImportError:
        return None
    train = cornac.data.Dataset.from_uir(list(zip(u.tolist(), i.tolist(), r.tolist())), seed=0)

    def fit():
        m = cornac.models.MF(k=100, max_iter=n_epochs, learning_rate=0.005, lambda_reg=0.02,
                             use_bias=True, num_threads=nt, seed=0, verbose=False)
        return m.fit(train)

    def predict(m):
        umap, imap = train.uid_map, train.iid_map
        uu = np.array([umap.get(x, -1) for x in ut.tolist()])
        ii = np.array([imap.get(x, -1) for x in it.tolist()])
        pred = np.full(rt.size, m.global_mean)
        ku, ki = uu >= 0, ii >= 0
        pred[ku] += m.u_biases[uu[ku]]
        pred[ki] += m.i_biases[ii[ki]]
        both = ku & ki
        pred[both] += np.einsum("ij,ij->i", m.u_factors[uu[both]], m.i_factors[ii[both]])
        return pred

    fit()                                                  # warm-up
    return fit, predict


def run(quick=False):
    rows = []
    u, i, r, ut, it, rt, label = load_data(quick)
    n_train = r.size
    n_epochs = 5 if quick else 20
    reps = 1 if quick else 3
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  data: {label}: {n_train} train / {rt.size} test ratings; load avg {load:.2f} "
          f"on {os.cpu_count()} cpus", flush=True)

    peers = {}
    try:
        import pandas as pd
        import surprise
        reader = surprise.Reader(rating_scale=(1, 5))
        trainset = surprise.Dataset.load_from_df(
            pd.DataFrame({"u": u, "i": i, "r": r}), reader).build_full_trainset()
        testset = list(zip(ut, it, rt))

        def fit_sur():
            algo = surprise.SVD(n_epochs=n_epochs, random_state=0)
            algo.fit(trainset)
            return algo

        t, algo = best_of(fit_sur, reps)
        peers["surprise.SVD (1 thread)"] = (t, surprise.accuracy.rmse(algo.test(testset), verbose=False))
    except ImportError:
        surprise = None

    max_threads = numba.config.NUMBA_NUM_THREADS
    results = {}
    for nt in [t for t in (2, 1) if t <= max_threads]:
        for dtype in ("float32", "float64"):
            def fit_ours(epochs=n_epochs, nt=nt, dtype=dtype):
                return mf.fit(u, i, r, n_epochs=epochs, rating_scale=(1, 5), random_state=0,
                              n_threads=nt, dtype=dtype)
            fit_ours(1)                                                   # compile / load cache
            t_ours, model = best_of(fit_ours, 3 if quick else 7)
            t_fixed, _ = best_of(lambda: fit_ours(0), 3 if quick else 15)
            per_epoch = (t_ours - t_fixed) / n_epochs
            results[nt, dtype] = (t_ours, t_fixed, per_epoch, model.rmse(ut, it, rt),
                                  model.params["n_blocks"])
        c = _cornac(u, i, r, ut, it, rt, n_epochs, nt)
        if c is not None:
            t_c, m_c = best_of(c[0], reps)
            peers[f"cornac.MF bias ({nt} thr)"] = (t_c, _rmse(c[1](m_c), rt))

    for (nt, dtype), (t_ours, t_fixed, per_epoch, rmse, B) in results.items():
        for name, (t_peer, rmse_peer) in peers.items():
            if "cornac" in name and f"({nt} thr)" not in name:
                continue
            rows.append(dict(
                task=f"MF fit {n_train} ratings, 100 factors, {n_epochs} epochs, {nt} thread(s), {dtype}",
                fastgrad_s=t_ours, peer=name, peer_s=t_peer,
                note=(f"test RMSE fastgrad {rmse:.4f} vs peer {rmse_peer:.4f} "
                      f"(diff {rmse - rmse_peer:+.4f}); {per_epoch * 1e3:.2f} ms/epoch; "
                      f"fixed cost {t_fixed * 1e3:.2f} ms/fit; "
                      f"{n_train / per_epoch / 1e6:.1f}M rating updates/s "
                      f"({n_train * n_epochs / t_ours / 1e6:.1f}M/s over the whole fit); B={B}")))
    rows += _svdpp_rows(u, i, r, ut, it, rt, quick, surprise)
    return rows


def _svdpp_rows(u, i, r, ut, it, rt, quick, surprise):
    """SVD++ (20 factors, Surprise SVDpp defaults) against Surprise's SVDpp."""
    if not hasattr(mf, "fit_svdpp"):
        return []
    n_epochs = 3 if quick else 20
    rows = []
    peer = None
    if surprise is not None:
        import pandas as pd
        reader = surprise.Reader(rating_scale=(1, 5))
        trainset = surprise.Dataset.load_from_df(
            pd.DataFrame({"u": u, "i": i, "r": r}), reader).build_full_trainset()
        t0 = __import__("time").perf_counter()
        algo = surprise.SVDpp(n_epochs=n_epochs, random_state=0)
        algo.fit(trainset)
        t_sur = __import__("time").perf_counter() - t0
        peer = (t_sur, surprise.accuracy.rmse(algo.test(list(zip(ut, it, rt))), verbose=False))
    for nt in [t for t in (2, 1) if t <= numba.config.NUMBA_NUM_THREADS]:
        def fit_ours(epochs=n_epochs, nt=nt):
            return mf.fit_svdpp(u, i, r, n_epochs=epochs, rating_scale=(1, 5), random_state=0,
                                n_threads=nt)
        fit_ours(1)
        t_ours, model = best_of(fit_ours, 3 if quick else 5)
        t_fixed, _ = best_of(lambda: fit_ours(0), 3 if quick else 7)
        per_epoch = (t_ours - t_fixed) / n_epochs
        rmse = model.rmse(ut, it, rt)
        if peer is None:
            continue
        rows.append(dict(
            task=f"SVD++ fit {r.size} ratings, 20 factors, {n_epochs} epochs, {nt} thread(s)",
            fastgrad_s=t_ours, peer="surprise.SVDpp (1 thread)", peer_s=peer[0],
            note=(f"test RMSE fastgrad {rmse:.4f} vs peer {peer[1]:.4f} (diff {rmse - peer[1]:+.4f}); "
                  f"{per_epoch * 1e3:.2f} ms/epoch; fixed cost {t_fixed * 1e3:.2f} ms/fit; "
                  f"{r.size / per_epoch / 1e6:.1f}M rating updates/s; B={model.params['n_blocks']}")))
    return rows
