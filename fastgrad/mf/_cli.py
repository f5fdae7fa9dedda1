"""``python -m fastgrad mf RATINGS_FILE [--model svd|svdpp]``: train a biased MF or SVD++, report held-out RMSE per epoch, save it."""
import math
import os
import sys
import time

import numpy as np


def add_parser(subparsers):
    p = subparsers.add_parser(
        "mf", help="biased matrix factorisation or SVD++ of a ratings file (MovieLens formats)",
        description="Train a biased matrix factorisation by SGD on a ratings file "
                    "(user item rating [timestamp]; tab, '::', comma or whitespace separated), "
                    "(or SVD++ with --model svdpp), report the held-out RMSE after every epoch and save the model (.npz).")
    p.add_argument("ratings_file", metavar="RATINGS_FILE", help="ratings file or MovieLens directory")
    p.add_argument("--sep", default="auto", help="field separator (default: auto-detect)")
    p.add_argument("--test-size", type=float, default=0.1, help="held-out fraction (default 0.1)")
    p.add_argument("--model", choices=("svd", "svdpp"), default="svd",
                   help="svd: biased MF (mf.fit); svdpp: SVD++ with implicit feedback (mf.fit_svdpp)")
    p.add_argument("--n-factors", type=int, default=None, help="default 100 (svd), 20 (svdpp)")
    p.add_argument("--n-epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=None, help="default 0.005 (svd), 0.007 (svdpp)")
    p.add_argument("--reg", type=float, default=0.02)
    p.add_argument("--reg-bias", type=float, default=0.02)
    p.add_argument("--lr-decay", type=float, default=1.0)
    p.add_argument("--early-stopping", action="store_true", help="stop when held-out RMSE stalls")
    p.add_argument("--rating-scale", default="auto",
                   help="'auto' (min,max of the data), 'none', or 'LO,HI' (default auto)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="storage of the factors and biases (--model svd; default float64)")
    p.add_argument("--threads", type=int, default=None, help="threads (default: numba's)")
    p.add_argument("--seed", type=int, default=0, help="random seed (split, init, shuffles)")
    p.add_argument("--out", default=".", help="output directory for mf_model.npz (default .)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch output")
    return p


def _rating_scale(spec, ratings):
    if spec == "auto":
        return float(ratings.min()), float(ratings.max())
    if spec == "none":
        return None
    try:
        lo, hi = (float(x) for x in spec.split(","))
    except ValueError:
        raise ValueError(f"--rating-scale must be 'auto', 'none' or 'LO,HI', got {spec!r}") from None
    return lo, hi


class _Reporter:
    """Per-epoch lines under a tqdm bar (plain lines without tqdm)."""

    def __init__(self, total, quiet):
        self.quiet = quiet
        self.bar = None
        self.t0 = time.perf_counter()
        self.stamps = [self.t0]
        if not quiet:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc="mf", unit="epoch", file=sys.stderr)
            except ImportError:
                pass

    def __call__(self, epoch, state):
        self.stamps.append(time.perf_counter())
        if self.quiet:
            return False
        line = (f"epoch {epoch:3d}  train_rmse {state['train_rmse']:.4f}  "
                f"test_rmse {state['val_rmse']:.4f}  lr {state['lr']:.4g}  "
                f"({time.perf_counter() - self.t0:.2f}s)")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(test_rmse=f"{state['val_rmse']:.4f}", refresh=False)
            self.bar.write(line, file=sys.stdout)
        else:
            print(line, flush=True)
        return False

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run(args):
    from .. import mf
    from .._validation import check_scalar
    from ..datasets.movielens import load_movielens

    test_size = check_scalar(args.test_size, "--test-size", lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    data = load_movielens(args.ratings_file, sep=args.sep)
    n = data.ratings.shape[0]
    n_test = int(round(test_size * n))
    if n_test < 1 or n - n_test < 1:
        raise ValueError(f"--test-size {test_size} leaves an empty train or test set for {n} ratings")
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    u, i, r = data.users, data.items, data.ratings
    scale = _rating_scale(args.rating_scale, r)
    print(f"{n} ratings, {len(np.unique(u))} users, {len(np.unique(i))} items; "
          f"train {n - n_test}, test {n_test}", flush=True)
    svdpp = args.model == "svdpp"
    n_factors = args.n_factors if args.n_factors is not None else (20 if svdpp else 100)
    lr = args.lr if args.lr is not None else (0.007 if svdpp else 0.005)
    if svdpp:
        model = mf.fit_svdpp(u[train], i[train], r[train], n_factors=n_factors, n_epochs=args.n_epochs,
                             lr=lr, reg=args.reg, reg_bias=args.reg_bias, rating_scale=scale,
                             random_state=args.seed, n_threads=args.threads,
                             validation=(u[test], i[test], r[test]))
        if not args.quiet:
            for ep, (tr_e, te_e) in enumerate(zip(model.train_rmse, model.val_rmse), 1):
                print(f"epoch {ep:3d}  train_rmse {tr_e:.4f}  test_rmse {te_e:.4f}", flush=True)
        return _finish(model, args, u, i, r, test, float(model.fit_time / max(model.n_iter, 1)))
    reporter = _Reporter(args.n_epochs, args.quiet)
    try:
        model = mf.fit(u[train], i[train], r[train], n_factors=n_factors, n_epochs=args.n_epochs,
                       lr=lr, reg=args.reg, reg_bias=args.reg_bias, lr_decay=args.lr_decay,
                       early_stopping=args.early_stopping, rating_scale=scale,
                       random_state=args.seed, n_threads=args.threads, dtype=args.dtype,
                       validation=(u[test], i[test], r[test]), callback=reporter)
    finally:
        reporter.close()
    # median epoch time: the first epoch also pays for loading the compiled kernels
    per_epoch = float(np.median(np.diff(reporter.stamps))) if len(reporter.stamps) > 1 else float("nan")
    return _finish(model, args, u, i, r, test, per_epoch)


def _finish(model, args, u, i, r, test, per_epoch):
    rmse = model.rmse(u[test], i[test], r[test])
    mae = model.mae(u[test], i[test], r[test])
    os.makedirs(args.out, exist_ok=True)
    out = os.path.join(args.out, "mf_model.npz")
    model.save(out)
    print(f"[{args.model}] test RMSE {rmse:.4f}  MAE {mae:.4f}  ({model.n_iter} epochs, fit {model.fit_time:.2f}s, "
          f"{per_epoch * 1e3:.1f} ms/epoch, {model.params['n_threads']} threads)")
    print(f"model saved to {out}")
    return 0 if math.isfinite(rmse) else 1
