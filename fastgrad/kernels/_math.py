"""Overflow-safe scalar math for kernels: sigmoid, softplus, log-sum-exp.

All functions are ``@njit(inline="always")`` scalar functions so that LLVM can
vectorise the loops that call them; they never overflow for any finite input
and return exact limits for +-inf.
"""
import math

import numpy as np
from numba import njit

__all__ = ["sigmoid", "softplus", "log_sigmoid", "softplus_sigmoid", "logsumexp",
           "fast_exp", "fast_log1p_unit", "fast_softplus_sigmoid"]


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


# ----------------------------------------------------------------------------- vectorisable exp / log1p
#
# ``math.exp``/``math.log1p`` compile to calls into libm, which LLVM cannot
# vectorise (this llvmlite has no SVML). The functions below use only
# arithmetic, ``rint`` and an int64 -> float64 bit cast, so loops calling them
# vectorise. Kernels that call them may use ``fastmath={"reassoc", "contract"}``
# (needed to vectorise sums); without ``nsz`` LLVM does not refactor the
# Cody-Waite reduction or the log1p correction, and the accuracy tests run
# these functions inside exactly such a fastmath loop. Never call them from a
# kernel with full ``fastmath=True`` (``nnan``/``ninf`` would drop the NaN/inf
# handling).

from numba import types as _types
from numba.extending import intrinsic as _intrinsic


@_intrinsic
def _bits_to_float64(typingctx, bits):
    """Reinterpret the 64 bits of an int64 as a float64 (no conversion)."""
    if not isinstance(bits, _types.Integer) or bits.bitwidth != 64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(_types.float64))

    return _types.float64(bits), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01   # high bits of ln 2 (fdlibm): k * _LN2_HI is exact for |k| < 2^11
_LN2_LO = 1.90821492927058770002e-10
_EXP_HI = 709.8   # exp(709.8) overflows to inf, exp(709.78) does not
_EXP_LO = -745.2  # exp(-745.2) rounds to 0


@njit(cache=True, error_model="numpy")
def fast_exp(x):
    """``exp(x)`` in float64 from arithmetic only, so that loops calling it vectorise.

    Range reduction ``x = k ln2 + r`` with ``|r| <= ln2 / 2`` (Cody-Waite split
    of ln 2), a degree-13 Taylor polynomial for ``exp(r)`` and the scale ``2^k``
    built from its bit pattern as two factors ``2^(k//2) * 2^(k - k//2)`` so that
    subnormal results and ``k = 1024`` are correct. Relative error about 1 ulp on
    normal results; ``x > 709.79`` gives ``inf``, ``x < -745.14`` gives 0, NaN
    gives NaN, ``+-inf`` give ``inf`` / 0.
    """
    xc = min(max(x, _EXP_LO), _EXP_HI)
    k = np.rint(xc * _LOG2E)
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    ki = np.int64(k)
    k1 = ki >> 1
    k2 = ki - k1
    s1 = _bits_to_float64((k1 + 1023) << 52)
    s2 = _bits_to_float64((k2 + 1023) << 52)
    out = (p * s1) * s2
    return out if x == x else x


@njit(cache=True, error_model="numpy", inline="always")
def _log1p_unit_parts(e, inv_u):
    u = 1.0 + e
    c = (e - (u - 1.0)) * inv_u  # rounding error of 1 + e, to first order
    big = u > 1.4142135623730951
    f = 0.5 * u if big else u
    m = 0.6931471805599453 if big else 0.0
    s = (f - 1.0) / (f + 1.0)
    s2 = s * s
    q = 2.0 / 21.0  # next term 2 s^23 / 23 < 1e-18 s
    q = q * s2 + 2.0 / 19.0
    q = q * s2 + 2.0 / 17.0
    q = q * s2 + 2.0 / 15.0
    q = q * s2 + 2.0 / 13.0
    q = q * s2 + 2.0 / 11.0
    q = q * s2 + 2.0 / 9.0
    q = q * s2 + 2.0 / 7.0
    q = q * s2 + 2.0 / 5.0
    q = q * s2 + 2.0 / 3.0
    return m + (2.0 * s + s * s2 * q) + c


@njit(cache=True, error_model="numpy")
def fast_log1p_unit(e):
    """``log(1 + e)`` for ``0 <= e <= 1`` from arithmetic only (vectorises).

    ``u = 1 + e`` is split as ``2^m f`` with ``f`` in ``[sqrt(2)/2, sqrt(2)]``,
    ``log f = 2 atanh(s)`` with ``s = (f - 1) / (f + 1)``, ``|s| <= 0.172``, by
    its odd series, and the rounding error of ``1 + e`` is added back as
    ``(e - (u - 1)) / u`` (as fdlibm's log1p), so tiny ``e`` keep full relative
    accuracy. Outside ``[0, 1]`` the result is meaningless.
    """
    return _log1p_unit_parts(e, 1.0 / (1.0 + e))


@njit(cache=True, error_model="numpy", inline="always")
def fast_softplus_sigmoid(x):
    """``(softplus(x), sigmoid(x))`` from one :func:`fast_exp` (vectorisable).

    Never overflows; ``x = -inf`` gives ``(0, 0)``, ``x = +inf`` gives ``(inf, 1)``.
    Inlined at Numba level (otherwise LLVM keeps the call, and the loop
    calling it does not vectorise).
    """
    e = fast_exp(-abs(x))
    inv = 1.0 / (1.0 + e)
    sp = max(x, 0.0) + _log1p_unit_parts(e, inv)
    s = inv if x >= 0.0 else e * inv
    return sp, s
