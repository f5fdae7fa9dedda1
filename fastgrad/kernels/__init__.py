"""Public ``@njit`` kernels: arrays and scalars in, arrays and scalars out.

Every function here is a Numba dispatcher that can be called from Python or
from a user's own ``@njit`` code. Nothing is compiled at import time; compiled
code is cached on disk (``cache=True``) after first use.
"""
from ._math import log_sigmoid, logsumexp, sigmoid, softplus, softplus_sigmoid
from .hlsm import hlsm_nll, hlsm_nll_grad, hlsm_pair_probabilities
from .mf import (mf_block_schedule, mf_error_sums, mf_partition, mf_penalty, mf_predict,
                 mf_rating_loss_grad, mf_sgd_epoch, mf_sgd_epoch_blocked, mf_sgd_epoch_masked,
                 mf_sgd_step, mf_shuffle, mf_shuffle_blocks, mf_stratum_blocks)

__all__ = [
    "sigmoid", "softplus", "log_sigmoid", "softplus_sigmoid", "logsumexp",
    "hlsm_nll", "hlsm_nll_grad", "hlsm_pair_probabilities",
    "mf_rating_loss_grad", "mf_sgd_step", "mf_sgd_epoch", "mf_sgd_epoch_masked",
    "mf_sgd_epoch_blocked", "mf_partition", "mf_block_schedule", "mf_stratum_blocks",
    "mf_shuffle", "mf_shuffle_blocks", "mf_predict", "mf_error_sums", "mf_penalty",
]
