"""Proximal operators.

Each ``prox_*`` solves ``argmin_x  (1/2)||x - v||^2 + t * g(x)`` in closed
form for a penalty ``g``; all accept a step ``t >= 0`` and return a new array.
"""
import numpy as np

__all__ = ["group_l2", "l1", "ridge", "elastic_net"]


def _check_t(t):
    t = float(t)
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"t must be a finite non-negative number, got {t}")
    return t


def group_l2(V, t):
    """Block soft-thresholding of the last axis: prox of ``t * sum ||v_g||_2``.

    Parameters
    ----------
    V : array_like, shape (..., d)
        Each vector along the last axis is one group.
    t : float or array_like
        Threshold (step times penalty), ``t >= 0``; an array of shape ``V.shape[:-1]``
        gives one threshold per group (``inf`` forces the group to zero).

    Returns
    -------
    ndarray
        ``v * max(0, 1 - t / ||v||_2)`` for every group (zero where ``||v|| <= t``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad.prox import group_l2
    >>> group_l2(np.array([[3.0, 4.0], [0.3, 0.4]]), 1.0)
    array([[2.4, 3.2],
           [0. , 0. ]])
    """
    V = np.asarray(V, dtype=np.float64)
    if np.ndim(t) == 0:
        t = _check_t(t)
    else:
        t = np.asarray(t, dtype=np.float64)
        if np.isnan(t).any() or (t < 0).any():
            raise ValueError("t must be non-negative")
        t = np.broadcast_to(t, V.shape[:-1])
    return _group_l2(V, t)


def _group_l2(V, t):
    """:func:`group_l2` without its input checks, for solvers' inner loops: ``V`` a float64
    array (..., d), ``t`` a non-negative float or an array of shape ``V.shape[:-1]``."""
    norms = np.sqrt(np.sum(V * V, axis=-1))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        scale = np.where(norms > t, 1.0 - t / np.where(norms > 0, norms, 1.0), 0.0)
    return V * scale[..., None]


def l1(v, t):
    """Soft-thresholding: prox of ``t * ||x||_1``, ``sign(v) * max(|v| - t, 0)``."""
    v = np.asarray(v, dtype=np.float64)
    t = _check_t(t)
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


def ridge(v, t):
    """Prox of ``(t / 2) * ||x||_2^2``: ``v / (1 + t)``."""
    v = np.asarray(v, dtype=np.float64)
    return v / (1.0 + _check_t(t))


def elastic_net(v, t, l1_ratio):
    """Prox of ``t * (l1_ratio ||x||_1 + (1 - l1_ratio)/2 ||x||_2^2)``."""
    l1_ratio = float(l1_ratio)
    if not 0.0 <= l1_ratio <= 1.0:
        raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio}")
    t = _check_t(t)
    return l1(v, t * l1_ratio) / (1.0 + t * (1.0 - l1_ratio))
