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


def runs_serially(work):
    """True if a kernel call doing ``work`` runs on one thread (small work, or numba set to
    one thread): the front-ends then call a kernel's serial twin, which compiles faster
    and skips the parallel launch."""
    if work < SMALL_WORK:
        return True
    import numba
    return numba.get_num_threads() == 1


_BLAS_STATE = {"key": None, "ctl": None}


def _loaded_libraries_key():
    """A cheap token that changes whenever a shared library may have been loaded or unloaded.

    On glibc, ``dl_iterate_phdr`` hands each callback the loader's load and unload
    counters (``dlpi_adds``, ``dlpi_subs``): one callback call, a few microseconds. On
    macOS, the dyld image count. Elsewhere None, meaning "unknown": the caller then
    re-inspects the libraries on every call (threadpoolctl, about 3 ms).
    """
    fn = _KEY_FN.get("fn", False)
    if fn is False:
        fn = _KEY_FN["fn"] = _make_key_fn()
    return None if fn is None else fn()


_KEY_FN = {}


def _make_key_fn():
    import ctypes
    import sys
    try:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None)
            iterate = libc.dl_iterate_phdr

            class _Info(ctypes.Structure):  # struct dl_phdr_info (64-bit and 32-bit layouts)
                _fields_ = [("addr", ctypes.c_size_t), ("name", ctypes.c_char_p),
                            ("phdr", ctypes.c_void_p), ("phnum", ctypes.c_uint16),
                            ("adds", ctypes.c_ulonglong), ("subs", ctypes.c_ulonglong)]

            need = _Info.subs.offset + ctypes.sizeof(ctypes.c_ulonglong)
            out = [None]
            proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(_Info), ctypes.c_size_t,
                                     ctypes.c_void_p)

            def _cb(info, size, data):
                if size >= need:
                    out[0] = (info[0].adds, info[0].subs)
                else:               # an old loader without the counters: count the objects
                    out[0] = None
                return 1            # the counters are the same in every call: stop at once

            cb = proto(_cb)
            iterate.argtypes = [proto, ctypes.c_void_p]
            iterate.restype = ctypes.c_int

            def key():
                out[0] = None
                iterate(cb, None)
                return out[0]
            key._keep = cb      # keep the callback alive
            if key() is None:
                return None
            return key
        if sys.platform == "darwin":
            count = ctypes.CDLL("/usr/lib/libSystem.B.dylib")._dyld_image_count
            count.restype = ctypes.c_uint32
            return lambda: int(count())
    except Exception:  # no such loader API: re-inspect on every call
        return None
    return None


def _blas_controller():
    """The threadpoolctl controller over the libraries loaded now (None without threadpoolctl).

    Recreated whenever the set of loaded shared libraries may have changed since the
    last call: a library loaded later (SciPy's own OpenBLAS, loaded on the first
    ``scipy.linalg`` import, after NumPy's) is capped too.
    """
    try:
        key = _loaded_libraries_key()
    except Exception:
        key = None
    st = _BLAS_STATE
    if key is not None and st["key"] == key:
        return st["ctl"]
    try:
        from threadpoolctl import ThreadpoolController
        ctl = ThreadpoolController()
    except Exception:  # optional dependency, or a BLAS it cannot inspect
        ctl = None
    st["key"], st["ctl"] = key, ctl
    return ctl


@contextlib.contextmanager
def serial_blas():
    """Run BLAS/LAPACK single-threaded inside the block (if threadpoolctl is installed).

    The heavy passes are Numba kernels with their own thread pool; the BLAS calls
    inside a fit (Gram matrices, Hessians, Cholesky, a few matrix-vector products)
    are small. OpenBLAS's spinning worker threads between Numba parallel regions
    fight Numba's threads for the cores, which slowed GLM and multinomial fits
    2-10x in our measurements on 2 cores. Every BLAS loaded at the time of the
    call is capped (the library list is re-read when the process may have loaded
    a new shared library since the last call). threadpoolctl is optional (the
    ``fastgrad[blas]`` extra; scikit-learn depends on it too): without it, BLAS
    keeps its own thread count.
    """
    ctl = _blas_controller()
    if ctl is None:
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield
