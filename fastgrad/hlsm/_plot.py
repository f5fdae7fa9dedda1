"""Plots (matplotlib is imported only when a plot is drawn)."""
import numpy as np

__all__ = ["plot_hlsm"]


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'fastgrad[plot]'") from exc
    import os
    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _figure(pyplot, nrows, ncols, figsize):
    """A figure with a grid of axes: through pyplot (shown / managed like any pyplot figure), or
    a bare ``Figure`` on the Agg canvas, which only saves (no pyplot import: ~0.4 s less)."""
    if pyplot:
        return _pyplot().subplots(nrows, ncols, figsize=figsize, squeeze=False)
    try:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'fastgrad[plot]'") from exc
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def plot_hlsm(result, Y=None, *, layers=None, labels=None, path=None, dims=(0, 1), ncols=None,
              figsize=None, dpi=120, size_by="auto"):
    """Shared positions and layer deviations of an HLSM fit, one panel per layer.

    Grey dots mark the shared positions ``b_i``; coloured dots mark the layer
    positions ``z_ik``, with an arrow from ``b_i`` to ``z_ik`` for every node
    that deviates in that layer. If ``Y`` is given, the layer's ties are drawn
    as thin lines between layer positions.

    Parameters
    ----------
    result : HLSMResult
        A fit from :func:`fastgrad.hlsm.fit`.
    Y : array_like, shape (K, n, n), optional
        The data, to draw ties.
    layers : sequence of int, optional
        Which layers to show (default all).
    labels : sequence of str, bool or None, optional
        Node labels to print next to deviating nodes (``True`` uses ``result.nodes``;
        ``False`` or None prints none).
    path : str or os.PathLike, optional
        If given, save the figure there (PNG, PDF, SVG by extension).
    dims : pair of int, default=(0, 1)
        Latent dimensions to show (a 1-D model is drawn against zero).
    ncols : int, optional
        Panels per row.
    figsize : tuple, optional
    dpi : int, default=120
    size_by : {"auto", "sociality", "sender", "receiver", None}, default="auto"
        Size each node's layer position by its node effect in that layer
        (area ``22 * exp(effect)``, clipped to 4..200): ``"auto"`` uses the
        sociality effects of an undirected fit or the sender effects of a
        directed one, when the fit has node effects; None: all equal.

    Returns
    -------
    matplotlib.figure.Figure
    """
    return _plot_hlsm(result, Y, layers=layers, labels=labels, path=path, dims=dims, ncols=ncols,
                      figsize=figsize, dpi=dpi, size_by=size_by, pyplot=True)


def _grid(n_panels, ncols=None, figsize=None):
    """``(nrows, ncols, figsize)`` of a figure of ``n_panels`` layer panels."""
    ncols = ncols or min(n_panels, 3)
    nrows = int(np.ceil(n_panels / ncols))
    return nrows, ncols, figsize or (4.2 * ncols, 4.0 * nrows)


def _bare_figure(n_panels):
    """The empty Agg figure and axes :func:`_plot_hlsm` with ``pyplot=False`` and default
    ``ncols``/``figsize`` would create (built ahead of the data by the command's plot process)."""
    return _figure(False, *_grid(n_panels))


