"""Overflow-safe scalar math for kernels: sigmoid, softplus, log-sum-exp.

All functions are ``@njit(inline="always")`` scalar functions so that LLVM can
vectorise the loops that call them; they never overflow for any finite input
and return exact limits for +-inf.
"""
import math

import numpy as np
from numba import njit

__all__ = ["sigmoid", "softplus", "log_sigmoid", "softplus_sigmoid", "logsumexp",
           "fast_exp", "fast_log1p_unit", "fast_softplus_sigmoid", "fast_exp_neg", "fast_log1p_small",
           "fast_softplus64", "fast_softplus_sigmoid64", "fast_exp_neg32", "fast_log1p_small32", "fast_softplus32",
           "fast_softplus_sigmoid32"]


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


# ----------------------------------------------------------------------------- exp of non-positive arguments
#
# The kernels only ever need ``exp(-|x|)``. Restricting the argument to
# ``x <= 0`` removes the overflow clamp and the NaN select, and results below
# the smallest normal number are flushed to 0 (absolute error < 2.3e-308 in
# float64, 1.2e-38 in float32), so a single scale factor 2^k suffices. The
# integer k comes from the "shifter" trick: adding 1.5 * 2^52 (+ the exponent
# bias) rounds x / ln 2 to an integer that sits in the low mantissa bits, and
# shifting those bits into the exponent field gives 2^k without any
# float -> int conversion (which AVX2 cannot do 4-wide for int64). Polynomials
# are least-squares fits with minimax-like (Lawson) weights of relative error.

@_intrinsic
def _pow2_from_shifted(typingctx, kd):
    """``2^k`` from ``kd = k + bias + 1.5 * 2^p`` (p = 52 / 23): shift the mantissa bits into the exponent."""
    if not isinstance(kd, _types.Float):
        return None
    width, mant = (64, 52) if kd.bitwidth == 64 else (32, 23)

    def codegen(context, builder, signature, args):
        import llvmlite.ir as ir
        ity = ir.IntType(width)
        bits = builder.bitcast(args[0], ity)
        bits = builder.shl(bits, ity(mant))
        return builder.bitcast(bits, context.get_value_type(kd))

    return kd(kd), codegen


_SHIFT64 = 6755399441055744.0 + 1023.0      # 1.5 * 2^52 + exponent bias
_EXPNEG_LO = -708.3964185322641          # log(2^-1022): exp of anything smaller is not a normal float64
# exp(r) = 1 + r + r^2 P(r) on |r| <= ln2 / 2, approximation error below 0.03 ulp (degree 11)
_E2, _E3, _E4, _E5 = 0.5000000000000011, 0.16666666666666397, 0.04166666666652654, 0.008333333333515264
_E6, _E7, _E8 = 0.0013888888944764016, 0.0001984126945309947, 2.4801491757833258e-05
_E9, _E10, _E11 = 2.755763624138662e-06, 2.7630771175860744e-07, 2.498437149234198e-08


@njit(cache=True, error_model="numpy", inline="always")
def fast_exp_neg(x):
    """``exp(x)`` for ``x <= 0`` in float64 from arithmetic only (vectorises; no int conversion).

    Relative error below 2 ulp for ``x >= -708.3964`` (= log of the smallest normal); smaller ``x`` (whose
    exponentials are subnormal or 0) give exactly 0, ``-inf`` gives 0.
    Positive ``x`` up to 709 are also correct (no overflow check); NaN gives 0.
    """
    xc = max(x, _EXPNEG_LO)
    kd = xc * _LOG2E + _SHIFT64
    k = kd - _SHIFT64
    r = (xc - k * _LN2_HI) - k * _LN2_LO
    # Estrin's scheme (short dependency chains: the loops are latency-bound with Horner)
    r2 = r * r
    r4 = r2 * r2
    b0 = (_E2 + _E3 * r) + (_E4 + _E5 * r) * r2
    b1 = (_E6 + _E7 * r) + (_E8 + _E9 * r) * r2
    b2 = _E10 + _E11 * r
    p = b0 + (b1 + b2 * r4) * r4
    p = p * r2 + r
    out = (p + 1.0) * _pow2_from_shifted(kd)
    return out if x >= _EXPNEG_LO else 0.0


# log1p(e) = 2 atanh(s), s = e / (2 + e) in [0, 1/3]: 2 s + s w Q(w), w = s^2 <= 1/9 (degree 9,
# approximation error below 0.01 ulp)
_Q0, _Q1, _Q2, _Q3 = 0.6666666666666634, 0.400000000001428, 0.2857142854973924, 0.22222223850278214
_Q4, _Q5, _Q6 = 0.1818174817612253, 0.1538646904511342, 0.133021651737982
_Q7, _Q8, _Q9 = 0.12096705587401418, 0.08380786566090775, 0.1694386974291674


