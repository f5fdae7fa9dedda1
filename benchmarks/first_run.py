"""First-run cost: Numba compilation before each family's first result.

Every measurement runs in a fresh Python process. "cold" uses an empty Numba cache
(NUMBA_CACHE_DIR set to a new temporary folder), so every kernel the call needs is
compiled; "cached" is a second process on the same cache folder (kernels loaded
from disk); "warm" repeats the same call inside the cold process (already compiled
in memory: the fit itself). cold - warm is the compilation (and cache writing)
cost, cached - warm the cost of loading cached kernels.

For each family the script also lists the compiled kernels (Numba dispatchers
reachable from fastgrad's modules that hold a compiled signature after the fit)
and how many specialisations each has, so superfluous compilation shows.

    python benchmarks/first_run.py                     # all families + the command
    python benchmarks/first_run.py hlsm glm cli        # a subset
    python benchmarks/first_run.py --kernels hlsm      # also list compiled kernels

Families: hlsm (aucs, lam=10), glm_lasso, glm_logistic, multinomial, mf, cli
(``python -m fastgrad hlsm --dataset aucs --lam 10 --out DIR`` end to end; its Python
bytecode is kept between the runs, as an installed package's is; warm = best of 3).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Each snippet defines run() (one fit on small data) after a shared preamble; data are
# made before the timer starts.
_SETUP = {
    "hlsm": """
from fastgrad import hlsm, datasets
data = datasets.load_aucs()
def run():
    hlsm.fit(data, 10.0, random_state=0)
""",
    "glm_lasso": """
import numpy as np
from fastgrad import glm
rng = np.random.default_rng(0)
X = rng.standard_normal((500, 20)); y = X[:, 0] - 2 * X[:, 1] + rng.standard_normal(500)
def run():
    glm.fit(X, y, loss="squared", lam=0.05, l1_ratio=1.0)
""",
    "glm_logistic": """
import numpy as np
from fastgrad import glm
rng = np.random.default_rng(0)
X = rng.standard_normal((500, 20)); y = (X[:, 0] + rng.standard_normal(500) > 0).astype(float)
def run():
    glm.fit(X, y, loss="logistic", lam=1e-3)
""",
    "multinomial": """
import numpy as np
from fastgrad import multinomial
rng = np.random.default_rng(0)
X = rng.standard_normal((600, 5)); y = np.argmax(X[:, :3] + rng.standard_normal((600, 3)), axis=1)
def run():
    multinomial.fit(X, y)
""",
    "mf": """
import numpy as np
from fastgrad import mf
rng = np.random.default_rng(0)
u = rng.integers(0, 100, 3000); i = rng.integers(0, 80, 3000); r = rng.integers(1, 6, 3000).astype(float)
def run():
    mf.fit(u, i, r, n_factors=10, n_epochs=5, random_state=0)
""",
}

_MEASURE = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
{setup}
t_import = time.perf_counter() - t0
import contextlib
rec = contextlib.nullcontext()
if {list_kernels}:
    from numba.core import event
    rec = event.install_recorder("numba:compile")
with rec as recorder:
    t0 = time.perf_counter(); run(); first = time.perf_counter() - t0
compile_s = {{}}
if {list_kernels}:
    starts = {{}}
    for ts, ev in recorder.buffer:
        d = ev.data["dispatcher"]
        key = (d.py_func.__module__ + "." + d.py_func.__qualname__, str(ev.data["args"]))
        if ev.is_start:
            starts[key] = ts
        elif key in starts:
            compile_s[key[0]] = compile_s.get(key[0], 0.0) + ts - starts.pop(key)
t0 = time.perf_counter(); run(); second = time.perf_counter() - t0
kernels = {{}}
if {list_kernels}:
    from numba.core.dispatcher import Dispatcher
    for modname, mod in list(sys.modules.items()):
        if not modname.startswith("fastgrad") or mod is None:
            continue
        for name, obj in list(vars(mod).items()):
            if isinstance(obj, Dispatcher) and obj.signatures and obj.__module__ == modname:
                kernels[modname + "." + name] = [str(s) for s in obj.signatures]
print("@@" + json.dumps(dict(import_s=t_import, first_s=first, second_s=second, kernels=kernels,
                             compile_s=compile_s)))
"""


