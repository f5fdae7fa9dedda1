"""Thread-count policy shared by the front-ends."""
import contextlib

# Below this many inner-loop evaluations per kernel call, a parallel launch costs more
# than it saves (and stalls badly when the machine is oversubscribed): run on one thread.
SMALL_WORK = 1_000_000


@contextlib.contextmanager
def threads_for(work):
    """Run the block with numba's current thread count, or one thread if ``work`` is small.

    Results do not depend on the choice: kernels reduce in a fixed order.
    """
    import numba
    if work >= SMALL_WORK:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


_BLAS_CONTROLLER = []


@contextlib.contextmanager
def serial_blas():
    """Run BLAS/LAPACK single-threaded inside the block (if threadpoolctl is installed).

    The heavy passes are Numba kernels with their own thread pool; the BLAS calls
    inside a fit (Gram matrices, Hessians, Cholesky, a few matrix-vector products)
    are small. OpenBLAS's spinning worker threads between Numba parallel regions
    fight Numba's threads for the cores, which slowed GLM and multinomial fits
    2-10x in our measurements on 2 cores. threadpoolctl is optional (the
    ``fastgrad[blas]`` extra; scikit-learn depends on it too): without it, BLAS
    keeps its own thread count.
    """
    if not _BLAS_CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS_CONTROLLER.append(ThreadpoolController())
        except Exception:  # optional dependency, or a BLAS it cannot inspect
            _BLAS_CONTROLLER.append(None)
    ctl = _BLAS_CONTROLLER[0]
    if ctl is None:
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield
