"""The command line's plot, drawn in a second process while the fit runs.

Importing matplotlib and drawing the figure took about a third of a warm
``python -m fastgrad hlsm`` run, all of it after the fit. :func:`start` launches
a Python process that imports matplotlib (and builds nothing else) while this
process imports numba and fits; :meth:`PlotJob.send` then hands it the fit's
arrays to draw and save, and :meth:`PlotJob.wait` collects the outcome. The child
imports only numpy, matplotlib and :mod:`fastgrad.hlsm._plot` (never numba).

If the child cannot be started or fails for any reason other than a missing
matplotlib, the caller draws in its own process instead (:func:`draw_here`), so
the output does not depend on which process drew it.
"""
import os
import pickle
import subprocess
import sys
import types

import numpy as np

_CHILD = "from fastgrad.hlsm._plotjob import _serve; _serve()"
#: attributes of a fit that :func:`fastgrad.hlsm._plot._plot_hlsm` reads
_FIELDS = ("eps", "b", "z", "deviating", "alpha", "lam", "directed", "layers", "nodes",
           "sociality", "sender", "receiver")


def start():
    """A :class:`PlotJob` whose child is importing matplotlib, or None if it cannot start."""
    import site

    import fastgrad
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastgrad.__file__)))
    sites = {os.path.abspath(p) for p in site.getsitepackages() + [site.getusersitepackages()]}
    if root not in sites:      # a source tree or PYTHONPATH entry: the child must import the same fastgrad
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    except OSError:
        return None
    return PlotJob(proc)


def payload(res, Y):
    """What the child needs: the fit's arrays (a plain namespace: unpickling the result
    object would import the model and numba) and the ties as a dense float array."""
    fit = types.SimpleNamespace(**{f: getattr(res, f, None) for f in _FIELDS})
    return fit, np.asarray(getattr(Y, "Y", Y), dtype=np.float64)


class PlotJob:
    """A running child process (see the module docstring)."""

    def __init__(self, proc):
        self.proc = proc
        self.sent = False

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
        status, _, message = out.decode("utf-8", "replace").strip().partition(" ")
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


def _serve():
    """The child: import matplotlib, then draw what arrives on stdin; report on stdout."""
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
    try:
        job = pickle.load(sys.stdin.buffer)
    except EOFError:              # the parent had nothing to draw
        return
    (fit, Yarr), path, kw = job
    from ._plot import _plot_hlsm
    try:
        _plot_hlsm(fit, Y=Yarr, path=path, **kw)
    except Exception as exc:      # reported to the parent, which draws in-process instead
        print(f"error {type(exc).__name__}: {exc}")
        return
    print("ok")
