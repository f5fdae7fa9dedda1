"""MF at MovieLens-20M's shape: one epoch's time and the peak memory of a whole fit.

A MovieLens-shaped set (``datasets.make_ratings``: 138,493 users, 26,744 items,
20,000,263 heavy-tailed ratings), fitted with ``mf.fit`` defaults (100 factors) for
``n_epochs = 0, 1, 3`` in one process per dtype: the first epoch's time (it includes the
shuffle, ``shuffle="once"``) is the 1-epoch fit less the 0-epoch one, a later epoch's the
slope between 1 and 3 epochs; the peak memory is the process's maximum resident set (data
included).

    python benchmarks/mf_scale.py                  # float32 and float64, 2 threads
    python benchmarks/mf_scale.py float64 --threads 1
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import json, resource, sys, time
import numpy as np
from fastgrad import mf
from fastgrad.datasets import make_ratings
dtype, threads = np.dtype(sys.argv[1]), int(sys.argv[2])
t0 = time.perf_counter()
u, i, r = make_ratings(138_493, 26_744, 20_000_263, random_state=0)
t_data = time.perf_counter() - t0
mf.fit(u[:100_000], i[:100_000], r[:100_000], n_epochs=1, dtype=dtype, n_threads=threads)   # compile
times = {}
for ep in (0, 1, 3):
    t0 = time.perf_counter()
    m = mf.fit(u, i, r, n_epochs=ep, dtype=dtype, n_threads=threads, random_state=0)
    times[ep] = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2      # KiB -> GiB
print("@@" + json.dumps(dict(data_s=t_data, times=times, rss_gib=rss, n_blocks=m.params["n_blocks"],
                             train_rmse=float(m.train_rmse[-1]))))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dtypes", nargs="*", default=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for dt in a.dtypes:
        out = subprocess.run([sys.executable, "-c", _CHILD, dt, str(a.threads)], env=env,
                             capture_output=True, text=True, check=True)
        res = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("@@")][-1][2:])
        t = {int(k): v for k, v in res["times"].items()}
        epoch = (t[3] - t[1]) / 2
        print(f"{dt}: {a.threads} threads, B={res['n_blocks']}: first epoch (with the shuffle) "
              f"{t[1] - t[0]:.2f} s, later epochs {epoch:.2f} s "
              f"(fits of 0/1/3 epochs: {t[0]:.2f}/{t[1]:.2f}/{t[3]:.2f} s), peak RSS {res['rss_gib']:.2f} GiB "
              f"(data made in {res['data_s']:.1f} s), train RMSE after 3 epochs {res['train_rmse']:.4f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
