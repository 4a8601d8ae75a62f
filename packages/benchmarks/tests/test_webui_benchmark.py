"""The web UI benchmark runs end to end on a small store (the figures are not checked here,
only that each is measured and in order)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("NNI_TEST_CHROMIUM", "/usr/bin/chromium")


def test_webui_benchmark_small(tmp_path):
    pytest.importorskip("nni.server")
    from nni.webui_benchmark import run

    report = run(trials=30, intermediate=3, exp_dir=str(tmp_path / "exp"), repeat=2, chromium=None)
    assert report["store"]["trials"] == 30 and report["store"]["metrics"] >= 90
    assert report["trial_jobs_ms"]["bytes"] > 1000 and report["metric_data_latest_ms"]["bytes"] > 100
    # the UI's column-wise list is smaller than NNI's list
    assert 500 < report["trial_list_ms"]["bytes"] < report["trial_jobs_ms"]["bytes"]
    assert report["trial_list_ms"]["target"] == 200 and report["trial_jobs_page_ms"]["bytes"] > 100
    assert report["server_uncached"]["trial_list_ms"]["min"] > 0
    assert set(report["ratio_to_target"]) == {"trial_list_ms", "metric_data_latest_ms"}
    assert "skipped" in report["detail_page_ms"]
    again = run(trials=30, intermediate=3, exp_dir=str(tmp_path / "exp"), repeat=1, chromium=None)
    assert again["store"]["reused"] is True


def test_targets_by_scale():
    from nni.webui_benchmark import targets_for

    assert targets_for(10_000)["interactive_cold_ms"] == 1000 and targets_for(10_000)["interactive_warm_ms"] == 500
    assert targets_for(100_000)["trial_list_ms"] == 500 and targets_for(100_000)["interactive_cold_ms"] == 2000


@pytest.mark.slow  # a browser, a cold and a warm page load: 5-25 s with the machine's load
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
def test_webui_benchmark_page_small(tmp_path):
    pytest.importorskip("nni.server")
    pytest.importorskip("playwright")
    from nni.webui_benchmark import run

    report = run(trials=40, intermediate=3, exp_dir=str(tmp_path / "exp"), repeat=1, chromium=CHROMIUM, page_runs=1)
    page = report["detail_page_ms"]
    for kind in ("cold", "warm"):
        (marks,) = page[kind]
        # the table and numbers come first, the charts after them
        assert 0 < marks["data"] <= marks["interactive"] <= marks["charts"]
    assert page["table_rows_on_page"] == 20 and page["trial_count_shown"] == "40"
    assert page["plotly_bundle"].split("/")[-1].startswith("plotly-nni-")
    assert set(report["ratio_to_target"]) >= {"interactive_cold_ms", "interactive_warm_ms"}
