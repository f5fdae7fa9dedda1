"""The command line's plot drawn in a second process (fastgrad.hlsm._plotjob)."""
import subprocess
import sys

import numpy as np
import pytest

from fastgrad.__main__ import main
from fastgrad.hlsm import _plotjob

pytest.importorskip("matplotlib")

ARGS = ["hlsm", "--dataset", "florentine", "--lam", "2", "--max-iter", "300"]


def _run(tmp_path, name):
    out = tmp_path / name
    assert main([*ARGS, "--out", str(out)]) == 0
    return out / "hlsm_florentine_plot.png"


def test_child_draws_the_same_png_as_this_process(tmp_path, capsys, monkeypatch):
    sent = []
    orig_send = _plotjob.PlotJob.send
    monkeypatch.setattr(_plotjob.PlotJob, "send", lambda self, *a, **k: sent.append(1) or orig_send(self, *a, **k))
    by_child = _run(tmp_path, "child")
    assert sent == [1]
    # the same command with no child: the plot is drawn here, through the same code
    monkeypatch.setattr(_plotjob, "start", lambda **kw: None)
    here = _run(tmp_path, "here")
    assert "_plot.png" in capsys.readouterr().out
    assert by_child.read_bytes() == here.read_bytes()


def test_a_failing_child_falls_back_to_drawing_here(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_plotjob.PlotJob, "wait", lambda self: (self.proc.communicate(), ("failed", "boom"))[1])
    png = _run(tmp_path, "fallback")
    assert png.stat().st_size > 1000
    assert "plot skipped" not in capsys.readouterr().out


def test_no_plot_starts_no_child(tmp_path, monkeypatch):
    monkeypatch.setattr(_plotjob, "start", lambda **kw: pytest.fail("started a plot process"))
    assert main([*ARGS, "--no-plot", "--out", str(tmp_path)]) == 0


def test_a_bad_fit_stops_the_child(tmp_path, monkeypatch):
    jobs = []
    orig_start = _plotjob.start
    monkeypatch.setattr(_plotjob, "start", lambda **kw: jobs.append(orig_start(**kw)) or jobs[-1])
    assert main([*ARGS[:-2], "--max-iter", "0", "--out", str(tmp_path)]) == 1     # max_iter must be >= 1
    assert len(jobs) == 1 and jobs[0].proc.poll() is not None


