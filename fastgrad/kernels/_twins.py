"""Serial twins: a parallel kernel's own Python function, compiled without ``parallel=True``."""
import types


def serial_twin(py_func, name, doc):
    """A copy of ``py_func`` named ``name``, to be jitted without ``parallel=True``.

    Its ``prange`` loops then run as ``range``: the same iterations in the same order, each
    writing its own partial sums, reduced in the same fixed order, so the twin returns the
    parallel kernel's numbers bit for bit, without the cost of compiling (and launching) the
    parallel version. The new name gives the copy Numba cache files of its own.
    """
    f = types.FunctionType(py_func.__code__, py_func.__globals__, name, py_func.__defaults__,
                           py_func.__closure__)
    f.__qualname__ = name
    f.__module__ = py_func.__module__
    f.__kwdefaults__ = py_func.__kwdefaults__
    f.__doc__ = doc
    return f
