"""Public ``@njit`` kernels: arrays and scalars in, arrays and scalars out.

Every function here is a Numba dispatcher that can be called from Python or
from a user's own ``@njit`` code. Nothing is compiled at import time; compiled
code is cached on disk (``cache=True``) after first use.
"""
from ._math import log_sigmoid, logsumexp, sigmoid, softplus, softplus_sigmoid
from .hlsm import hlsm_nll, hlsm_nll_grad, hlsm_pair_probabilities

__all__ = [
    "sigmoid", "softplus", "log_sigmoid", "softplus_sigmoid", "logsumexp",
    "hlsm_nll", "hlsm_nll_grad", "hlsm_pair_probabilities",
]