@njit(cache=True, error_model="numpy", inline="always")
def fast_log1p_small(e):
    """``log(1 + e)`` for ``0 <= e <= 1``: one division and a polynomial (vectorises).

    ``log1p(e) = 2 atanh(s)`` with ``s = e / (2 + e)``; relative error below
    2 ulp, tiny ``e`` included (no cancellation). Outside ``[0, 1]`` the result
    is meaningless.
    """
    s = e / (2.0 + e)
    w = s * s
    w2 = w * w
    w4 = w2 * w2
    c0 = (_Q0 + _Q1 * w) + (_Q2 + _Q3 * w) * w2
    c1 = (_Q4 + _Q5 * w) + (_Q6 + _Q7 * w) * w2
    q = c0 + (c1 + (_Q8 + _Q9 * w) * w4) * w4
    return (s + s) + (s * w) * q


@njit(cache=True, error_model="numpy", inline="always")
def fast_softplus_sigmoid64(x):
    """``(softplus(x), sigmoid(x))`` from :func:`fast_exp_neg` and :func:`fast_log1p_small`.

    As :func:`fast_softplus_sigmoid` (same accuracy, never overflows,
    ``-inf -> (0, 0)``, ``+inf -> (inf, 1)``) but cheaper: no clamp or NaN
    handling in the exponential, two divisions. ``exp(-|x|)`` below 2.2e-308
    is flushed to 0 (a change below 2.3e-308 in absolute value).
    """
    e = fast_exp_neg(-abs(x))
    inv = 1.0 / (1.0 + e)
    sp = max(x, 0.0) + fast_log1p_small(e)
    s = inv if x >= 0.0 else e * inv
    return sp, s


@njit(cache=True, error_model="numpy", inline="always")
def fast_softplus64(x):
    """``softplus(x) = log(1 + exp(x))`` from :func:`fast_exp_neg` and :func:`fast_log1p_small` (one division)."""
    return max(x, 0.0) + fast_log1p_small(fast_exp_neg(-abs(x)))


# ----------------------------------------------------------------------------- float32 versions
#
# Every constant is a float32 global, so the arithmetic stays float32 (8 lanes
# per AVX2 register); a bare Python float literal would promote to float64.

_F32 = np.float32
_F0, _F1, _F2 = _F32(0.0), _F32(1.0), _F32(2.0)
_SHIFT32 = _F32(12582912.0 + 127.0)          # 1.5 * 2^23 + exponent bias
_EXPNEG_LO32 = _F32(-87.33654)              # ~log(2^-126): below, not a normal float32
_LOG2E32 = _F32(1.4426950408889634)
_LN2_HI32 = _F32(0.693359375)                 # 9 significant bits: k * _LN2_HI32 exact for |k| < 2^15
_LN2_LO32 = _F32(-2.12194440e-4)
_G2, _G3, _G4 = _F32(0.4999999403953552), _F32(0.1666652113199234), _F32(0.041668348014354706)
_G5, _G6 = _F32(0.00836872961372137), _F32(0.0013817580183967948)
_P0, _P1, _P2, _P3 = _F32(0.6666641235351562), _F32(0.40021753311157227), _F32(0.27998146414756775), \
    _F32(0.28029865026474)


@njit(cache=True, error_model="numpy", inline="always")
def fast_exp_neg32(x):
    """float32 ``exp(x)`` for ``x <= 0`` (see :func:`fast_exp_neg`): relative error
    below 2 float32 ulp for ``x >= -87.3365``, 0 below (and for ``-inf``)."""
    xc = max(x, _EXPNEG_LO32)
    kd = xc * _LOG2E32 + _SHIFT32
    k = kd - _SHIFT32
    r = (xc - k * _LN2_HI32) - k * _LN2_LO32
    r2 = r * r
    p = (_G2 + _G3 * r) + ((_G4 + _G5 * r) + _G6 * r2) * r2
    p = p * r2 + r
    out = (p + _F1) * _pow2_from_shifted(kd)
    return out if x >= _EXPNEG_LO32 else _F0


@njit(cache=True, error_model="numpy", inline="always")
def fast_log1p_small32(e):
    """float32 ``log(1 + e)`` for ``0 <= e <= 1`` (see :func:`fast_log1p_small`)."""
    s = e / (_F2 + e)
    w = s * s
    q = (_P0 + _P1 * w) + (_P2 + _P3 * w) * (w * w)
    return (s + s) + (s * w) * q


@njit(cache=True, error_model="numpy", inline="always")
def fast_softplus_sigmoid32(x):
    """float32 ``(softplus(x), sigmoid(x))`` for a float32 ``x`` (see :func:`fast_softplus_sigmoid64`)."""
    e = fast_exp_neg32(-abs(x))
    inv = _F1 / (_F1 + e)
    sp = max(x, _F0) + fast_log1p_small32(e)
    s = inv if x >= _F0 else e * inv
    return sp, s


@njit(cache=True, error_model="numpy", inline="always")
def fast_softplus32(x):
    """float32 ``softplus(x)`` for a float32 ``x`` (see :func:`fast_softplus64`)."""
    return max(x, _F0) + fast_log1p_small32(fast_exp_neg32(-abs(x)))


# Names of the 0.1 releases (deprecated: fastgrad.kernels warns when they are used).
fast_softplus_sigmoid_v2 = fast_softplus_sigmoid64
fast_softplus_v2 = fast_softplus64