def _env(cache_dir):
    env = dict(os.environ)
    env["NUMBA_CACHE_DIR"] = cache_dir
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _measure(family, cache_dir, list_kernels):
    code = _MEASURE.format(setup=_SETUP[family], list_kernels=bool(list_kernels))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=_env(cache_dir), capture_output=True,
                         text=True, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{family} failed:\n{out.stderr}")
    line = [l for l in out.stdout.splitlines() if l.startswith("@@")][-1]
    res = json.loads(line[2:])
    res["process_s"] = wall
    return res


def _cli(cache_dir, out_dir):
    """One run of the command: (wall seconds, CPU seconds of the child). Python may write
    fastgrad's bytecode (the first run does, the next read it), as an installed package has it
    (pip compiles it at install time), even where PYTHONDONTWRITEBYTECODE is set here."""
    import resource
    cmd = [sys.executable, "-m", "fastgrad", "hlsm", "--dataset", "aucs", "--lam", "10", "--out", out_dir]
    env = _env(cache_dir)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if out.returncode != 0:
        raise RuntimeError(f"command failed:\n{out.stderr}")
    if not os.path.exists(os.path.join(out_dir, "hlsm_aucs_plot.png")):
        raise RuntimeError("command wrote no plot")
    return wall, cpu


def main(argv):
    list_kernels = "--kernels" in argv
    names = [a for a in argv if not a.startswith("--")] or list(_SETUP) + ["cli"]
    unknown = set(names) - set(_SETUP) - {"cli"}
    if unknown:
        raise SystemExit(f"unknown: {sorted(unknown)}; choose from {list(_SETUP) + ['cli']}")
    import numba
    print(f"numba {numba.__version__}, {os.cpu_count()} CPUs, load average "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'family':<13} {'import+data':>11} {'cold fit':>9} {'warm fit':>9} {'compile':>8} "
          f"{'cached fit':>10} {'load':>6} {'cold proc':>9} {'cached proc':>11}")
    for fam in names:
        if fam == "cli":
            continue
        with tempfile.TemporaryDirectory(prefix="fastgrad-numba-") as cache:
            cold = _measure(fam, cache, list_kernels)
            cached = _measure(fam, cache, False)
        warm = min(cold["second_s"], cached["second_s"])
        print(f"{fam:<13} {cold['import_s']:10.2f}s {cold['first_s']:8.2f}s {warm:8.3f}s "
              f"{cold['first_s'] - warm:7.2f}s {cached['first_s']:9.3f}s {cached['first_s'] - warm:5.2f}s "
              f"{cold['process_s']:8.2f}s {cached['process_s']:10.2f}s", flush=True)
        if list_kernels:
            # compile seconds include the kernels a kernel calls (nested compilation)
            comp = cold["compile_s"]
            for k in sorted(set(cold["kernels"]) | set(comp), key=lambda k: -comp.get(k, 0.0)):
                sigs = cold["kernels"].get(k, [])
                print(f"    {comp.get(k, 0.0):6.2f}s  {len(sigs)} x {k}" + (f"  {sigs}" if len(sigs) > 1 else ""))
    if "cli" in names:
        with tempfile.TemporaryDirectory(prefix="fastgrad-numba-") as cache, \
                tempfile.TemporaryDirectory(prefix="fastgrad-out-") as out:
            cold = _cli(cache, out)
            warm = min(_cli(cache, out) for _ in range(3))
        print(f"python -m fastgrad hlsm --dataset aucs --lam 10 --out DIR: "
              f"cold cache {cold[0]:.2f} s, warm cache {warm[0]:.2f} s (wall, whole process; "
              f"CPU {cold[1]:.2f} s and {warm[1]:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
