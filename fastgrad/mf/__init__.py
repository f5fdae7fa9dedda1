"""Biased matrix factorisation trained by (parallel) stochastic gradient descent.

Model: ``r_hat(u, i) = mu + bu[u] + bi[i] + P[u] . Q[i]`` where ``mu`` is the
training mean (not learned). Each observed rating contributes the per-rating loss

``f = e^2 + reg (||P[u]||^2 + ||Q[i]||^2) + reg_bias (bu[u]^2 + bi[i]^2)``,
``e = r - r_hat``,

and SGD moves every parameter by ``-(lr / 2) * grad f`` (the factor 2 of the
gradient is folded into the learning rate, exactly as in scikit-surprise's
``SVD``, whose defaults are used here). The reported ``objective`` is the mean
of ``f`` over the training ratings.

With more than one thread, epochs follow a block-stratified schedule (DSGD /
FPSG): users and items are split into ``B`` blocks each and the ``B`` blocks of
one stratum -- pairwise disjoint in users and items -- run in parallel, so no
two threads ever update the same row. A fixed ``random_state`` and ``n_blocks``
(by default ``2 * n_threads``, more for large data) reproduce a fit exactly. The epochs work on a copy
of the parameters whose rows are relabelled block by block (so the threads write
to disjoint memory); it is made once per fit and copied back at the end (and
around every callback).

Examples
--------
>>> from fastgrad import mf
>>> model = mf.fit(users, items, ratings, n_factors=50, random_state=0)  # doctest: +SKIP
>>> model.predict(["alice"], ["matrix"])                                  # doctest: +SKIP
"""
from ._model import (  # noqa: F401
    fit, fit_svdpp, MFModel, SVDppModel,
    load, simulate, as_triples,
)

__all__ = [
    'fit', 'fit_svdpp', 'MFModel', 'SVDppModel', 'load',
    'simulate', 'as_triples',
]
