"""Distributed stratified SGD for matrix factorisation (DSGD, Gemulla et al. 2011).

The ratings are cut into a ``B x B`` grid of cells exactly as the single-machine
block-stratified schedule of :func:`fastgrad.mf.fit` cuts them (same
:func:`~fastgrad.kernels.mf_partition`, :func:`~fastgrad.kernels.mf_block_schedule`,
stratum order and per-cell shuffle seeds), and row block ``b`` -- its ``B`` rating
cells, its user factors ``P_b`` and biases ``bu_b`` -- lives on worker ``b`` for the
whole fit. In sub-epoch ``s`` worker ``b`` runs SGD over cell ``(b, (b + s) mod B)``
with the very kernel of the local fit (:func:`~fastgrad.kernels.mf_sgd_epoch_blocked`
restricted to that one cell), so the ``B`` cells of a stratum run on ``B`` different
workers and touch disjoint rows. Only the item-factor blocks ``(Q_j, bi_j)`` travel,
from the worker that used them last to the worker that needs them next; the task graph
of an epoch carries the sub-epoch barrier (each cell task waits for its item block).
Tasks are pinned to their row block's worker (strict restrictions: no work stealing
moves a cell).

Every task is pure (it copies its inputs), so a fit with ``n_blocks=B`` reproduces
the parameters of ``mf.fit(..., n_blocks=B, random_state=s)`` bit for bit (the running
training SSE may differ in the last bit: the local kernel adds the cells' sums in a
vectorised order). After every epoch the client
gathers the parameters (it reports the training objective, validation RMSE and
callbacks exactly as the local fit); that copy is also the checkpoint: if a worker is
lost during an epoch, the client rebuilds the cells' order at the start of that epoch
(replaying the per-cell shuffles), scatters cells and parameters to the workers alive
and reruns the epoch -- with the same seeds, so the result is unchanged. After
``max_retries`` failed attempts it raises :class:`WorkerLostError`.
"""
import operator
import time

import numpy as np

from ._retry import ClientOptions, alive_workers, pickled_size, with_recovery  # noqa: F401

__all__ = ["DSGDTrainer", "make_trainer"]

_SEED_HIGH = 2**63 - 1


def _cell_task(cell, user_block, item_block, c, s, n_blocks, seed, mu, lr, reg, reg_bias):
    """SGD over one rating cell (pure: returns new arrays). Runs on a worker."""
    from distributed import get_worker

    from ..kernels.mf import mf_sgd_epoch_blocked
    from ._objective import _KERNEL_LOCK
    users, items, ratings = (a.copy() for a in cell)
    P, bu = (a.copy() for a in user_block)
    Q, bi = (a.copy() for a in item_block)
    ptr = np.zeros(n_blocks * n_blocks + 1, dtype=np.int64)
    ptr[c + 1:] = ratings.shape[0]      # every other cell is empty: only cell c runs
    with _KERNEL_LOCK:
        sse = mf_sgd_epoch_blocked(users, items, ratings, ptr, n_blocks, np.array([s], dtype=np.int64),
                                   seed, mu, bu, bi, P, Q, lr, reg, reg_bias)
    return (users, items, ratings), (P, bu), (Q, bi), (float(sse), get_worker().address)


