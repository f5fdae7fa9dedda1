"""Central-difference gradient checking for any objective."""
import numpy as np

__all__ = ["gradcheck", "numerical_gradient"]


def numerical_gradient(fun, x, *, h=1e-6):
    """Central-difference approximation of the gradient of ``fun`` at ``x``.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> float`` for ``x`` of the shape of ``x``.
    x : array_like
        Point at which to differentiate (any shape; float64 is used).
    h : float, default=1e-6
        Relative step: coordinate ``i`` moves by ``h * max(1, |x_i|)``.

    Returns
    -------
    ndarray
        Array of ``x``'s shape with ``(f(x + s e_i) - f(x - s e_i)) / (2 s)``.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    g = np.empty_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        s = h * max(1.0, abs(old))
        flat[i] = old + s
        fp = float(fun(x))
        flat[i] = old - s
        fm = float(fun(x))
        flat[i] = old
        gflat[i] = (fp - fm) / (2.0 * s)
    return g


def gradcheck(fun, x, grad=None, *, h=1e-6, rtol=1e-5, atol=1e-7, raise_on_fail=False):
    """Compare an analytic gradient with central finite differences.

    Parameters
    ----------
    fun : callable
        Either ``fun(x) -> float`` (then ``grad`` must be given) or
        ``fun(x) -> (float, gradient)``.
    x : array_like
        Point at which to check.
    grad : callable, optional
        ``grad(x) -> array`` of ``x``'s shape. If omitted, ``fun`` must return
        the pair ``(value, gradient)``.
    h : float, default=1e-6
        Relative finite-difference step.
    rtol, atol : float
        Tolerances: the check passes when
        ``|analytic - numeric| <= atol + rtol * max(|numeric|)`` everywhere.
    raise_on_fail : bool, default=False
        Raise ``AssertionError`` instead of returning ``False``.

    Returns
    -------
    ok : bool
        Whether the analytic gradient matches.
    max_abs_err : float
        Largest absolute difference.
    numeric : ndarray
        The finite-difference gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad import gradcheck
    >>> ok, err, _ = gradcheck(lambda x: (x @ x, 2 * x), np.arange(3.0))
    >>> bool(ok)
    True
    """
    x = np.asarray(x, dtype=np.float64)
    if grad is None:
        value = lambda v: fun(v)[0]  # noqa: E731
        analytic = np.asarray(fun(x.copy())[1], dtype=np.float64)
    else:
        value = fun
        analytic = np.asarray(grad(x.copy()), dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"gradient has shape {analytic.shape}, expected {x.shape}")
    numeric = numerical_gradient(value, x, h=h)
    err = np.abs(analytic - numeric)
    scale = float(np.max(np.abs(numeric))) if numeric.size else 0.0
    max_err = float(err.max()) if err.size else 0.0
    ok = bool(np.all(err <= atol + rtol * scale))
    if raise_on_fail and not ok:
        raise AssertionError(f"gradient check failed: max abs error {max_err:.3g} (scale {scale:.3g})")
    return ok, max_err, numeric
