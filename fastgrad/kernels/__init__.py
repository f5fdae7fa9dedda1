"""Public ``@njit`` kernels: arrays and scalars in, arrays and scalars out.

Every function here is a Numba dispatcher that can be called from Python or
from a user's own ``@njit`` code. Nothing is compiled at import time; compiled
code is cached on disk (``cache=True``) after first use.
"""
from ._math import (fast_exp, fast_log1p_unit, fast_softplus_sigmoid, log_sigmoid, logsumexp, sigmoid,
                    softplus, softplus_sigmoid)
from ._math import (fast_exp_neg, fast_exp_neg32, fast_log1p_small, fast_log1p_small32, fast_softplus32,
                    fast_softplus_sigmoid32, fast_softplus_sigmoid64, fast_softplus64)
from .hlsm import (hlsm_edge_correction, hlsm_nll, hlsm_nll_fast, hlsm_nll_grad, hlsm_nll_grad_fast,
                   hlsm_pair_probabilities)
from .hlsm import (hlsm_nll_fast32, hlsm_nll_grad_fast32, hlsm_nll_grad_ext, hlsm_nll_grad_ext_serial,
                   hlsm_dyad_correction)
from .hlsm_place import hlsm_place_nodes, hlsm_place_objective
from .multinomial import (multinomial_hessian, multinomial_hessian_csr, multinomial_loss,
                          multinomial_loss_csr, multinomial_loss_grad, multinomial_loss_grad_csr,
                          multinomial_proba, multinomial_proba_csr)
from .mf import (mf_block_layout, mf_block_layout_serial, mf_block_schedule, mf_error_sums,
                 mf_normal_rows, mf_partition,
                 mf_penalty, mf_predict, mf_rating_loss_grad, mf_sgd_epoch, mf_sgd_epoch_blocked,
                 mf_sgd_epoch_masked, mf_sgd_step, mf_shuffle, mf_shuffle_blocks, mf_stratum_blocks,
                 svdpp_implicit_csr, svdpp_implicit_sums, svdpp_rating_loss_grad, svdpp_sgd_epoch_blocked,
                 svdpp_user_runs)
from .glm import (LOSS_LOGISTIC, LOSS_SQUARED, glm_cd, glm_cd_csc, glm_cd_gram, glm_col_dots,
                  glm_col_dots_csc, glm_loss, glm_loss_csr, glm_loss_grad, glm_loss_grad_csr)

__all__ = [
    "sigmoid", "softplus", "log_sigmoid", "softplus_sigmoid", "logsumexp",
    "hlsm_nll", "hlsm_nll_grad", "hlsm_pair_probabilities", "hlsm_nll_grad_fast", "hlsm_nll_fast",
    "hlsm_edge_correction", "hlsm_nll_grad_ext", "hlsm_nll_grad_ext_serial", "hlsm_dyad_correction", "hlsm_place_nodes", "hlsm_place_objective",
    "fast_exp", "fast_log1p_unit", "fast_softplus_sigmoid",
    "hlsm_nll_grad_fast32", "hlsm_nll_fast32", "fast_exp_neg", "fast_log1p_small", "fast_softplus64",
    "fast_softplus_sigmoid64", "fast_exp_neg32", "fast_log1p_small32", "fast_softplus32", "fast_softplus_sigmoid32",
    "multinomial_loss", "multinomial_loss_grad", "multinomial_proba", "multinomial_hessian",
    "multinomial_loss_csr", "multinomial_loss_grad_csr", "multinomial_proba_csr",
    "multinomial_hessian_csr",
    "mf_rating_loss_grad", "mf_sgd_step", "mf_sgd_epoch", "mf_sgd_epoch_masked",
    "mf_sgd_epoch_blocked", "mf_partition", "mf_block_schedule", "mf_stratum_blocks",
    "mf_shuffle", "mf_shuffle_blocks", "mf_predict", "mf_error_sums", "mf_penalty", "mf_normal_rows",
    "mf_block_layout", "mf_block_layout_serial",
    "svdpp_rating_loss_grad", "svdpp_implicit_sums", "svdpp_sgd_epoch_blocked",
    "svdpp_user_runs", "svdpp_implicit_csr",
    "LOSS_SQUARED", "LOSS_LOGISTIC", "glm_loss_grad", "glm_loss_grad_csr", "glm_loss",
    "glm_loss_csr", "glm_cd", "glm_cd_csc", "glm_cd_gram", "glm_col_dots", "glm_col_dots_csc",
]
__all__ += ["hlsm_encode_layers", "hlsm_encode_layers_serial"]

from .hlsm_encode import hlsm_encode_layers, hlsm_encode_layers_serial  # noqa: E402

#: Old names kept for one release: ``old -> new``.
_DEPRECATED = {"fast_softplus_v2": "fast_softplus64", "fast_softplus_sigmoid_v2": "fast_softplus_sigmoid64"}


def __getattr__(name):
    if name in _DEPRECATED:
        import warnings
        new = _DEPRECATED[name]
        warnings.warn(f"fastgrad.kernels.{name} is deprecated; use fastgrad.kernels.{new} (same function)",
                      DeprecationWarning, stacklevel=2)
        return globals()[new]
    raise AttributeError(f"module 'fastgrad.kernels' has no attribute {name!r}")
