"""asv benchmarks for biased matrix factorisation (kernels compiled in ``setup``)."""
import numba
import numpy as np

from fastgrad import mf
from fastgrad.datasets import make_ratings
from fastgrad.mf._model import default_n_blocks
from fastgrad.kernels import (mf_block_layout, mf_error_sums, mf_normal_rows, mf_partition,
                              mf_sgd_epoch, mf_sgd_epoch_blocked, mf_shuffle, mf_shuffle_blocks)


def _data(n_ratings=100_000, n_users=943, n_items=1682, seed=0):
    """MovieLens-100k-shaped ratings: heavy-tailed user activity and item popularity, 1..5 stars."""
    u, i, r = make_ratings(n_users, n_items, n_ratings, random_state=seed)
    perm = np.random.default_rng(seed).permutation(r.size)     # make_ratings orders by user
    return u[perm].astype(np.int32), i[perm].astype(np.int32), r[perm]


class _ThreadsParam:
    params = ([1, 2],)
    param_names = ["n_threads"]
    timeout = 60

    def setup(self, n_threads):
        if n_threads > numba.config.NUMBA_NUM_THREADS:
            raise NotImplementedError("not enough threads")


class MFEpoch(_ThreadsParam):
    """One SGD epoch over 100,000 MovieLens-100k-shaped (heavy-tailed) ratings, 100 factors."""

    def setup(self, n_threads):
        super().setup(n_threads)
        self.u, self.i, self.r = _data()
        nu, ni, k = 943, 1682, 100
        rng = np.random.default_rng(0)
        self.P = rng.normal(0, 0.1, (nu, k))
        self.Q = rng.normal(0, 0.1, (ni, k))
        self.bu, self.bi = np.zeros(nu), np.zeros(ni)
        self.P_init, self.Q_init = np.empty_like(self.P), np.empty_like(self.Q)
        self.mu = float(self.r.mean())
        self.B = default_n_blocks(n_threads)
        ub = mf_partition(np.bincount(self.u, minlength=nu), self.B, rng.permutation(nu))
        ib = mf_partition(np.bincount(self.i, minlength=ni), self.B, rng.permutation(ni))
        # as mf.fit: cells on rows relabelled block by block, parameters in that frame
        self.ptr, self.ub, self.ib, self.rb, uo, io, _, _ = mf_block_layout(self.u, self.i, self.r, ub, ib,
                                                                           self.B)
        self.bu_b, self.bi_b, self.P_b, self.Q_b = self.bu[uo], self.bi[io], self.P[uo], self.Q[io]
        self.strata = np.arange(self.B)
        numba.set_num_threads(n_threads)
        self.n_threads = n_threads
        # compile everything outside the timings
        mf_shuffle(self.u, self.i, self.r, 0)
        mf_shuffle_blocks(self.ub, self.ib, self.rb, self.ptr, 0)
        self.time_epoch(n_threads)
        self.time_init_factors(n_threads)
        mf_error_sums(self.u, self.i, self.r, self.mu, self.bu, self.bi, self.P, self.Q, 1.0, 5.0)

    def teardown(self, n_threads):
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    def time_epoch(self, n_threads):
        if n_threads == 1:
            mf_sgd_epoch(self.u, self.i, self.r, self.mu, self.bu, self.bi, self.P, self.Q,
                         0.005, 0.02, 0.02)
        else:
            mf_sgd_epoch_blocked(self.ub, self.ib, self.rb, self.ptr, self.B, self.strata, -1, self.mu,
                                 self.bu_b, self.bi_b, self.P_b, self.Q_b, 0.005, 0.02, 0.02)

    def time_init_factors(self, n_threads):
        mf_normal_rows(self.P_init, 0, 0, 0.0, 0.1)
        mf_normal_rows(self.Q_init, 0, self.P_init.shape[0], 0.0, 0.1)

    def time_rmse(self, n_threads):
        mf_error_sums(self.u, self.i, self.r, self.mu, self.bu, self.bi, self.P, self.Q, 1.0, 5.0)


class MFFit(_ThreadsParam):
    """Full ``mf.fit`` (defaults: 100 factors) on 20,000 ratings, 5 epochs, and prediction."""

    def setup(self, n_threads):
        super().setup(n_threads)
        self.u, self.i, self.r = _data(20_000, 300, 500)
        self.model = mf.fit(self.u, self.i, self.r, n_epochs=1, n_threads=n_threads, random_state=0)
        self.model.predict(self.u, self.i)

    def time_fit(self, n_threads):
        mf.fit(self.u, self.i, self.r, n_epochs=5, n_threads=n_threads, random_state=0)

    def time_fit_fixed_cost(self, n_threads):
        """A fit without epochs: id mapping, initialisation, schedule, final objective."""
        mf.fit(self.u, self.i, self.r, n_epochs=0, n_threads=n_threads, random_state=0)

    def time_predict(self, n_threads):
        self.model.predict(self.u, self.i)

    def track_rmse_after_fit(self, n_threads):
        m = mf.fit(self.u, self.i, self.r, n_epochs=5, n_threads=n_threads, random_state=0)
        return m.rmse(self.u, self.i, self.r)


class MFFitML100k:
    """Whole ``mf.fit`` on 80,000 ML-100k-shaped ratings (100 factors, 20 epochs), float64 and float32."""

    params = ([1, 2], ["float64", "float32"])
    param_names = ["n_threads", "dtype"]
    timeout = 120

    def setup(self, n_threads, dtype):
        if n_threads > numba.config.NUMBA_NUM_THREADS:
            raise NotImplementedError("not enough threads")
        u, i, r = _data()
        keep = np.random.default_rng(1).random(r.size) >= 0.2
        self.u, self.i, self.r = u[keep], i[keep], r[keep]
        mf.fit(self.u, self.i, self.r, n_epochs=1, n_threads=n_threads, random_state=0, dtype=dtype)

    def time_fit(self, n_threads, dtype):
        mf.fit(self.u, self.i, self.r, n_threads=n_threads, random_state=0, dtype=dtype)

    def time_fit_fixed_cost(self, n_threads, dtype):
        mf.fit(self.u, self.i, self.r, n_epochs=0, n_threads=n_threads, random_state=0, dtype=dtype)