def _plot_hlsm(result, Y=None, *, layers=None, labels=None, path=None, dims=(0, 1), ncols=None,
               figsize=None, dpi=120, size_by="auto", pyplot=True, layout="tight", ticks=True,
               save_kw=None, figure=None):
    """:func:`plot_hlsm`; ``pyplot=False`` draws on a bare Agg figure (for saving only, e.g. the CLI);
    ``layout="fixed"`` sets margins in inches instead of measuring every text (tight_layout);
    ``ticks=False`` draws no axis ticks (the positions are identified only up to rotation and
    translation, and laying out the tick labels was most of the CLI plot's drawing time);
    ``save_kw`` is passed on to ``savefig`` (``"fast-png"``: a PNG written by :func:`_save_png`
    instead, with a bare Agg figure); ``figure`` is a ``(fig, axes)`` pair from
    :func:`_bare_figure`, used if it has this plot's grid (else a new figure is made)."""
    K, n, d = result.eps.shape
    layers = list(range(K)) if layers is None else list(layers)
    names = result.layers or [f"layer {k}" for k in range(K)]
    if labels is True:
        labels = result.nodes or [str(i) for i in range(n)]
    elif labels is False:
        labels = None
    nrows, ncols, figsize = _grid(len(layers), ncols, figsize)
    if (figure is not None and not pyplot and figure[1].shape == (nrows, ncols)
            and tuple(figure[0].get_size_inches()) == tuple(figsize)):
        fig, axes = figure
    else:
        fig, axes = _figure(pyplot, nrows, ncols, figsize)
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    def xy(P):
        x = P[:, dims[0]]
        y = P[:, dims[1]] if d > 1 else np.zeros(len(P))
        return x, y

    bx, by = xy(result.b)
    Yarr = None
    if Y is not None:
        Yarr = np.asarray(getattr(Y, "Y", Y), dtype=np.float64)
    cmap = colormaps["tab10"]
    dev = result.deviating
    if size_by == "auto":
        size_by = "sociality" if getattr(result, "sociality", None) is not None else (
            "sender" if getattr(result, "sender", None) is not None else None)
    if size_by is not None and size_by not in ("sociality", "sender", "receiver"):
        raise ValueError(f"size_by must be 'auto', 'sociality', 'sender', 'receiver' or None, got {size_by!r}")
    effect = None if size_by is None else getattr(result, size_by, None)
    if size_by is not None and effect is None:
        raise ValueError(f"size_by={size_by!r}: the fit has no such node effects")
    for ax, k in zip(axes.ravel(), layers):
        zx, zy = xy(result.z[k])
        if Yarr is not None:
            ii, jj = np.nonzero(np.nan_to_num(Yarr[k]) > 0)
            keep = ii < jj if not result.directed else ii != jj
            ii, jj = ii[keep], jj[keep]
            if ii.size:  # all ties as one artist (one ax.plot per tie took seconds on a few hundred ties)
                segs = np.stack([np.column_stack([zx[ii], zy[ii]]), np.column_stack([zx[jj], zy[jj]])], axis=1)
                ax.add_collection(LineCollection(segs, colors="0.8", linewidths=0.5, zorder=1))
        ax.scatter(bx, by, s=14, color="0.55", label="shared position b", zorder=2)
        col = cmap(k % 10)
        if effect is not None:  # every node at its layer position, sized by its effect
            sizes = np.clip(22.0 * np.exp(effect[k]), 4.0, 200.0)
            ax.scatter(zx, zy, s=sizes, facecolors="none", edgecolors=col, lw=0.6, zorder=3,
                       label=f"node size: {size_by}")
            ax.scatter(zx[dev[k]], zy[dev[k]], s=sizes[dev[k]], color=col, label="layer position z (deviating)",
                       zorder=4)
        else:
            ax.scatter(zx[dev[k]], zy[dev[k]], s=22, color=col, label="layer position z (deviating)", zorder=4)
        for i in np.nonzero(dev[k])[0]:
            ax.annotate("", xy=(zx[i], zy[i]), xytext=(bx[i], by[i]),
                        arrowprops=dict(arrowstyle="->", color=col, lw=0.9), zorder=3)
            if labels is not None:
                ax.text(zx[i], zy[i], f" {labels[i]}", fontsize=7, color=col)
        ax.set_title(f"{names[k]}: alpha={result.alpha[k]:.2f}, {int(dev[k].sum())} deviating")
        ax.set_aspect("equal", adjustable="datalim")
        ax.tick_params(labelsize=7)
        if not ticks:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in axes.ravel()[len(layers):]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"HLSM positions (lam={result.lam:.3g})", fontsize=10)
    if layout == "tight":
        fig.tight_layout()
        # tight_layout leaves a placeholder layout engine behind, and savefig then runs a whole
        # extra (non-rendering) draw before the real one (~0.12 s); the layout is already final
        fig.set_layout_engine(None)
    elif layout == "fixed":
        # fixed margins in inches, for the default panel size (the CLI): tight_layout measures
        # every text extent with a renderer (~0.17 s of a 1.5 s command)
        w, h = fig.get_size_inches()
        edge = 0.45 if ticks else 0.15                # room for tick labels
        fig.subplots_adjust(left=edge / w, right=1 - 0.15 / w, bottom=(edge - 0.1) / h, top=1 - 0.75 / h,
                            wspace=0.15, hspace=0.75 / (h / nrows))
    if path is not None:
        if save_kw == "fast-png":
            _save_png(fig, path, dpi)
        else:
            fig.savefig(path, dpi=dpi, **(save_kw or {}))
    return fig


def _save_png(fig, path, dpi):
    """Render ``fig`` (an Agg figure) at ``dpi`` and write it as PNG: 8-bit RGB (RGBA if a
    pixel is not opaque), unfiltered rows, zlib level 1, the resolution in ``pHYs``.

    The same pixels as ``fig.savefig(path, dpi=dpi)`` (which renders the same way and writes
    RGBA): for the command line's plot (1512 x 960 pixels), Pillow's encoder took 80-115 ms
    even at ``compress_level=1`` (it tries every row filter) and this 20-35 ms, for a smaller
    file (256 kB against 305 kB).
    """
    import struct
    import zlib

    from matplotlib import __version__ as mpl_version
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    old = fig.dpi
    fig.dpi = dpi                                   # as savefig does, for the rendering only
    try:
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
    finally:
        fig.dpi = old
    h, w, _ = rgba.shape
    opaque = bool((rgba[:, :, 3] == 255).all())
    nc = 3 if opaque else 4
    rows = np.empty((h, 1 + w * nc), dtype=np.uint8)
    rows[:, 0] = 0                                  # filter type 0 (none) for every row
    out = rows[:, 1:].reshape(h, w, nc)
    for c in range(nc):                             # channel by channel: 5x faster than one strided copy
        out[:, :, c] = rgba[:, :, c]

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ppm = int(round(dpi / 0.0254))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2 if opaque else 6, 0, 0, 0))
           + chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1))
           + chunk(b"tEXt", b"Software\x00" + f"Matplotlib version{mpl_version}, fastgrad".encode("latin-1"))
           + chunk(b"IDAT", zlib.compress(memoryview(rows), 1))
           + chunk(b"IEND", b""))
    with open(path, "wb") as fh:
        fh.write(png)
