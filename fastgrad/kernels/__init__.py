"""Public ``@njit`` kernels: arrays and scalars in, arrays and scalars out.

Every function here is a Numba dispatcher that can be called from Python or
from a user's own ``@njit`` code. Nothing is compiled at import time; compiled
code is cached on disk (``cache=True``) after first use.
"""
import importlib as _importlib

#: module -> the kernels it defines. A kernel's module is imported on first access (PEP 562):
#: ``from fastgrad.kernels import hlsm_nll`` does not build the MF, GLM or multinomial dispatchers.
_MODULES = {
    "_math": ("fast_exp", "fast_log1p_unit", "fast_softplus_sigmoid", "log_sigmoid", "logsumexp", "sigmoid",
              "softplus", "softplus_sigmoid", "fast_exp_neg", "fast_exp_neg32", "fast_log1p_small",
              "fast_log1p_small32", "fast_softplus32", "fast_softplus_sigmoid32", "fast_softplus_sigmoid64",
              "fast_softplus64"),
    "hlsm": ("hlsm_edge_correction", "hlsm_nll", "hlsm_nll_fast", "hlsm_nll_grad", "hlsm_nll_grad_fast",
             "hlsm_pair_probabilities", "hlsm_nll_fast32", "hlsm_nll_grad_fast32", "hlsm_nll_grad_ext",
             "hlsm_nll_grad_ext_serial", "hlsm_nll_grad_ext_pairs", "hlsm_dyad_correction"),
    "multinomial": ("multinomial_hessian", "multinomial_hessian_csr", "multinomial_loss", "multinomial_loss_csr",
                    "multinomial_loss_grad", "multinomial_loss_grad_csr", "multinomial_proba", "multinomial_proba_csr"),
    "mf": ("mf_block_layout", "mf_block_layout_serial", "mf_block_schedule", "mf_error_sums", "mf_normal_rows",
           "mf_normal_rows_at", "mf_partition", "mf_penalty", "mf_predict", "mf_rating_loss_grad", "mf_sgd_epoch",
           "mf_sgd_epoch_blocked", "mf_sgd_epoch_masked", "mf_sgd_step", "mf_shuffle", "mf_shuffle_blocks",
           "mf_stratum_blocks", "svdpp_implicit_csr", "svdpp_implicit_sums", "svdpp_rating_loss_grad",
           "svdpp_sgd_epoch_blocked", "svdpp_user_runs"),
    "glm": ("LOSS_LOGISTIC", "LOSS_SQUARED", "glm_cd", "glm_cd_csc", "glm_cd_gram", "glm_col_dots",
            "glm_col_dots_csc", "glm_loss", "glm_loss_csr", "glm_loss_grad", "glm_loss_grad_csr"),
    "hlsm_place": ("hlsm_place_nodes", "hlsm_place_objective"),
    "hlsm_encode": ("hlsm_encode_layers", "hlsm_encode_layers_serial"),
}
_WHERE = {name: mod for mod, names in _MODULES.items() for name in names}

#: every kernel, module by module (``_MODULES`` is the one list to extend)
__all__ = [name for names in _MODULES.values() for name in names]

#: Old names kept for one release: ``old -> new``.
_DEPRECATED = {"fast_softplus_v2": "fast_softplus64", "fast_softplus_sigmoid_v2": "fast_softplus_sigmoid64"}


def __getattr__(name):
    mod = _WHERE.get(name)
    if mod is not None:
        value = getattr(_importlib.import_module(f"{__name__}.{mod}"), name)
        globals()[name] = value          # later lookups skip __getattr__
        return value
    if name in _DEPRECATED:
        import warnings
        new = _DEPRECATED[name]
        warnings.warn(f"fastgrad.kernels.{name} is deprecated; use fastgrad.kernels.{new} (same function)",
                      DeprecationWarning, stacklevel=2)
        return __getattr__(new)
    raise AttributeError(f"module 'fastgrad.kernels' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