class DSGDTrainer:
    """Runs the epochs of :func:`fastgrad.mf.fit` on the workers of a Dask client.

    Same interface as ``fastgrad.mf._Trainer``: ``epoch(mu, bu, bi, P, Q, lr, reg,
    reg_bias)`` updates the client's arrays in place and returns the running SSE.

    Attributes
    ----------
    n_blocks : int
        ``B``.
    placement : list of (epoch, stratum, row_block, cell, worker_address)
        Where every cell task ran.
    stats : dict
        Per-epoch lists ``seconds``, ``bytes_between_workers`` (item blocks moved),
        ``bytes_to_client`` (gathered parameters), ``bytes_from_client`` (scattered
        cells and parameters), and ``recoveries`` (count).
    """

    def __init__(self, client, users, items, ratings, n_users, n_items, rng, n_blocks=None,
                 max_retries=2, stats=None, shuffle="epoch"):
        from ..kernels.mf import mf_block_schedule, mf_partition
        self.client = client
        self.reshuffle = shuffle == "epoch"       # "once": only the first epoch shuffles its cells
        self.rng = rng
        self.max_retries = max_retries
        self.workers = workers = self._workers()
        B = max(2, len(workers)) if n_blocks is None else int(n_blocks)
        if B < 2:
            raise ValueError("n_blocks must be >= 2 for a distributed fit (1 block is the serial schedule)")
        self.n_blocks = B
        # the local fit's partition and schedule, drawn from the same generator in the same order
        cu = np.bincount(users, minlength=n_users)
        ci = np.bincount(items, minlength=n_items)
        user_block = mf_partition(cu, B, rng.permutation(n_users))
        item_block = mf_partition(ci, B, rng.permutation(n_items))
        self.block_ptr, perm = mf_block_schedule(users, items, user_block, item_block, B)
        self.user_rows = [np.flatnonzero(user_block == b) for b in range(B)]
        self.item_rows = [np.flatnonzero(item_block == j) for j in range(B)]
        local_u = _local_index(user_block, n_users)
        local_i = _local_index(item_block, n_items)
        # client-side copy of the cells in their initial order: the base of a recovery
        self._cells0 = (local_u[users[perm]].astype(np.int32), local_i[items[perm]].astype(np.int32),
                        ratings[perm].copy())
        self._seeds = []                 # per finished epoch: its shuffle seed (for replay)
        self.placement = []
        self.stats = {} if stats is None else stats
        self.stats.update(n_blocks=B, n_workers=len(workers), recoveries=0, seconds=[],
                          bytes_between_workers=[], bytes_to_client=[], bytes_from_client=[])
        self.cell_futs = self._user_futs = self._item_futs = None     # scattered by the first epoch

    # ------------------------------------------------------------------ placement
    def _workers(self):
        return alive_workers(self.client)

    def _owner(self, b):
        return self.workers[b % len(self.workers)]

    def _scatter_cells(self):
        """Scatter cell (b, j), in its order at the start of this epoch, to the worker of row
        block b (one cell at a time: small transient memory); returns the bytes sent."""
        from ..kernels.mf import mf_shuffle_blocks
        self.workers = self._workers()
        B = self.n_blocks
        u, i, r = self._cells0
        if self._seeds:                    # replay the in-place per-cell shuffles of the finished epochs
            u, i, r = u.copy(), i.copy(), r.copy()
            for seed in self._seeds:
                if seed >= 0:
                    mf_shuffle_blocks(u, i, r, self.block_ptr, seed)
        self.cell_futs = [None] * (B * B)
        sent = 0
        for c in range(B * B):
            lo, hi = self.block_ptr[c], self.block_ptr[c + 1]
            cell = (u[lo:hi], i[lo:hi], r[lo:hi])
            sent += pickled_size(cell)
            [self.cell_futs[c]] = self.client.scatter([cell], workers=[self._owner(c // B)], hash=False)
        return sent

    def _scatter_params(self, bu, bi, P, Q, first_stratum):
        """User blocks to their owners; item block j to the worker that uses it first."""
        B = self.n_blocks
        sent = 0
        self._user_futs, self._item_futs = [None] * B, [None] * B
        for b in range(B):
            rows = self.user_rows[b]
            blk = (P[rows], bu[rows])
            sent += pickled_size(blk)
            [self._user_futs[b]] = self.client.scatter([blk], workers=[self._owner(b)], hash=False)
        for j in range(B):
            rows = self.item_rows[j]
            blk = (Q[rows], bi[rows])
            sent += pickled_size(blk)
            first = (j - first_stratum) % B          # worker b runs item block (b + s) mod B
            [self._item_futs[j]] = self.client.scatter([blk], workers=[self._owner(first)], hash=False)
        return sent

    # ------------------------------------------------------------------ epochs
    def epoch(self, mu, bu, bi, P, Q, lr, reg, reg_bias):
        """One DSGD epoch on the workers; updates ``bu, bi, P, Q`` in place; returns the SSE."""
        seed = int(self.rng.integers(_SEED_HIGH))        # the local fit's draws, same order
        if self._seeds and not self.reshuffle:
            seed = -1                                    # keep the cells' order
        strata = self.rng.permutation(self.n_blocks)
        t0 = time.perf_counter()
        sse, moved, gathered, sent = with_recovery(
            self.client, lambda: self._try_epoch(seed, strata, mu, bu, bi, P, Q, lr, reg, reg_bias),
            self._recover, self.max_retries, f"mf DSGD epoch {len(self._seeds) + 1}", self.stats,
            len(self.workers))
        self._seeds.append(seed)
        self.stats["seconds"].append(time.perf_counter() - t0)
        self.stats["bytes_between_workers"].append(moved)
        self.stats["bytes_to_client"].append(gathered)
        self.stats["bytes_from_client"].append(sent)
        return sse

    def _try_epoch(self, seed, strata, mu, bu, bi, P, Q, lr, reg, reg_bias):
        client, B = self.client, self.n_blocks
        sent = 0
        if self.cell_futs is None:
            sent += self._scatter_cells()
        if self._user_futs is None:
            sent += self._scatter_params(bu, bi, P, Q, int(strata[0]))
        # the lists are updated in place: an old cell is freed as soon as its task has run
        # (a failed epoch is rerun from the client's checkpoint, never from these futures)
        cells, users, items = self.cell_futs, self._user_futs, self._item_futs
        info_futs, order = [None] * (B * B), []
        for s in strata:
            s = int(s)
            for b in range(B):
                j = (b + s) % B
                c = b * B + j
                out = client.submit(_cell_task, cells[c], users[b], items[j], c, s, B, seed, mu, lr, reg,
                                    reg_bias, workers=[self._owner(b)], allow_other_workers=False, pure=False)
                parts = [client.submit(operator.getitem, out, k, workers=[self._owner(b)],
                                       allow_other_workers=False, pure=False) for k in range(4)]
                cells[c], users[b], items[j], info_futs[c] = parts
                order.append((s, b, c, j))
        results = client.gather(users + items + info_futs)
        # success: write the parameters back into the client's arrays (the checkpoint)
        gathered = 0
        for b in range(B):
            Pb, bub = results[b]
            P[self.user_rows[b]], bu[self.user_rows[b]] = Pb, bub
            gathered += pickled_size(results[b])
        for j in range(B):
            Qj, bij = results[B + j]
            Q[self.item_rows[j]], bi[self.item_rows[j]] = Qj, bij
            gathered += pickled_size(results[B + j])
        info = results[2 * B:]
        sse = 0.0
        for c in range(B * B):            # the local kernel's order: cell by cell
            sse += info[c][0]
        # item block j moved whenever the worker using it is not the one that used it before
        holder = {j: self._owner((j - int(strata[0])) % B) for j in range(B)}
        moved = 0
        epoch = len(self._seeds) + 1
        for s, b, c, j in order:
            addr = info[c][1]
            self.placement.append((epoch, s, b, c, addr))
            if holder[j] != addr:
                moved += pickled_size((Q[self.item_rows[j]], bi[self.item_rows[j]]))
            holder[j] = addr
        return sse, moved, gathered, sent

    def _recover(self):
        """Forget the state on the cluster: the next attempt scatters the cells (as they were at
        the start of this epoch) and the parameters (the client's checkpoint) afresh."""
        self.cell_futs = self._user_futs = self._item_futs = None

    def close(self):
        """Release every future held on the cluster."""
        self.cell_futs = self._user_futs = self._item_futs = None


def _local_index(block, m):
    """Position of every row within its block (rows in increasing order)."""
    out = np.empty(m, dtype=np.int64)
    for b in np.unique(block):
        rows = np.flatnonzero(block == b)
        out[rows] = np.arange(rows.size)
    return out


def make_trainer(client, users, items, ratings, n_users, n_items, rng, n_blocks, shuffle="epoch"):
    """Hook used by :func:`fastgrad.mf.fit` when it is given a ``client``."""
    opts = client if isinstance(client, ClientOptions) else ClientOptions(client, None, 2)
    from ._setup import check_client, get_client
    client = get_client(opts.client)
    check_client(client)
    return DSGDTrainer(client, users, items, ratings, n_users, n_items, rng, n_blocks,
                       max_retries=opts.max_retries, stats=opts.stats, shuffle=shuffle)
