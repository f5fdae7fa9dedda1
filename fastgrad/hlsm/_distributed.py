"""The HLSM fit on a Dask cluster: :func:`fastgrad.hlsm.fit` with the likelihood evaluated by
:class:`fastgrad.dask._hlsm.DaskHLSMEvaluator` (the back-end)."""

__all__ = ["fit_hlsm"]


def fit_hlsm(client, Y, lam, *, stats=None, max_retries=2, **kwargs):
    """:func:`fastgrad.hlsm.fit` with the likelihood evaluated on Dask workers.

    Parameters
    ----------
    client : distributed.Client
        Workers should be processes with one thread each (see :func:`check_client`).
    Y, lam
        As for :func:`fastgrad.hlsm.fit` (dense layers only).
    stats : dict, optional
        Filled with the counters of :class:`DaskHLSMEvaluator` (calls, bytes, seconds).
    max_retries : int, default=2
        Evaluations repeated after losing workers before giving up.
    **kwargs
        Passed to :func:`fastgrad.hlsm.fit`. The initialisation is computed on the
        client from ``Y`` as in the local fit, so the result equals the local fit
        to solver tolerance.

    Returns
    -------
    fastgrad.hlsm.HLSMResult

    Raises
    ------
    WorkerLostError
        Workers were lost and an evaluation failed ``max_retries + 1`` times.
    """
    from ..dask._retry import ClientOptions
    from ..dask._setup import get_client
    from .._validation import check_scalar
    from ._model import fit
    max_retries = check_scalar(max_retries, "max_retries", kind="int", lo=0)
    return fit(Y, lam, client=ClientOptions(get_client(client), stats, max_retries), **kwargs)
