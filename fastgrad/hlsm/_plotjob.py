"""The command line's plot, drawn in a second process while the fit runs.

Importing matplotlib and drawing the figure took about a third of a warm
``python -m fastgrad hlsm`` run, all of it after the fit. :func:`start` launches
a Python process that imports matplotlib (and builds nothing else) while this
process imports numba and fits; :meth:`PlotJob.send` then hands it the fit's
arrays to draw and save, and :meth:`PlotJob.wait` collects the outcome. The child
imports only numpy, matplotlib and :mod:`fastgrad.hlsm._plot` (and numba only on a first
run, see below). :meth:`PlotJob.prepare` lets it build the empty figure while the fit runs.

If the child cannot be started or fails for any reason other than a missing
matplotlib, the caller draws in its own process instead (:func:`draw_here`), so
the output does not depend on which process drew it.

On a first run (no Numba cache yet: :func:`first_fit_compiles`) the child first
compiles the fit's kernel into the cache on the second core, while this process encodes
the layers: ``start(precompile="pairs")`` compiles
:func:`fastgrad.kernels.hlsm.hlsm_nll_grad_ext_pairs` (the whole kernel of a small
undirected fit), ``start(precompile="rows")`` :func:`fastgrad.kernels.hlsm.compile_ext_rows`
(about half of the compilation of the row kernels the other fits use).
:meth:`PlotJob.wait_compiled` then waits for it before the fit asks for the kernel,
which Numba loads from the cache instead of compiling it again.
"""
import os
import pickle
import subprocess
import sys
import types

import numpy as np

# the child ends without the interpreter's teardown once its output is flushed (the PNG is closed
# by then): with matplotlib loaded that took 0.15-0.2 s, all of it at the end of the command
_CHILD = ("import os, sys; from fastgrad.hlsm._plotjob import _serve; _serve({precompile}); "
          "sys.stdout.flush(); sys.stderr.flush(); os._exit(0)")
#: attributes of a fit that :func:`fastgrad.hlsm._plot._plot_hlsm` reads
_FIELDS = ("eps", "b", "z", "deviating", "alpha", "lam", "directed", "layers", "nodes",
           "sociality", "sender", "receiver")


#: what ``start(precompile=...)`` compiles: the cache-index name of the kernel and its compile function
_PRECOMPILE = {"rows": ("_ext_rows", "compile_ext_rows"), "pairs": ("hlsm_nll_grad_ext_pairs", "compile_ext_pairs")}


def fit_kernel(work, directed):
    """``"pairs"`` or ``"rows"``: which kernel a fit of ``work`` = K n^2 dyads compiles first
    (:func:`fastgrad.hlsm._base.uses_pair_kernel`; no numba import)."""
    from ._base import uses_pair_kernel
    return "pairs" if uses_pair_kernel(work, directed) else "rows"


def first_fit_compiles(kernel="rows"):
    """True if ``kernel`` (``"rows"``: what :func:`fastgrad.kernels.hlsm.compile_ext_rows` builds;
    ``"pairs"``: :func:`fastgrad.kernels.hlsm.hlsm_nll_grad_ext_pairs`) has no Numba cache
    files yet (checked without importing numba)."""
    import fastgrad
    from .._numba_cache import has_cache_index
    src = os.path.join(os.path.dirname(os.path.abspath(fastgrad.__file__)), "kernels", "hlsm.py")
    return not has_cache_index(src, _PRECOMPILE[kernel][0])


def start(precompile=False):
    """A :class:`PlotJob` whose child is importing matplotlib (after compiling the fit's
    kernel: ``precompile`` ``"rows"`` or ``"pairs"``, see the module docstring; ``True``
    means ``"rows"``), or None if it cannot start."""
    if precompile is True:
        precompile = "rows"
    if precompile and precompile not in _PRECOMPILE:
        raise ValueError(f"precompile must be False, 'rows' or 'pairs', got {precompile!r}")
    import site

    import fastgrad
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastgrad.__file__)))
    sites = {os.path.abspath(p) for p in site.getsitepackages() + [site.getusersitepackages()]}
    if root not in sites:      # a source tree or PYTHONPATH entry: the child must import the same fastgrad
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(precompile=repr(precompile or False))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError:
        return None
    return PlotJob(proc, compiling=precompile or False)


def payload(res, Y):
    """What the child needs: the fit's arrays (a plain namespace: unpickling the result
    object would import the model and numba) and the ties as a dense float array."""
    fit = types.SimpleNamespace(**{f: getattr(res, f, None) for f in _FIELDS})
    return fit, np.asarray(getattr(Y, "Y", Y), dtype=np.float64)


