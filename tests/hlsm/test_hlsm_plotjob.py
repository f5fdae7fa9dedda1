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
    monkeypatch.setattr(_plotjob, "start", lambda: None)
    here = _run(tmp_path, "here")
    assert "_plot.png" in capsys.readouterr().out
    assert by_child.read_bytes() == here.read_bytes()


def test_a_failing_child_falls_back_to_drawing_here(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_plotjob.PlotJob, "wait", lambda self: (self.proc.communicate(), ("failed", "boom"))[1])
    png = _run(tmp_path, "fallback")
    assert png.stat().st_size > 1000
    assert "plot skipped" not in capsys.readouterr().out


def test_no_plot_starts_no_child(tmp_path, monkeypatch):
    monkeypatch.setattr(_plotjob, "start", lambda: pytest.fail("started a plot process"))
    assert main([*ARGS, "--no-plot", "--out", str(tmp_path)]) == 0


def test_a_bad_fit_stops_the_child(tmp_path, monkeypatch):
    jobs = []
    orig_start = _plotjob.start
    monkeypatch.setattr(_plotjob, "start", lambda: jobs.append(orig_start()) or jobs[-1])
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
