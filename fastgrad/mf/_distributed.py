"""The MF fit on a Dask cluster: :func:`fastgrad.mf.fit` with the epochs run by
:class:`fastgrad.dask._mf.DSGDTrainer` (the back-end)."""

__all__ = ["fit_mf"]


def fit_mf(client, users, items=None, ratings=None, *, stats=None, max_retries=2, **kwargs):
    """:func:`fastgrad.mf.fit` with the epochs run by distributed stratified SGD on Dask.

    Parameters
    ----------
    client : distributed.Client
        Workers should be processes with one thread each (see :func:`check_client`).
    users, items, ratings
        As for :func:`fastgrad.mf.fit`.
    stats : dict, optional
        Filled with per-epoch ``seconds``, ``bytes_between_workers``,
        ``bytes_to_client``, ``bytes_from_client`` and ``recoveries``.
    max_retries : int, default=2
        Reruns of an epoch after losing workers before giving up.
    **kwargs
        Passed to :func:`fastgrad.mf.fit`. ``n_blocks`` defaults to the number of
        workers (at least 2); a fit equals ``mf.fit(..., n_blocks=B, random_state=s)``
        exactly. ``n_threads`` has no effect on the result. A ``callback`` sees the
        parameters gathered after each epoch and must not modify them in place (the
        workers keep their own copies).

    Returns
    -------
    fastgrad.mf.MFModel

    Raises
    ------
    WorkerLostError
        Workers were lost and the epoch could not be rerun ``max_retries`` times.
    """
    from ..dask._retry import ClientOptions
    from ..dask._setup import get_client
    from .._validation import check_scalar
    from ._model import fit
    max_retries = check_scalar(max_retries, "max_retries", kind="int", lo=0)
    opts = ClientOptions(get_client(client), stats, max_retries)
    return fit(users, items, ratings, client=opts, **kwargs)
