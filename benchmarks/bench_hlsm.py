"""asv benchmarks for the HLSM kernel and fit (compilation happens in setup)."""
import numpy as np

from fastgrad import hlsm
from fastgrad.kernels import hlsm_nll, hlsm_nll_grad, hlsm_nll_grad_fast, hlsm_nll_grad_fast32


class KernelNllGrad:
    params = [[200, 1000, 2000], [False, True]]
    param_names = ["n", "directed"]
    timeout = 120

    def setup(self, n, directed):
        K, d = 4, 2
        rng = np.random.default_rng(0)
        Y, _ = hlsm.simulate(n, K, directed=directed, random_state=0)
        self.Y = hlsm.encode_layers(Y, directed=directed)
        self.YT = np.ascontiguousarray(self.Y.transpose(0, 2, 1)) if directed else self.Y
        self.z = rng.standard_normal((K, n, d))
        self.alpha = np.ones(K)
        self.gz = np.empty_like(self.z)
        self.ga = np.empty(K)
        self.directed = directed
        hlsm_nll_grad(self.Y, self.YT, self.z, self.alpha, directed, self.gz, self.ga)
        hlsm_nll(self.Y, self.z, self.alpha, directed)

    def time_nll_grad(self, n, directed):
        hlsm_nll_grad(self.Y, self.YT, self.z, self.alpha, self.directed, self.gz, self.ga)

    def time_nll(self, n, directed):
        hlsm_nll(self.Y, self.z, self.alpha, self.directed)


class KernelFastNllGrad:
    """The tiled fast kernels, float64 and float32 (n = 2000, K = 4, d = 2: the issue's benchmark shape)."""
    params = [[1000, 2000], ["float64", "float32"]]
    param_names = ["n", "precision"]
    timeout = 120

    def setup(self, n, precision):
        K = 4
        Y, truth = hlsm.simulate(n, K, random_state=0)
        self.Y = hlsm.encode_layers(Y)
        self.z = np.ascontiguousarray(truth.z)
        self.alpha = truth.alpha.copy()
        self.gz = np.empty_like(self.z)
        self.ga = np.empty(K)
        self.kernel = hlsm_nll_grad_fast32 if precision == "float32" else hlsm_nll_grad_fast
        self.kernel(self.Y, self.Y, self.z, self.alpha, False, self.gz, self.ga)  # compile outside the timing

    def time_nll_grad(self, n, precision):
        self.kernel(self.Y, self.Y, self.z, self.alpha, False, self.gz, self.ga)


class Fit:
    params = [200, 1000]
    param_names = ["n"]
    timeout = 300
    number = 1
    repeat = 1

    def setup(self, n):
        self.Y, _ = hlsm.simulate(n, 3, random_state=0)
        hlsm.fit(hlsm.simulate(20, 3, random_state=1)[0], 1.0,
                 max_iter=3, random_state=0)  # compile everything once, outside the timing

    def time_fit(self, n):
        hlsm.fit(self.Y, 5.0, max_iter=300, random_state=0)


class LayersEncoding:
    """``hlsm.Layers``: the compiled encoding pass, and ``nll_and_grad`` on encoded layers (within 15%
    of the kernel) and on a raw array (encoding included), beside the bare kernel (n = 2000, K = 4)."""
    params = [[False, True]]
    param_names = ["directed"]
    timeout = 120

    def setup(self, directed):
        Y, truth = hlsm.simulate(2000, 4, directed=directed, missing=0.01, random_state=0)
        self.Y, self.directed = Y, directed
        self.L = hlsm.Layers(Y, directed=directed)
        self.b, self.eps, self.alpha = truth.b, truth.eps, truth.alpha
        self.z = np.ascontiguousarray(truth.z)
        self.gz, self.ga = np.empty_like(self.z), np.empty(4)
        hlsm_nll_grad_fast(self.L.Y, self.L.YT, self.z, self.alpha, directed, self.gz, self.ga)
        hlsm.nll_and_grad(self.L, self.b, self.eps, self.alpha, directed=directed)

    def time_encode(self, directed):
        hlsm.Layers(self.Y, directed=self.directed)

    def time_kernel(self, directed):
        hlsm_nll_grad_fast(self.L.Y, self.L.YT, self.z, self.alpha, self.directed, self.gz, self.ga)

    def time_nll_and_grad_layers(self, directed):
        hlsm.nll_and_grad(self.L, self.b, self.eps, self.alpha, directed=self.directed)

    def time_nll_and_grad_array(self, directed):
        hlsm.nll_and_grad(self.Y, self.b, self.eps, self.alpha, directed=self.directed)
