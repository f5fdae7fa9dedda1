"""HLSM peer comparison: the nll + gradient pass against a vectorised NumPy implementation.

No Python package fits this model, so the peer is the same formulas written with
NumPy broadcasting (what a user would otherwise write), measured in the same run.
"""
import numba
import numpy as np

from fastgrad import hlsm
from fastgrad.kernels import hlsm_nll_grad_fast, hlsm_nll_grad_fast32

from ._timing import best_of


def numpy_nll_grad(Y, z, alpha):
    """Undirected nll and gradient in z with NumPy; Y float (K, n, n) with NaN = missing."""
    K, n, d = z.shape
    diff = z[:, :, None, :] - z[:, None, :, :]
    eta = alpha[:, None, None] - np.einsum("kijc,kijc->kij", diff, diff)
    obs = ~np.isnan(Y) & ~np.eye(n, dtype=bool)[None]
    y = np.nan_to_num(Y)
    nll = 0.5 * np.sum(np.where(obs, np.logaddexp(0.0, eta) - y * eta, 0.0))
    r = np.where(obs, 0.5 * (1.0 + np.tanh(0.5 * eta)) - y, 0.0)
    gz = -2.0 * np.einsum("kij,kijc->kic", r, diff)
    return nll, gz, 0.5 * r.sum(axis=(1, 2))


def run(quick=False):
    n, K, d = (300, 3, 2) if quick else (2000, 4, 2)
    Y, _ = hlsm.simulate(n, K, dim=d, random_state=0)
    Yenc = hlsm.encode_layers(Y)
    rng = np.random.default_rng(1)
    z = rng.standard_normal((K, n, d))
    alpha = np.ones(K)
    gz, ga = np.empty_like(z), np.empty(K)
    hlsm_nll_grad_fast(Yenc, Yenc, z, alpha, False, gz, ga)  # compile
    ref = numpy_nll_grad(Y, z, alpha)
    np.testing.assert_allclose(hlsm_nll_grad_fast(Yenc, Yenc, z, alpha, False, gz, ga), ref[0], rtol=1e-10)
    np.testing.assert_allclose(gz, ref[1], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(hlsm_nll_grad_fast32(Yenc, Yenc, z, alpha, False, gz, ga), ref[0], rtol=1e-6)
    assert np.abs(gz - ref[1]).max() <= 1e-5 * np.abs(ref[1]).max()
    t_np, _ = best_of(lambda: numpy_nll_grad(Y, z, alpha), 2 if quick else 3)
    rows = []
    old = numba.get_num_threads()
    try:
        for th in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(th)
            for prec, kernel in (("float64", hlsm_nll_grad_fast), ("float32", hlsm_nll_grad_fast32)):
                t_fg, _ = best_of(lambda: kernel(Yenc, Yenc, z, alpha, False, gz, ga), 5)
                rate = K * n * (n - 1) / t_fg
                rows.append(dict(task=f"nll+grad n={n} K={K} d={d}, {prec}, {th} thread(s)", fastgrad_s=t_fg,
                                 peer="NumPy (vectorised, float64)", peer_s=t_np, note=f"{rate:.3g} pair-evals/s"))
    finally:
        numba.set_num_threads(old)
    return rows
