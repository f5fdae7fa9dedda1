"""Input checks shared by all front-ends.

Every check raises ``ValueError`` or ``TypeError`` whose message names the
argument, so that users never see a Numba traceback for bad input.
"""
import numbers

import numpy as np

__all__ = [
    "check_scalar", "check_random_state", "as_float_array", "check_finite",
    "check_consistent_length", "check_choice",
]


def check_scalar(value, name, *, kind="real", lo=None, hi=None, lo_open=False, hi_open=False):
    """Validate a scalar hyper-parameter and return it as float or int.

    Parameters
    ----------
    value : object
        The value given by the user.
    name : str
        Argument name used in the error message.
    kind : {"real", "int"}
        ``"int"`` accepts integers only (bool is rejected).
    lo, hi : float, optional
        Bounds; ``lo_open``/``hi_open`` make them strict.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a {'integer' if kind == 'int' else 'number'}, got bool")
    if kind == "int":
        if not isinstance(value, numbers.Integral):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
        value = int(value)
    else:
        if not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        value = float(value)
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if lo is not None and (value < lo or (lo_open and value == lo)):
        raise ValueError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and (value > hi or (hi_open and value == hi)):
        raise ValueError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {value}")
    return value


def check_random_state(random_state, name="random_state"):
    """Turn None, an int or a ``numpy.random.Generator`` into a Generator."""
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, (bool, np.bool_)):
        raise TypeError(f"{name} must be None, an int or a numpy.random.Generator, got bool")
    if isinstance(random_state, numbers.Integral):
        if random_state < 0:
            raise ValueError(f"{name} must be non-negative, got {random_state}")
        return np.random.default_rng(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**31 - 1))
    raise TypeError(
        f"{name} must be None, an int or a numpy.random.Generator, got {type(random_state).__name__}")


def as_float_array(x, name, *, ndim=None, dtype=np.float64, allow_nan=False, copy=False):
    """Convert to a C-contiguous float array, checking ndim and finiteness."""
    try:
        arr = np.array(x, dtype=dtype, copy=copy, order="C") if copy else np.ascontiguousarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric array-like: {exc}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must be {' or '.join(map(str, allowed))}-dimensional, got shape {arr.shape}")
    check_finite(arr, name, allow_nan=allow_nan)
    return arr


def check_finite(arr, name, *, allow_nan=False):
    """Raise ``ValueError`` if ``arr`` has inf (or NaN unless ``allow_nan``)."""
    if allow_nan:
        if np.isinf(arr).any():
            raise ValueError(f"{name} contains infinite values")
    elif not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def check_consistent_length(**arrays):
    """Raise ``ValueError`` unless all arrays have the same first dimension."""
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k}={n}" for k, n in lengths.items())
        raise ValueError(f"inconsistent lengths: {desc}")


def check_choice(value, name, choices):
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(map(str, choices))}, got {value!r}")
    return value
