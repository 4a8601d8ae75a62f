"""nni.platform_benchmark.common.timed_run, the timed Experiment.run() shared by the platform benchmarks
and the engine benchmark's remote mode: a small real run on the local platform."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from nni.platform_benchmark.common import timed_run


@pytest.mark.slow
def test_timed_run_on_local_reports_the_run_and_its_trials(tmp_path, monkeypatch):
    # a python given by name (as bench_remote gives python3), found through PATH as on a remote machine
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "bench-python"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{tmp_path / "calls"}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    r = timed_run(tmp_path / "run", "timed", 3, 3, {"platform": "local"}, 0.3, python="bench-python")
    assert r["done"] is True and r["succeeded"] == 3, r
    assert r["wall_s"] >= r["trials_span_s"] >= 0.3
    assert r["trial_overhead_s"] is not None and r["trial_overhead_s"] > -0.05
    assert os.path.isdir(r["experiment_dir"]) and Path(r["experiment_dir"]).parent == tmp_path / "run" / "experiments"
    assert (tmp_path / "run" / "code" / "trial.py").read_text().count("time.sleep(0.3)") == 1
    assert (tmp_path / "calls").read_text().split() == ["run"] * 3  # every trial started through the given python
