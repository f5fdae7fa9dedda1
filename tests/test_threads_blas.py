"""serial_blas caps every BLAS loaded at the time of the call (issue 14).

Each scenario runs in a fresh interpreter: the test process has long since loaded
every BLAS, so the late-loading case can only be reproduced in a new one.
"""
import json
import subprocess
import sys

import pytest

pytest.importorskip("threadpoolctl")

_SCENARIO = r"""
import json, sys
import numpy as np
from threadpoolctl import threadpool_info

def blas():
    return sorted((d["filepath"], d["num_threads"]) for d in threadpool_info()
                  if d["user_api"] == "blas")

from fastgrad import glm, multinomial
from fastgrad._threads import serial_blas
before = [f for f, _ in blas()]
rng = np.random.default_rng(0)
X = rng.standard_normal((300, 6)); y = X @ rng.standard_normal(6) + rng.standard_normal(300)
glm.path(X, y, n_lams=5)              # first serial_blas call, then loads scipy's BLAS
after_path = [f for f, _ in blas()]
Xm = rng.standard_normal((400, 4)); ym = rng.integers(0, 3, 400)
inside = []
multinomial.fit(Xm, ym, callback=lambda it, st: inside.append(blas()) and False)
with serial_blas():
    direct = blas()
import scipy.linalg                   # (already loaded by glm.path in this version)
outside = blas()
print(json.dumps(dict(before=before, after_path=after_path, inside=inside, direct=direct,
                      outside=outside)))
"""


def _run(code):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_serial_blas_caps_blas_loaded_after_the_first_call():
    r = _run(_SCENARIO)
    assert r["inside"], "callback never ran"
    libs = {f for f, _ in r["direct"]}
    # every BLAS loaded at the time of the call is capped, in the fit and directly
    for snapshot in r["inside"] + [r["direct"]]:
        assert {f for f, _ in snapshot} == libs
        assert all(n == 1 for _, n in snapshot), snapshot
    # and the limits are restored on exit (the test is only meaningful if BLAS has >1 thread)
    outside = dict(r["outside"])
    assert set(outside) == libs
    if all(n == 1 for n in outside.values()):
        pytest.skip("BLAS runs one thread anyway: the cap cannot be observed")


def test_loaded_libraries_key_changes_when_a_library_loads():
    code = r"""
import json, ctypes.util, ctypes
from fastgrad._threads import _loaded_libraries_key
k0 = _loaded_libraries_key()
name = ctypes.util.find_library("m") or ctypes.util.find_library("z")
import scipy.linalg
k1 = _loaded_libraries_key()
print(json.dumps([k0, k1, _loaded_libraries_key()]))
"""
    k0, k1, k2 = _run(code)
    if k0 is None:
        pytest.skip("no loader counter on this platform (re-inspects on every call)")
    assert k1 == k2
    assert k0 != k1
