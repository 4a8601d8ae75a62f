"""The feature-selector benchmark: a tiny configuration end to end, the command, its errors."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nni.fe_benchmark import BenchmarkConfig, compare, load_dataset, markdown_table, run_benchmark


def test_noise_columns_are_appended_standard_normal():
    X, y, n_original = load_dataset("wine", seed=0, noise_ratio=2.0)
    assert n_original == 13 and X.shape == (178, 39) and len(y) == 178
    noise = X[:, 13:]
    assert abs(noise.mean()) < 0.1 and abs(noise.std() - 1) < 0.1
    again, _, _ = load_dataset("wine", seed=0, noise_ratio=2.0)
    assert np.array_equal(X, again)


def test_tiny_run_writes_outputs_and_selectors_beat_random(tmp_path):
    selectors = ["all", "random", "SelectKBest", "GBDTSelector", "FeatureGradientSelector"]
    config = BenchmarkConfig(datasets=["wine"], seeds=2, out=tmp_path, k={"wine": 3}, selectors=selectors,
                             models=["logreg"],
                             fgs_params=dict(n_epochs=10, batch_size=128, target_batch_size=128, ordinal=False),
                             gbdt_params=dict(num_boost_round=30))
    lines = []
    report = run_benchmark(config, progress=lines.append)
    assert len(report["rows"]) == 2 * 5 and len(lines) == 10
    summary = report["summary"]["wine"]
    assert set(summary) == set(selectors) and "gboost_mean" not in summary["all"]
    assert summary["all"]["k"] == 39 and summary["FeatureGradientSelector"]["k"] == 3
    for selector in ("SelectKBest", "GBDTSelector", "FeatureGradientSelector"):
        assert summary[selector]["noise_selected_mean"] == 0
        assert summary[selector]["logreg_mean"] > summary["random"]["logreg_mean"]
    assert compare(report, "FeatureGradientSelector", "random") == {"wine": True}
    table = markdown_table(report)
    assert "| wine | FeatureGradientSelector | 3 |" in table and "| — |" in table
    assert json.loads((tmp_path / "results.json").read_text())["summary"]["wine"]["all"]["runs"] == 2
    assert (tmp_path / "fe_benchmark.png").stat().st_size > 10_000 and (tmp_path / "table.md").exists()


def test_rfe_and_random_pick_k_distinct_columns():
    from nni.fe_benchmark.bench import make_selector

    X, y, _ = load_dataset("wine", seed=0, noise_ratio=1.0)
    for name in ("RFE", "random"):
        chosen = make_selector(name, 4, 0, BenchmarkConfig())(X, y)
        assert len(set(chosen)) == 4 and all(0 <= i < X.shape[1] for i in chosen)


@pytest.mark.parametrize("args,needle", [
    (["--datasets", "mnist"], "--datasets: unknown dataset 'mnist'"),
    (["--selectors", "PCA"], "--selectors: unknown selector 'PCA'"),
    (["--seeds", "0"], "--seeds: must be at least 1"),
    (["--models", "svm"], "--models: unknown model 'svm'"),
])
def test_command_user_errors_are_one_line(args, needle, tmp_path, capsys):
    from nni.fe_benchmark.__main__ import main

    assert main([*args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err


def test_python_dash_m_runs_the_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nni.fe_benchmark", "--datasets", "mnist", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "unknown dataset 'mnist'" in result.stderr
