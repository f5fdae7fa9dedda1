"""Held-out link prediction on the bundled multiplex networks: fastgrad's HLSM against MultiNeSS.

Protocol (issue 12): hide 10% of the pairs of every layer (stratified by tie / non-tie,
``hlsm.holdout_pairs``), fit on the rest, score the hidden pairs (AUC per layer, averaged;
log-loss), over 3 repeats. Printed side by side, in one run, with the seconds per fit
(mean and min over the repeats; the first repeat of a process includes loading compiled kernels):

- ``fit_cv``: ``hlsm.fit_cv`` with its defaults (dims, lam grid, 3 folds, sociality
  effects per layer, the prior ``position_ridge=2`` on the shared positions); the time is
  the whole cross-validation plus the refit;
- ``shared``: the shared model (``lam >= lam_max``) at fit_cv's selected dim, with
  fit_cv's position ridge (the extreme of the same model);
- ``independent``: ``lam = 0`` (independent layers) at the same dim and ridge;
- ``no sociality``: ``fit_cv(..., sociality=None)``, the model without node effects;
- ``MultiNeSS``: R package multiness (logistic, adaptive tuning, refit), when ``Rscript``
  with multiness is installed; data go through a temporary binary file (column-major).
  MultiNeSS is undirected only: on a directed network (krackhardt) it is skipped.

Run::

    python benchmarks/hlsm_linkpred.py                 # all networks, 3 repeats
    python benchmarks/hlsm_linkpred.py aucs --repeats 1
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from fastgrad import datasets, hlsm

NETWORKS = ("aucs", "florentine", "krackhardt")

R_SCRIPT = r"""
suppressMessages(library(multiness))
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2]); K <- as.integer(args[3])
A <- array(readBin(args[1], "double", n * n * K), dim = c(n, n, K))
obs <- !is.na(A); A[!obs] <- 0
t0 <- proc.time()[["elapsed"]]
fit <- multiness_fit(A, model = "logistic", self_loops = FALSE, refit = TRUE,
                     tuning = "adaptive", tuning_opts = list(layer_wise = TRUE),
                     optim_opts = list(K_max = 200, missing_pattern = obs))
