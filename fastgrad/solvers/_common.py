"""Pieces shared by every solver: the result record, progress, warnings."""
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._warnings import ConvergenceWarning


@dataclass
class SolverResult:
    """Outcome of a generic solver.

    Attributes
    ----------
    x : ndarray
        Final iterate (1-D).
    objective : float
        Objective value at ``x`` (smooth part plus penalty).
    n_iter : int
        Iterations performed.
    converged : bool
        Whether the stopping rule was met before ``max_iter``.
    history : ndarray
        Objective after each iteration (``history[0]`` is the start value).
    message : str
        Why the solver stopped.
    info : dict
        Solver-specific extras (e.g. final step size, number of function calls).
    """

    x: np.ndarray
    objective: float
    n_iter: int
    converged: bool
    history: np.ndarray
    message: str = ""
    info: dict = field(default_factory=dict)


class Progress:
    """``verbose`` support: tqdm if installed, else a plain line every few iterations."""

    def __init__(self, verbose, total, desc):
        self.verbose = bool(verbose)
        self.bar = None
        self.desc = desc
        self.t0 = time.perf_counter()
        if self.verbose:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc=desc, leave=False)
            except ImportError:
                self.bar = None

    def update(self, it, value):
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(objective=f"{value:.6g}", refresh=False)
        elif it < 10 or it % 10 == 0:
            print(f"{self.desc} iter {it:5d}  objective {value:.10g}  "
                  f"({time.perf_counter() - self.t0:.2f}s)", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def warn_not_converged(name, max_iter):
    warnings.warn(f"{name} did not converge within max_iter={max_iter} iterations; "
                  "increase max_iter or loosen tol", ConvergenceWarning, stacklevel=3)


def relative_change(old, new):
    return abs(old - new) / max(1.0, abs(old), abs(new))
