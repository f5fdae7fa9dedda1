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
from ._model import (  # noqa: F401
    fit, fit_path, lam_max, dyad_covariates,
    procrustes_error, nll_and_grad, objective, simulate,
    encode_layers, HLSMResult, HLSMPath, HLSMTruth,
)
from ._cv import HLSMCV, HeldOutPairs, fit_cv, holdout_pairs, roc_auc, score_pairs  # noqa: F401
from ._sparse import layers_from_edges, case_control_layers  # noqa: F401
from ._plot import plot_hlsm  # noqa: F401
from ._layers import Layers  # noqa: F401
from ._options import SolverOptions  # noqa: F401

__all__ = [
    'fit', 'fit_path', 'lam_max', 'dyad_covariates', 'procrustes_error',
    'nll_and_grad', 'objective', 'simulate', 'encode_layers', 'HLSMResult',
    'HLSMPath', 'HLSMTruth', 'fit_cv', 'HLSMCV', 'holdout_pairs',
    'HeldOutPairs', 'score_pairs', 'roc_auc', 'layers_from_edges', 'case_control_layers',
    'plot_hlsm', 'Layers', 'SolverOptions',
]
