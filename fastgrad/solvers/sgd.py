"""Mini-batch stochastic gradient methods: plain SGD, AdaGrad and Adam."""
import numpy as np

from .._validation import check_choice, check_random_state, check_scalar
from ._common import Progress, SolverResult, relative_change, warn_not_converged

__all__ = ["sgd"]

_METHODS = ("sgd", "adagrad", "adam")


def sgd(grad_batch, x0, n_samples, *, method="sgd", learning_rate=0.01, batch_size=32,
        n_epochs=100, decay=0.0, beta1=0.9, beta2=0.999, eps=1e-8, fun_value=None, tol=0.0,
        shuffle=True, random_state=None, callback=None, verbose=False, warn=True, name=None):
    """Minimise an average of per-sample losses by mini-batch stochastic gradients.

    Every epoch visits the ``n_samples`` indices once, in mini-batches of
    ``batch_size`` (reshuffled each epoch if ``shuffle``), and updates ``x``
    after each batch with one of three step rules (``g`` the batch gradient,
    ``k`` the epoch, ``s`` the update counter from 1):

    - ``"sgd"``: ``x -= lr_k g`` with ``lr_k = learning_rate / (1 + decay k)``;
    - ``"adagrad"``: ``G += g^2``; ``x -= lr_k g / (sqrt(G) + eps)`` (Duchi et al. 2011);
    - ``"adam"``: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``,
      ``x -= lr_k (m / (1-b1^s)) / (sqrt(v / (1-b2^s)) + eps)`` (Kingma & Ba 2015).

    Parameters
    ----------
    grad_batch : callable
        ``grad_batch(x, idx) -> g``: gradient of the objective estimated on the
        samples ``idx`` (an int64 array), e.g. the batch mean of the per-sample
        loss gradients plus the penalty gradient.
    x0 : ndarray, shape (m,)
        Starting point (not modified).
    n_samples : int
        Number of samples the indices run over.
    method : {"sgd", "adagrad", "adam"}, default="sgd"
    learning_rate : float, default=0.01
    batch_size : int, default=32
    n_epochs : int, default=100
    decay : float, default=0.0
        Per-epoch learning-rate decay (see above).
    beta1, beta2, eps : float
        Adam / AdaGrad constants.
    fun_value : callable, optional
        ``fun_value(x) -> f``: full objective, evaluated once per epoch for
        ``history`` and the ``tol`` stopping rule (``history`` is NaN without it).
    tol : float, default=0.0
        Stop when the relative objective change between epochs is at most
        ``tol`` (needs ``fun_value``; 0 runs all epochs).
    shuffle : bool, default=True
    random_state : None, int or numpy.random.Generator
        Seeds the shuffling; a fixed value reproduces a run exactly.
    callback : callable, optional
        ``callback(epoch, x)``; returning ``True`` stops.
    verbose, warn : bool
        Progress output; a :class:`fastgrad.ConvergenceWarning` is emitted only
        if ``tol > 0`` was not met within ``n_epochs``.
    name : str, optional

    Returns
    -------
    SolverResult
        ``n_iter`` counts epochs; ``info`` holds ``n_updates``. With ``tol=0``
        (a fixed budget of epochs) a run that spends the budget counts as
        converged.

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad.solvers import sgd
    >>> rng = np.random.default_rng(0); A = rng.normal(size=(200, 3)); b = A @ np.array([1.0, -2.0, 0.5])
    >>> gb = lambda x, idx: A[idx].T @ (A[idx] @ x - b[idx]) / len(idx)
    >>> res = sgd(gb, np.zeros(3), 200, learning_rate=0.1, n_epochs=50, random_state=0)
    >>> bool(np.allclose(res.x, [1.0, -2.0, 0.5], atol=1e-6))
    True
    """
    method = check_choice(method, "method", _METHODS)
    name = name or method
    n_samples = check_scalar(n_samples, "n_samples", kind="int", lo=1)
    learning_rate = check_scalar(learning_rate, "learning_rate", lo=0.0, lo_open=True)
    batch_size = check_scalar(batch_size, "batch_size", kind="int", lo=1)
    n_epochs = check_scalar(n_epochs, "n_epochs", kind="int", lo=0)
    decay = check_scalar(decay, "decay", lo=0.0)
    beta1 = check_scalar(beta1, "beta1", lo=0.0, hi=1.0, hi_open=True)
    beta2 = check_scalar(beta2, "beta2", lo=0.0, hi=1.0, hi_open=True)
    eps = check_scalar(eps, "eps", lo=0.0, lo_open=True)
    tol = check_scalar(tol, "tol", lo=0.0)
    rng = check_random_state(random_state)
    x = np.array(x0, dtype=np.float64, copy=True).ravel()
    m1 = np.zeros_like(x)
    m2 = np.zeros_like(x)
    f = float(fun_value(x)) if fun_value is not None else np.nan
    history = [f]
    order = np.arange(n_samples, dtype=np.int64)
    s = 0
    converged = False
    message = "n_epochs reached"
    progress = Progress(verbose, n_epochs, name)
    epoch = 0
    try:
        while epoch < n_epochs:
            if shuffle:
                rng.shuffle(order)
            lr = learning_rate / (1.0 + decay * epoch)
            for start in range(0, n_samples, batch_size):
                idx = order[start:start + batch_size]
                g = np.asarray(grad_batch(x, idx), dtype=np.float64).ravel()
                s += 1
                if method == "sgd":
                    x -= lr * g
                elif method == "adagrad":
                    m2 += g * g
                    x -= lr * g / (np.sqrt(m2) + eps)
                else:
                    m1 *= beta1
                    m1 += (1.0 - beta1) * g
                    m2 *= beta2
                    m2 += (1.0 - beta2) * g * g
                    mhat = m1 / (1.0 - beta1 ** s)
                    vhat = m2 / (1.0 - beta2 ** s)
                    x -= lr * mhat / (np.sqrt(vhat) + eps)
            if not np.all(np.isfinite(x)):
                raise FloatingPointError(
                    f"{name} diverged (non-finite parameters in epoch {epoch + 1}); "
                    "lower learning_rate")
            epoch += 1
            f_new = float(fun_value(x)) if fun_value is not None else np.nan
            history.append(f_new)
            progress.update(epoch, f_new)
            done = tol > 0 and fun_value is not None and relative_change(f, f_new) <= tol
            f = f_new
            if done:
                converged = True
                message = "relative objective change below tol"
                break
            if callback is not None and callback(epoch, x):
                message = "stopped by callback"
                break
    finally:
        progress.close()
    if not converged and tol > 0 and warn and message == "n_epochs reached":
        warn_not_converged(name, n_epochs)
    if tol == 0 and message == "n_epochs reached":
        converged = True  # a fixed budget was asked for and spent
    return SolverResult(x=x, objective=f, n_iter=epoch, converged=converged,
                        history=np.asarray(history), message=message,
                        info={"n_updates": s})
