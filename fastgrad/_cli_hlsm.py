"""``python -m fastgrad hlsm``: fit the HLSM to a bundled data set or an edge list."""
import os
import time

import numpy as np


def add_parser(subparsers):
    p = subparsers.add_parser(
        "hlsm", help="fit the hierarchical latent space model to a multiplex network",
        description="Fit the HLSM, print a per-layer summary and write positions (CSV), "
                    "the result (npz) and a plot (PNG).")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, help="bundled data set: aucs, florentine, krackhardt (default aucs)")
    src.add_argument("--edgelist", default=None, help="CSV edge list with columns source,target,layer")
    p.add_argument("--directed", action="store_true", help="edge list ties are directed")
    p.add_argument("--lam", type=float, default=None, help="group-lasso penalty (default: chosen by BIC)")
    p.add_argument("--select-lam", action="store_true",
                   help="choose lam by BIC along an adaptive group-lasso path (the default without --lam)")
    p.add_argument("--dim", type=int, default=2, help="latent dimension (default 2)")
    p.add_argument("--max-iter", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0, help="random_state (default 0)")
    p.add_argument("--out", default="results", help="output folder (default results/)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plot")
    p.add_argument("--verbose", action="store_true")
    return p


def run(args):
    from . import datasets, hlsm
    if args.edgelist:
        data = datasets.read_edgelist(args.edgelist, directed=args.directed)
        data.name = os.path.splitext(os.path.basename(args.edgelist))[0]
    else:
        data = datasets.load_dataset(args.dataset or "aucs")
    print(repr(data))
    t0 = time.perf_counter()
    kw = dict(dim=args.dim, directed=data.directed, random_state=args.seed, max_iter=args.max_iter,
              verbose=args.verbose)
    if args.lam is not None and not args.select_lam:
        res = hlsm.fit(data, args.lam, **kw)
    else:
        path = hlsm.fit_path(data, adaptive=True, **kw)
        res = path.best
        print("lam path (adaptive group lasso), BIC:")
        for lam, bic, r in zip(path.lams, path.bic, path.results):
            mark = " <- selected" if r is res else ""
            print(f"  lam {lam:10.4f}  BIC {bic:11.3f}  deviating {int(r.deviating.sum()):4d}{mark}")
    elapsed = time.perf_counter() - t0
    res.fit_time = elapsed
    print(res.summary())
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"hlsm_{data.name or 'data'}")
    _write_positions(stem + "_positions.csv", res)
    res.save(stem + "_result.npz")
    print(f"wrote {stem}_positions.csv, {stem}_result.npz", end="")
    if not args.no_plot:
        try:
            fig = res.plot(Y=data, labels=True, path=stem + "_plot.png")
            import matplotlib.pyplot as plt
            plt.close(fig)
            print(f", {stem}_plot.png")
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