class PlotJob:
    """A running child process (see the module docstring)."""

    def __init__(self, proc, compiling=False):
        self.proc = proc
        self.sent = False
        #: the kernel the child is compiling first (``"rows"`` or ``"pairs"``, see :func:`start`),
        #: until it has said that it is done; else False
        self.compiling = compiling

    def wait_compiled(self, timeout=120.0):
        """Wait until the child has compiled its kernel (or gave up, or is gone); True if it
        compiled it. Returns at once if it was not asked to, or was already waited for."""
        if not self.compiling:
            return False
        self.compiling = False
        import selectors
        import time
        # byte by byte from the file descriptor: a buffered readline could swallow what the
        # child prints next, which wait() reads (communicate() reads the descriptor directly)
        fd = self.proc.stdout.fileno()
        line = b""
        end = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                if not sel.select(max(end - time.monotonic(), 0.0)):
                    return False
                byte = os.read(fd, 1)
                if not byte:
                    break
                line += byte
        return line.decode("utf-8", "replace").strip() == "compiled ok"

    def prepare(self, n_panels):
        """Tell the child how many layer panels the plot will have: it builds the empty figure
        (about a third of the drawing time) while the fit runs. False if the child is gone."""
        try:
            pickle.dump(("layout", int(n_panels)), self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def send(self, res, Y, path, **kw):
        """Give the child the fit to draw into ``path``; False if the child is gone."""
        try:
            pickle.dump((payload(res, Y), path, kw), self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.close()
            self.proc.stdin = None           # communicate() would flush it
            self.sent = True
        except (OSError, ValueError):
            self.sent = False
        return self.sent

    def wait(self):
        """``("ok", "")``, ``("import", message)`` if matplotlib is missing, or
        ``("failed", message)``."""
        out, err = self.proc.communicate()
        lines = [ln for ln in out.decode("utf-8", "replace").splitlines()
                 if ln.strip() and not ln.startswith("compiled ")]
        status, _, message = (lines[-1].strip() if lines else "").partition(" ")
        if self.proc.returncode == 0 and status in ("ok", "import"):
            return status, message
        return "failed", (message or err.decode("utf-8", "replace")).strip()

    def cancel(self):
        """Stop the child (nothing to draw)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def draw_here(res, Y, path, **kw):
    """The same plot, drawn in this process."""
    from ._plot import _plot_hlsm
    fit, Yarr = payload(res, Y)
    _plot_hlsm(fit, Y=Yarr, path=path, **kw)


def _serve(precompile=False):
    """The child: (compile the fit's kernel, ``precompile`` ``"rows"`` or ``"pairs"``, then)
    import matplotlib, then draw what arrives on stdin; report on stdout."""
    if precompile:
        try:
            from ..kernels import hlsm as kernels
            getattr(kernels, _PRECOMPILE[precompile][1])()      # start() passes "rows" or "pairs"
            print("compiled ok", flush=True)
        except Exception as exc:  # the parent then compiles it itself
            print(f"compiled failed {type(exc).__name__}: {exc}", flush=True)
    try:
        from matplotlib.figure import Figure  # noqa: F401  (the import is the point)
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        import matplotlib.collections  # noqa: F401
    except ImportError as exc:
        sys.stdin.buffer.read()
        print(f"import plotting needs matplotlib: pip install 'fastgrad[plot]' ({exc})")
        return
    # a throw-away drawing with text and markers while the parent still fits: loads the font
    # cache and the font, and the first-use paths of the Agg renderer
    warm = Figure(figsize=(1, 1))
    FigureCanvasAgg(warm)
    ax = warm.subplots()
    ax.scatter([0.0, 1.0], [0.0, 1.0], s=[4.0, 9.0])
    ax.annotate("", xy=(1, 1), xytext=(0, 0), arrowprops=dict(arrowstyle="->"))
    ax.set_title("warm-up")
    ax.legend(["a"], fontsize=7)
    warm.canvas.draw()
    from ._plot import _bare_figure, _plot_hlsm
    figure = None
    while True:
        try:
            job = pickle.load(sys.stdin.buffer)
        except EOFError:          # the parent had nothing to draw
            return
        if job[0] != "layout":
            break
        figure = _bare_figure(job[1])
    (fit, Yarr), path, kw = job
    try:
        _plot_hlsm(fit, Y=Yarr, path=path, figure=figure, **kw)
    except Exception as exc:      # reported to the parent, which draws in-process instead
        print(f"error {type(exc).__name__}: {exc}")
        return
    print("ok")
