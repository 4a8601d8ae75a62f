"""The web UI benchmark runs end to end on a small store (the figures are not checked here)."""
from __future__ import annotations

import pytest


def test_webui_benchmark_small(tmp_path):
    pytest.importorskip("nni.server")
    from nni.webui_benchmark import run

    report = run(trials=30, intermediate=3, exp_dir=str(tmp_path / "exp"), repeat=2, chromium=None)
    assert report["store"]["trials"] == 30 and report["store"]["metrics"] >= 90
    assert report["trial_jobs_ms"]["bytes"] > 1000 and report["metric_data_latest_ms"]["bytes"] > 100
    assert report["server_uncached"]["trial_jobs_ms"]["min"] > 0
    assert "skipped" in report["detail_page_ms"]
    again = run(trials=30, intermediate=3, exp_dir=str(tmp_path / "exp"), repeat=1, chromium=None)
    assert again["store"]["reused"] is True
