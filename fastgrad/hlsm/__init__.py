"""Hierarchical latent space model (HLSM) for multiplex networks.

K layers (relations) over the same n nodes. Node ``i`` has a shared position
``b_i`` and, in layer ``k``, a deviation ``eps_ik``; its layer position is
``z_ik = b_i + eps_ik``. Ties are independent given the positions:

    P(y_ijk = 1) = sigmoid(alpha_k - ||z_ik - z_jk||^2).

:func:`fit` minimises the penalised negative log-likelihood

    nll(b, eps, alpha) + lam * sum_k sum_i ||eps_ik||_2

by accelerated proximal gradient descent. The group-lasso penalty sets whole
deviation vectors exactly to zero: with ``lam`` large enough every node keeps
one position in all layers; smaller ``lam`` lets the nodes whose ties differ
most between layers move in those layers.

Examples
--------
>>> from fastgrad import hlsm, datasets
>>> data = datasets.load_florentine()
>>> res = hlsm.fit(data.Y, lam=2.0, random_state=0)   # doctest: +SKIP
>>> res.deviating.sum(axis=1)                           # doctest: +SKIP
"""
import importlib as _importlib

#: private module -> the public names it defines. The package imports them on first
#: access (PEP 562), so that ``import fastgrad.hlsm`` and its light modules (the command
#: line's argument parser, the plotting code) do not import numba.
_PUBLIC = {
    "_model": ("fit", "fit_path", "lam_max", "dyad_covariates", "procrustes_error", "nll_and_grad",
               "objective", "simulate", "encode_layers", "HLSMResult", "HLSMPath", "HLSMTruth"),
    "_cv": ("fit_cv", "HLSMCV", "holdout_pairs", "HeldOutPairs", "score_pairs", "roc_auc"),
    "_sparse": ("layers_from_edges", "case_control_layers"),
    "_plot": ("plot_hlsm",),
    "_layers": ("Layers",),
    "_options": ("SolverOptions",),
}
_WHERE = {name: mod for mod, names in _PUBLIC.items() for name in names}

#: in this order on the API page
__all__ = [name for names in _PUBLIC.values() for name in names]


def __getattr__(name):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'fastgrad.hlsm' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value          # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
