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
