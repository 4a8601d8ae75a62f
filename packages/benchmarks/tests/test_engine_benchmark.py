"""The engine benchmark runs (tiny sizes; the real figures come from ``python -m nni.engine_benchmark``)."""
from __future__ import annotations

import pytest

from nni.engine_benchmark import bench_overhead, bench_store


def test_store_benchmark_small():
    r = bench_store(trials=30, metrics_per_trial=20)
    assert r["metrics"] == 600 and r["trial_jobs"] == 30 and r["latest_records"] >= 30
    assert r["metrics_per_s"] > 0


@pytest.mark.slow
def test_overhead_benchmark_small(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path))
    r = bench_overhead(trials=5)
    assert r["done"] is True and r["trials"] == 5 and r["per_trial_ms"] > 0
