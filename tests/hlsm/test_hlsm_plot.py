"""The HLSM plot draws every tie of a layer, between the layer positions of its ends."""
import numpy as np
import pytest

from fastgrad import datasets, hlsm


@pytest.mark.parametrize("directed", [False, True])
def test_plot_draws_each_tie_once_between_layer_positions(directed):
    pytest.importorskip("matplotlib")
    from matplotlib.collections import LineCollection
    if directed:
        data = datasets.load_dataset("krackhardt")
    else:
        data = datasets.load_florentine()
    Y = np.nan_to_num(np.asarray(data.Y, dtype=float))
    res = hlsm.fit(data, 3.0, random_state=0, directed=data.directed, max_iter=200)
    fig = res.plot(Y=data)
    for k, ax in enumerate(fig.axes[:Y.shape[0]]):
        lines = [c for c in ax.collections if isinstance(c, LineCollection)]
        assert len(lines) == 1 and not ax.lines
        got = sorted(tuple(np.round(s.ravel(), 12)) for s in lines[0].get_segments())
        ii, jj = np.nonzero(Y[k] > 0)
        keep = ii != jj if data.directed else ii < jj
        z = res.z[k]
        want = sorted(tuple(np.round(np.concatenate([z[i, :2], z[j, :2]]), 12))
                      for i, j in zip(ii[keep], jj[keep]))
        assert len(got) == int(keep.sum()) > 0
        assert got == want
        # the ties lie inside the axes' view
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        seg = np.concatenate(lines[0].get_segments())
        assert (seg[:, 0] >= x0).all() and (seg[:, 0] <= x1).all()
        assert (seg[:, 1] >= y0).all() and (seg[:, 1] <= y1).all()
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_agg_figure_saves_the_same_image_as_the_pyplot_figure(tmp_path):
    # the CLI draws on a bare Agg figure (no pyplot); its PNG must equal plot_hlsm's pixel for pixel,
    # and the figure must not be registered with pyplot (nothing to close, nothing shown)
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    from matplotlib.image import imread
    from fastgrad.hlsm._plot import _plot_hlsm
    data = datasets.load_florentine()
    res = hlsm.fit(data, 3.0, random_state=0, max_iter=200)
    before = plt.get_fignums()
    fig = _plot_hlsm(res, Y=data, labels=True, path=tmp_path / "agg.png", pyplot=False)
    assert plt.get_fignums() == before and fig.canvas.__class__.__name__ == "FigureCanvasAgg"
    ref = res.plot(Y=data, labels=True, path=tmp_path / "pyplot.png")
    plt.close(ref)
    a, b = imread(tmp_path / "agg.png"), imread(tmp_path / "pyplot.png")
    assert a.shape == b.shape and a.shape[0] > 100
    assert np.array_equal(a, b)
    assert a.std() > 0.05  # not a blank canvas


def test_fixed_layout_keeps_every_text_inside_the_figure_and_panels_apart():
    # the CLI's fixed margins (no tight_layout): titles, tick labels and the suptitle stay inside
    # the figure, and no two panels (with their titles and tick labels) overlap
    pytest.importorskip("matplotlib")
    from fastgrad.hlsm._plot import _plot_hlsm
    data = datasets.load_aucs()
    res = hlsm.fit(data, 10.0, random_state=0, max_iter=100)
    fig = _plot_hlsm(res, Y=data, labels=True, pyplot=False, layout="fixed")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    W, H = fig.bbox.width, fig.bbox.height
    boxes = [ax.get_tightbbox(renderer) for ax in fig.axes if ax.get_visible()]
    assert len(boxes) == 5
    for bb in boxes + [fig._suptitle.get_window_extent(renderer)]:
        assert bb.x0 >= 0 and bb.y0 >= 0 and bb.x1 <= W and bb.y1 <= H
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b])
    assert fig._suptitle.get_window_extent(renderer).y0 >= max(bb.y1 for bb in boxes) - 1
    # and the panels take the room tight_layout would give them (matplotlib's default margins
    # would leave up to 0.09 of the figure unused on a side)
    tight = _plot_hlsm(res, Y=data, labels=True, pyplot=False, layout="tight")
    pos = [np.array(ax.get_position().bounds) for f in (fig, tight) for ax in f.axes if ax.get_visible()]
    np.testing.assert_allclose(pos[:5], pos[5:], atol=0.03)


def test_cli_plot_does_not_import_pyplot(tmp_path):
    import subprocess
    import sys
    pytest.importorskip("matplotlib")
    code = ("import sys; from fastgrad.__main__ import main; "
            f"rc = main(['hlsm', '--dataset', 'florentine', '--lam', '3', '--max-iter', '200', '--out', {str(tmp_path)!r}]); "
            "assert rc == 0; print('pyplot' if 'matplotlib.pyplot' in sys.modules else 'no pyplot')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "no pyplot"
    assert (tmp_path / "hlsm_florentine_plot.png").stat().st_size > 1000


def test_saving_the_plot_draws_it_once():
    # tight_layout's leftover placeholder layout engine made savefig draw the figure twice
    pytest.importorskip("matplotlib")
    import io
    from fastgrad.hlsm._plot import _plot_hlsm
    data = datasets.load_florentine()
    res = hlsm.fit(data, 3.0, random_state=0, max_iter=200)
    fig = _plot_hlsm(res, Y=data, pyplot=False)
    calls = []
    draw = fig.draw
    fig.draw = lambda renderer: (calls.append(1), draw(renderer))[1]
    fig.savefig(io.BytesIO(), format="png")
    assert len(calls) == 1


@pytest.mark.parametrize("transparent", [False, True])
def test_fast_png_has_the_pixels_savefig_writes(tmp_path, transparent):
    # the command line's PNG writer (unfiltered rows, zlib level 1) against matplotlib's savefig
    # on the same figure: the same pixels, RGB when opaque, RGBA otherwise, the dpi recorded
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread
    from PIL import Image
    from fastgrad.hlsm._plot import _plot_hlsm, _save_png
    data = datasets.load_florentine()
    res = hlsm.fit(data, 3.0, random_state=0, max_iter=200)
    fig = _plot_hlsm(res, Y=data, labels=True, pyplot=False, layout="fixed", ticks=False)
    if transparent:
        fig.patch.set_alpha(0.0)
    dpi_before = fig.dpi
    _save_png(fig, tmp_path / "fast.png", 90)
    assert fig.dpi == dpi_before
    fig.savefig(tmp_path / "ref.png", dpi=90)
    a, b = imread(tmp_path / "fast.png"), imread(tmp_path / "ref.png")
    assert b.shape[2] == 4 and a.shape[:2] == b.shape[:2] == (int(fig.get_size_inches()[1] * 90),
                                                              int(fig.get_size_inches()[0] * 90))
    assert a.shape[2] == (4 if transparent else 3)
    assert np.array_equal(a, b[:, :, :a.shape[2]])
    if not transparent:
        assert (b[:, :, 3] == 1.0).all()
    assert a.std() > 0.05
    with Image.open(tmp_path / "fast.png") as im:
        im.load()                                   # checks every chunk's CRC and the data
        assert im.mode == ("RGBA" if transparent else "RGB")
        assert np.allclose(im.info["dpi"], (90, 90), atol=0.01)
