"""Tuning of the staged HLSM solver: :class:`SolverOptions`."""
import dataclasses
from dataclasses import dataclass

import numpy as np

__all__ = ["SolverOptions", "as_options"]


@dataclass(frozen=True)
class SolverOptions:
    """Tuning of the solver of :func:`fastgrad.hlsm.fit` (``solver_options=``).

    The defaults are the measured choices; change them to compare variants or
    to trade accuracy for speed. Pass a ``SolverOptions`` or a dict of its
    fields: ``hlsm.fit(Y, lam, solver_options={"node_precondition": False})``.

    Parameters
    ----------
    quasi_newton : bool, default=True
        L-BFGS rounds alternating with proximal gradient (which applies the
        stopping rule, so the optimum is the same): on the whole problem at
        ``lam == 0``; for ``lam > 0`` on the problem restricted to the non-zero
        groups while they are few (``max_active_share``), and with more (some
        small, where that problem is badly conditioned) on the Huber-smoothed
        penalty once proximal gradient alone has not converged within
        ``prox_iter_many_active`` iterations (small ``lam``: proximal gradient
        alone often stopped at ``max_iter`` there). Not used after a multilevel
        start (see ``smooth_stage``), with a ``callback`` or on a Dask client,
        nor by the fits of ``fit_cv`` unless it is given ``solver_options`` (its
        held-out scores were better without).
    qn_tol, qn_max_iter : float, int
        Stopping rule of each L-BFGS round (at least ``1e-3 * tol`` and at most ``max_iter``
        of the fit: a loose fit does not pay for a tight quasi-Newton stage).
    prox_iter_per_round, max_rounds : int
        Proximal-gradient iterations between L-BFGS rounds, and the number of rounds.
    max_active_share : float
        L-BFGS rounds on the non-zero groups only while at most this share of the
        groups ``eps_ik`` is non-zero.
    prox_iter_many_active : int, default=1000
        With more non-zero groups, proximal gradient runs this many iterations alone
        before the first L-BFGS round on the smoothed penalty (width ``smooth_mu``,
        ten times narrower in each later round).
    node_precondition : bool, default=True
        Per-node diagonal preconditioning from degrees (see ``node_smooth``).
    node_smooth : float, default=0.05
        ``c_k = node_smooth * (mean degree + 1)`` added to the degrees of the
        per-node preconditioner (keeps isolated nodes finite).
    multilevel_min_n : int, default=4000
        ``init="auto"`` uses the multilevel start from this many nodes (else MDS).
    multilevel_degree : float, default=30
        Expected ties (summed over layers) of a sampled node within the sample.
    multilevel_max_fraction : float, default=0.5
        The sample is at most this fraction of the nodes (else the start is MDS).
    sample_tol, sample_max_iter : float, int
        Stopping rule of the fit of the sample (a start only).
    shared_tol, shared_max_iter : float, int
        Stopping rule of the shared-configuration L-BFGS on all nodes after a multilevel start.
    smooth_stage : bool, default=True
        Multilevel fits with ``lam > 0``: L-BFGS on the Huber-smoothed penalty
        (width ``smooth_mu``) before proximal gradient.
    smooth_mu, smooth_tol, smooth_max_iter : float, float, int
    stage_dtype : numpy.float32 or numpy.float64, default=numpy.float32
        Precision of the pass over all pairs in the L-BFGS stages (proximal
        gradient is always float64).
    """

    quasi_newton: bool = True
    qn_tol: float = 1e-11
    qn_max_iter: int = 2000
    prox_iter_per_round: int = 30
    max_rounds: int = 6
    max_active_share: float = 0.1
    prox_iter_many_active: int = 1000
    node_precondition: bool = True
    node_smooth: float = 0.05
    multilevel_min_n: int = 4000
    multilevel_degree: float = 30.0
    multilevel_max_fraction: float = 0.5
    sample_tol: float = 1e-9
    sample_max_iter: int = 3000
    shared_tol: float = 1e-9
    shared_max_iter: int = 500
    smooth_stage: bool = True
    smooth_mu: float = 1e-2
    smooth_tol: float = 1e-7
    smooth_max_iter: int = 1000
    stage_dtype: type = np.float32

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type is bool:
                if not isinstance(v, (bool, np.bool_)):
                    raise TypeError(f"solver_options: {f.name} must be a bool, got {v!r}")
            elif f.type is int:
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                    raise ValueError(f"solver_options: {f.name} must be a positive integer, got {v!r}")
            elif f.type is float:
                if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) \
                        or not np.isfinite(v) or v < 0:
                    raise ValueError(f"solver_options: {f.name} must be a finite number >= 0, got {v!r}")
        if np.dtype(self.stage_dtype) not in (np.float32, np.float64):
            raise ValueError(f"solver_options: stage_dtype must be numpy.float32 or numpy.float64, "
                             f"got {self.stage_dtype!r}")


def as_options(options):
    """``solver_options`` of :func:`fastgrad.hlsm.fit` as a :class:`SolverOptions`."""
    if options is None:
        return SolverOptions()
    if isinstance(options, SolverOptions):
        return options
    if isinstance(options, dict):
        names = {f.name for f in dataclasses.fields(SolverOptions)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ValueError(f"solver_options: unknown option(s) {unknown}; known: {sorted(names)}")
        return SolverOptions(**options)
    raise TypeError(f"solver_options must be a dict or a fastgrad.hlsm.SolverOptions, "
                    f"got {type(options).__name__}")