el <- proc.time()[["elapsed"]] - t0
P <- array(0, dim = c(n, n, K))
for (k in 1:K) P[, , k] <- 1 / (1 + exp(-(fit$F_hat + fit$G_hat[[k]])))
writeBin(as.vector(P), args[4])
cat(el, "\n")
"""


def multiness_available():
    if shutil.which("Rscript") is None:
        return False
    r = subprocess.run(["Rscript", "-e", "suppressMessages(library(multiness))"], capture_output=True)
    return r.returncode == 0


def multiness_fit(Y_train):
    """MultiNeSS link probabilities (K, n, n) of a float (K, n, n) array with NaN held out, and its seconds."""
    K, n, _ = Y_train.shape
    with tempfile.TemporaryDirectory() as tmp:
        src, out, script = (os.path.join(tmp, f) for f in ("A.bin", "P.bin", "fit.R"))
        # R's array(, dim=c(n, n, K)) is column-major: A[i, j, k] at i + n j + n^2 k
        np.asfortranarray(Y_train.transpose(1, 2, 0)).ravel(order="F").astype(np.float64).tofile(src)
        with open(script, "w") as fh:
            fh.write(R_SCRIPT)
        t0 = time.perf_counter()
        r = subprocess.run(["Rscript", script, src, str(n), str(K), out], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise RuntimeError(f"MultiNeSS failed: {r.stderr[-500:]}")
        P = np.fromfile(out, dtype=np.float64).reshape((n, n, K), order="F").transpose(2, 0, 1)
        fit_s = float(r.stdout.split()[-1])
    return np.ascontiguousarray(P), fit_s, wall


def run_network(name, repeats, have_r, dims=None):
    data = datasets.load_dataset(name)
    Y = data.Y
    rows = {m: [] for m in ("fit_cv", "shared", "independent", "no sociality", "MultiNeSS")}
    sel = []
    cv_kw = {} if dims is None else {"dims": dims}
    for rep in range(repeats):
        Y_train, test = hlsm.holdout_pairs(Y, 0.1, directed=data.directed, random_state=rep)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            cv = hlsm.fit_cv(Y_train, directed=data.directed, random_state=rep, **cv_kw)
            rows["fit_cv"].append((hlsm.score_pairs(cv.best, test), time.perf_counter() - t0))
            sel.append((cv.dim, cv.lam_ratio, cv.n_fits))
            t0 = time.perf_counter()
            ridge = hlsm.fit_cv.__kwdefaults__["position_ridge"]  # fit_cv's default prior
            _, shared = hlsm.lam_max(Y_train, dim=cv.dim, directed=data.directed, random_state=rep,
                                     position_ridge=ridge)
            rows["shared"].append((hlsm.score_pairs(shared, test), time.perf_counter() - t0))
            t0 = time.perf_counter()
            ind = hlsm.fit(Y_train, 0.0, dim=cv.dim, directed=data.directed, random_state=rep,
                           position_ridge=ridge)
            rows["independent"].append((hlsm.score_pairs(ind, test), time.perf_counter() - t0))
            t0 = time.perf_counter()
            cv0 = hlsm.fit_cv(Y_train, directed=data.directed, random_state=rep, sociality=None, **cv_kw)
            rows["no sociality"].append((hlsm.score_pairs(cv0.best, test), time.perf_counter() - t0))
        if have_r and not data.directed:
            P, fit_s, _ = multiness_fit(Y_train)
            rows["MultiNeSS"].append((hlsm.score_pairs(P, test), fit_s))
    return data, rows, sel


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="*", default=list(NETWORKS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dims", default=None, help="comma-separated dims for fit_cv (default: its default)")
    args = ap.parse_args(argv)
    dims = tuple(int(t) for t in args.dims.split(",")) if args.dims else None
    have_r = multiness_available()
    if not have_r:
        print("MultiNeSS: skipped (Rscript with the multiness package not found)")
    print(f"load: {os.getloadavg()[0]:.2f}; held-out 10% of the pairs of every layer, {args.repeats} repeat(s)")
    print(f"{'network':<11s} {'model':<13s} {'AUC':>15s} {'log-loss':>15s} {'seconds':>9s} {'min s':>6s}  note")
    for name in args.networks:
        data, rows, sel = run_network(name, args.repeats, have_r, dims)
        for model, res in rows.items():
            if not res:
                print(f"{name:<11s} {model:<13s} {'skipped':>15s}  "
                      f"{'(undirected only; ' + name + ' is directed)' if data.directed else ''}")
                continue
            auc = np.array([r[0]["auc"] for r in res])
            ll = np.array([r[0]["log_loss"] for r in res])
            sec = np.array([r[1] for r in res])
            note = ""
            if model == "fit_cv":
                note = "selected (dim, lam/lam_max, fits): " + ", ".join(f"({d}, {q:.2g}, {m})" for d, q, m in sel)
            if model in ("shared", "independent"):
                note = "at fit_cv's dim"
            if model == "MultiNeSS":
                note = "time of multiness_fit in R (tuning + fit)"
            print(f"{name:<11s} {model:<13s} {auc.mean():7.4f}±{auc.std():.4f} {ll.mean():7.4f}±{ll.std():.4f} "
                  f"{sec.mean():9.2f} {sec.min():6.2f}  {note}", flush=True)
        if rows["MultiNeSS"]:
            r = np.min([x[1] for x in rows["fit_cv"]]) / np.min([x[1] for x in rows["MultiNeSS"]])
            d = np.mean([x[0]["auc"] for x in rows["fit_cv"]]) - np.mean([x[0]["auc"] for x in rows["MultiNeSS"]])
            print(f"{name:<11s} fit_cv - MultiNeSS: AUC {d:+.4f}; time ratio fit_cv / one MultiNeSS fit {r:.2f} (min over repeats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
