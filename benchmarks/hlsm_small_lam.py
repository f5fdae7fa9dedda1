"""HLSM fits at small ``lam`` (many non-zero deviations): the smoothed L-BFGS rounds against
proximal gradient alone, as ``hlsm.fit`` ran before them.

With more than ``SolverOptions.max_active_share`` of the groups ``eps_ik`` non-zero, the
L-BFGS rounds on the non-zero groups are off (that problem is badly conditioned), and
``hlsm.fit`` used to go on by proximal gradient alone, which often stopped at ``max_iter``
unconverged. It now runs L-BFGS rounds on the Huber-smoothed penalty once proximal gradient
has not converged within ``prox_iter_many_active`` iterations. ``before`` is the fit with
``prox_iter_many_active=10**9`` (proximal gradient alone, iteration for iteration as before).

Per network, dim and lam, in one process: seconds of the fit on all pairs, iterations,
converged or not (NC), the objective, and the held-out AUC and log-loss of a fit on 90% of
the pairs (``hlsm.holdout_pairs``, seed 0) scored on the other 10%.

Run::

    python benchmarks/hlsm_small_lam.py
    python benchmarks/hlsm_small_lam.py florentine --dims 2 --lams 0.3 1
"""
import argparse
import time
import warnings

from fastgrad import datasets, hlsm

VARIANTS = {"before": {"prox_iter_many_active": 10 ** 9}, "after": None}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="*", default=["aucs", "florentine"])
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--lams", type=float, nargs="+", default=[0.3, 1.0, 3.0])
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")  # the unconverged fits of "before" warn
    hlsm.fit(datasets.load_aucs(), 10.0, random_state=0)  # load the compiled kernels
    print(f"{'fit':<28}{'variant':<8}{'seconds':>8}{'iter':>6}{'':>4}{'objective':>12}"
          f"{'held-out AUC':>14}{'log-loss':>10}")
    for name in args.networks:
        data = datasets.load_dataset(name)
        Y_train, test = hlsm.holdout_pairs(data.Y, 0.1, directed=data.directed, random_state=0)
        for dim in args.dims:
            for lam in args.lams:
                for variant, opts in VARIANTS.items():
                    kw = dict(dim=dim, directed=data.directed, random_state=0, solver_options=opts)
                    t = time.perf_counter()
                    r = hlsm.fit(data.Y, lam, **kw)
                    sec = time.perf_counter() - t
                    score = hlsm.score_pairs(hlsm.fit(Y_train, lam, **kw), test)
                    print(f"{f'{name} dim={dim} lam={lam:g}':<28}{variant:<8}{sec:8.2f}{r.n_iter:6d}"
                          f"{'' if r.converged else 'NC':>4}{r.objective:12.4f}{score['auc']:14.4f}"
                          f"{score['log_loss']:10.4f}", flush=True)


if __name__ == "__main__":
    main()
