"""``python -m fastgrad hlsm``: fit the HLSM to a bundled data set or an edge list."""
import os
import sys
import time

import numpy as np

from . import _plotjob
from ._cv import DEFAULT_DIMS as _DEFAULT_DIMS


def add_parser(subparsers):
    p = subparsers.add_parser(
        "hlsm", help="fit the hierarchical latent space model to a multiplex network",
        description="Fit the HLSM, print a per-layer summary and write positions (CSV), "
                    "the result (npz) and a plot (PNG).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, help="bundled data set: aucs, florentine, krackhardt (default aucs)")
    src.add_argument("--edgelist", default=None, help="CSV edge list with columns source,target,layer")
    p.add_argument("--directed", action="store_true", help="edge list ties are directed")
    p.add_argument("--lam", type=float, default=None,
                   help="group-lasso penalty of a single fit (default: choose dim and lam by cross-validation)")
    p.add_argument("--select", action="store_true",
                   help="choose dim and lam by cross-validation on held-out pairs (hlsm.fit_cv; "
                        "the default without --lam)")
    p.add_argument("--select-lam", action="store_true", help="deprecated alias of --select")
    p.add_argument("--bic", action="store_true",
                   help="choose lam by BIC along an adaptive group-lasso path instead (hlsm.fit_path)")
    p.add_argument("--dim", type=int, default=None,
                   help="latent dimension (default 2 for --lam/--bic; with --select, only this dimension)")
    p.add_argument("--dims", default=None,
                   help="comma-separated dimensions compared by --select (default "
                        + ",".join(map(str, _DEFAULT_DIMS)) + ")")
    p.add_argument("--folds", type=int, default=3, help="folds of --select (default 3, as hlsm.fit_cv)")
    p.add_argument("--metric", default="loglik", choices=("loglik", "auc", "brier"),
                   help="held-out score that --select maximises (default loglik)")
    p.add_argument("--max-iter", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    p.add_argument("--out", default="results", help="output folder (default results/)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--verbose", action="store_true")
    return p


def run(args):
    from .. import datasets
    if args.edgelist:
        data = datasets.read_edgelist(args.edgelist, directed=args.directed)
        data.name = os.path.splitext(os.path.basename(args.edgelist))[0]
    else:
        data = datasets.load_dataset(args.dataset or "aucs")
    # the plot's process starts next: it imports matplotlib while this one imports numba and fits
    # (on a first run it compiles the fit's kernel first, on the second core)
    job = None
    if not args.no_plot:
        K, n = data.Y.shape[0], data.Y.shape[1]
        kernel = _plotjob.fit_kernel(K * n * n, data.directed)
        job = _plotjob.start(precompile=kernel if _plotjob.first_fit_compiles(kernel) else False)
    try:
        return _run(args, job, data)
    finally:
        if job is not None and not job.sent:
            job.cancel()


def _run(args, job, data):
    from .. import hlsm
    print(repr(data))
    if job is not None:
        job.prepare(data.Y.shape[0])
    t0 = time.perf_counter()
    if args.select_lam:
        print("note: --select-lam is deprecated; it now means --select (cross-validation of dim and lam)",
              file=sys.stderr)
        args.select = True
    if args.lam is not None and (args.select or args.bic):
        raise ValueError("--lam fits one model; it cannot be combined with --select or --bic")
    if args.select and args.bic:
        raise ValueError("choose one of --select and --bic")
    kw = dict(directed=data.directed, max_iter=args.max_iter)
    cv = None
    Y = data
    if job is not None and job.compiling:
        # encode the layers (NumPy for small ones, else the encoding kernel compiles) and compile the
        # positions transpose (which also imports numba and sets up its compiler, ~1 s, here rather
        # than after the wait) while the plot process compiles the likelihood's kernel, then wait for
        # that kernel to reach the cache (else the fit compiles it again)
        from ._layers import as_layers, use_sparse
        Y = as_layers(data, directed=data.directed, sparse=use_sparse(data, "auto"))
        from ..kernels.hlsm import compile_ext_helpers
        compile_ext_helpers()
        job.wait_compiled()
    if args.lam is not None:
        res = hlsm.fit(Y, args.lam, dim=args.dim or 2, random_state=args.seed, verbose=args.verbose, **kw)
    elif args.bic:
        path = hlsm.fit_path(data, adaptive=True, dim=args.dim or 2, random_state=args.seed, **kw)
        res = path.best
        print("lam path (adaptive group lasso), BIC:")
        for lam, bic, r in zip(path.lams, path.bic, path.results):
            mark = " <- selected" if r is res else ""
            print(f"  lam {lam:10.4f}  BIC {bic:11.3f}  deviating {int(r.deviating.sum()):4d}{mark}")
    else:
        dims = _parse_dims(args.dims) if args.dims else ((args.dim,) if args.dim else _DEFAULT_DIMS)
        cv = hlsm.fit_cv(data, dims=dims, n_folds=args.folds, metric=args.metric, random_state=args.seed,
                         verbose=args.verbose, **kw)
        res = cv.best
        print(cv.summary())
        s = cv.scores
        b = cv.best_index
        print(f"cross-validated AUC {cv.cv_auc:.4f} ± {s['auc_std'][b]:.4f} (held-out pairs, mean over layers), "
              f"log-loss {-s['loglik'][b]:.4f}; selected dim={cv.dim}, lam={cv.lam:.4g} "
              f"({_describe_ratio(cv.lam_ratio)})")
    elapsed = time.perf_counter() - t0
    res.fit_time = elapsed
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"hlsm_{data.name or 'data'}")
    # no ticks (positions are defined up to rotation) and a fast PNG writer (unfiltered rows, light
    # compression: the same pixels as savefig's)
    plot_kw = dict(labels=True, pyplot=False, layout="fixed", ticks=False, save_kw="fast-png")
    if job is not None:
        job.send(res, data, stem + "_plot.png", **plot_kw)
    print(res.summary())
    _write_positions(stem + "_positions.csv", res)
    res.save(stem + "_result.npz")
    print(f"wrote {stem}_positions.csv, {stem}_result.npz", end="")
    if not args.no_plot:
        try:
            # a bare Agg figure, saved only: no matplotlib.pyplot import (~0.4 s of a 2 s run)
            status, message = job.wait() if job is not None and job.sent else ("failed", "")
            if status == "import":
                raise ImportError(message)
            if status != "ok":
                _plotjob.draw_here(res, data, stem + "_plot.png", **plot_kw)
            print(f", {stem}_plot.png", end="")
            if cv is not None:
                import matplotlib.pyplot as plt
                plt.close(cv.plot(path=stem + "_cv.png"))
                print(f", {stem}_cv.png", end="")
            print()
        except ImportError as exc:
            print(f"\n(plot skipped: {exc})")
    else:
        print()
    return 0


def _write_positions(path, res):
    K, n, d = res.eps.shape
    nodes = res.nodes or [str(i) for i in range(n)]
    layers = res.layers or [f"layer{k}" for k in range(K)]
    norms = np.linalg.norm(res.eps, axis=-1)
    with open(path, "w", encoding="utf-8") as fh:
        head = ["node", "layer"] + [f"b{c + 1}" for c in range(d)] + [f"z{c + 1}" for c in range(d)]
        fh.write(",".join(head + ["eps_norm", "deviating"]) + "\n")
        for k in range(K):
            for i in range(n):
                vals = [f"{v:.6g}" for v in (*res.b[i], *res.z[k, i])]
                fh.write(",".join([nodes[i], layers[k], *vals, f"{norms[k, i]:.6g}",
                                   str(bool(norms[k, i] > 0))]) + "\n")


def _parse_dims(text):
    try:
        dims = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"--dims must be comma-separated integers, got {text!r}") from None
    if not dims:
        raise ValueError("--dims is empty")
    return dims


def _describe_ratio(r):
    if r >= 1:
        return "shared positions in every layer"
    if r == 0:
        return "independent layers"
    return f"{r:.3g} lam_max: partly shared"