def test_missing_matplotlib_in_the_child_skips_the_plot(tmp_path):
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    import os
    env = dict(os.environ, PYTHONPATH=str(fake) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-m", "fastgrad", *ARGS, "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "plot skipped: plotting needs matplotlib" in r.stdout
    assert not (tmp_path / "o" / "hlsm_florentine_plot.png").exists()
    assert (tmp_path / "o" / "hlsm_florentine_positions.csv").exists()


def test_payload_holds_what_the_plot_reads_and_no_model_object():
    from fastgrad import datasets, hlsm
    data = datasets.load_dataset("florentine")
    res = hlsm.fit(data, 2.0, max_iter=300, random_state=0)
    fit, Y = _plotjob.payload(res, data)
    assert type(fit).__module__ == "types"
    np.testing.assert_array_equal(fit.z, res.z)
    np.testing.assert_array_equal(fit.deviating, res.deviating)
    assert Y.dtype == np.float64 and Y.shape == data.Y.shape


@pytest.mark.parametrize("module", ["fastgrad.hlsm._cli", "fastgrad.hlsm._plot", "fastgrad.hlsm._plotjob"])
def test_the_cli_and_plot_modules_import_no_numba(module):
    code = f"import sys, {module}; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]


# ---------------------------------------------------------------- first run: the child compiles
def _fake_job(script):
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    return _plotjob.PlotJob(proc, compiling=True)


def test_wait_compiled_reads_the_childs_first_line_and_wait_its_last():
    job = _fake_job("import sys; print('compiled ok', flush=True); sys.stdin.buffer.read(); print('ok')")
    assert job.wait_compiled() is True
    assert job.wait_compiled() is False and not job.compiling       # once only
    job.proc.stdin.close()
    job.proc.stdin = None
    assert job.wait() == ("ok", "")
    failed = _fake_job("print('compiled failed TypingError: x', flush=True); print('ok')")
    assert failed.wait_compiled() is False
    assert failed.wait() == ("ok", "")
    # a child that never reached the compiled line (wait() alone): its status is still read
    gone = _fake_job("print('compiled ok'); print('error ValueError: bad')")
    assert gone.wait() == ("failed", "ValueError: bad")
    assert _fake_job("pass").wait_compiled() is False                  # exited without a word


def test_cache_index_lookup_finds_numbas_own_cache_folder():
    """has_cache_index looks where Numba's locator puts the kernel's cache (whatever
    NUMBA_CACHE_DIR this test run has)."""
    from fastgrad import _numba_cache
    from fastgrad.kernels import hlsm as K
    src = K.__file__
    assert K._ext_rows._cache._cache_path in _numba_cache._cache_dirs(src)
    assert not _numba_cache.has_cache_index(src, "no_such_kernel")


def test_first_run_child_compiles_the_kernel_the_fit_uses(tmp_path):
    """With an empty cache: compile_ext_pairs and compile_ext_rows (what the child runs) give
    the one signature of the pair kernel that dense undirected and missing-dyad fits then
    use, and of _ext_rows that directed fits use; the cache lookup sees both afterwards, and
    the command picks the kernel its fit will use."""
    import os
    code = """
import numpy as np
from fastgrad import datasets, hlsm
from fastgrad.hlsm import _plotjob
from fastgrad.kernels import hlsm as K
print(_plotjob.first_fit_compiles("rows"), _plotjob.first_fit_compiles("pairs"))
K.compile_ext_pairs()
print(_plotjob.first_fit_compiles("rows"), _plotjob.first_fit_compiles("pairs"))
K.compile_ext_rows()
print(_plotjob.first_fit_compiles("rows"))
Y, _ = hlsm.simulate(12, 2, random_state=0)[:2]
Y = np.asarray(Y, float); Y[0, 1, 2] = Y[0, 2, 1] = np.nan
hlsm.fit(Y, 1.0, max_iter=20, random_state=0)
D = (np.random.default_rng(0).random((2, 12, 12)) < 0.3).astype(float)
hlsm.fit(D, 1.0, directed=True, max_iter=20, random_state=0)
print(len(K.hlsm_nll_grad_ext_pairs.signatures), len(K._ext_rows.signatures),
      len(K.hlsm_nll_grad_ext_serial.signatures))
print(_plotjob.fit_kernel(2 * 12 * 12, False), _plotjob.fit_kernel(2 * 12 * 12, True),
      _plotjob.fit_kernel(4 * 1000 * 1000, False))
"""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "True", "False", "False", "1", "1", "1",
                                "pairs", "rows", "rows"]


def test_first_run_command_compiles_in_the_child_and_writes_the_same_files(tmp_path):
    import os
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), MPLBACKEND="Agg")
    outs = []
    for run in ("cold", "warm"):
        out = tmp_path / run
        r = subprocess.run([sys.executable, "-m", "fastgrad", *ARGS, "--out", str(out)], capture_output=True,
                           text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr
        assert "_plot.png" in r.stdout
        outs.append(out)
    cache = tmp_path / "cache"
    # florentine is small and undirected: the child compiled the pair kernel, nothing compiled _ext_rows
    assert any(p.name.startswith("hlsm.hlsm_nll_grad_ext_pairs-") for p in cache.rglob("*.nbi"))
    assert not any(p.name.startswith("hlsm._ext_rows-") for p in cache.rglob("*.nbi"))
    for name in ("hlsm_florentine_positions.csv", "hlsm_florentine_plot.png"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_prebuilt_figure_is_used_only_when_its_grid_fits(tmp_path):
    from fastgrad import datasets, hlsm
    from fastgrad.hlsm._plot import _bare_figure, _plot_hlsm
    data = datasets.load_dataset("florentine")
    res = hlsm.fit(data, 2.0, max_iter=300, random_state=0)
    K = data.Y.shape[0]
    fit, Y = _plotjob.payload(res, data)
    pre = _bare_figure(K)
    kw = dict(pyplot=False, layout="fixed", ticks=False)
    assert _plot_hlsm(fit, Y=Y, figure=pre, **kw) is pre[0]
    other = _bare_figure(K + 3)                              # another grid: not used
    fig = _plot_hlsm(fit, Y=Y, figure=other, **kw)
    assert fig is not other[0] and fig.axes[0].get_title() == pre[0].axes[0].get_title()
