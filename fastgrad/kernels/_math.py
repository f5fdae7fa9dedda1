"""Overflow-safe scalar math for kernels: sigmoid, softplus, log-sum-exp.

All functions are ``@njit(inline="always")`` scalar functions so that LLVM can
vectorise the loops that call them; they never overflow for any finite input
and return exact limits for +-inf.
"""
import math

import numpy as np
from numba import njit

__all__ = ["sigmoid", "softplus", "log_sigmoid", "softplus_sigmoid", "logsumexp"]


@njit(cache=True, inline="always")
def softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True, inline="always")
def sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def log_sigmoid(x):
    """``log(sigmoid(x)) = -softplus(-x)``."""
    return -softplus(-x)


@njit(cache=True, inline="always")
def softplus_sigmoid(x):
    """Return ``(softplus(x), sigmoid(x))`` sharing one ``exp`` call."""
    e = math.exp(-abs(x))
    sp = max(x, 0.0) + math.log1p(e)
    inv = 1.0 / (1.0 + e)
    s = inv if x >= 0.0 else e * inv
    return sp, s


@njit(cache=True)
def logsumexp(a):
    """``log(sum(exp(a)))`` of a 1-D array, stable for any finite entries."""
    n = a.shape[0]
    if n == 0:
        return -np.inf
    m = a[0]
    for i in range(1, n):
        if a[i] > m:
            m = a[i]
    if not np.isfinite(m):
        return m
    s = 0.0
    for i in range(n):
        s += math.exp(a[i] - m)
    return m + math.log(s)
