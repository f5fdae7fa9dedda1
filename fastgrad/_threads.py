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
