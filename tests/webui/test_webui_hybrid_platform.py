"""The trial table shows each trial's platform when the experiment has more than one (hybrid
mode, issue 13 item 6), and no such column otherwise. Headless Chromium against stores served
read-only (``nnictl view``'s mode)."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def _serve(tmp_path, name: str, hybrid: bool):
    from nni.server.store import ExperimentStore, store_path
    from nni.server.testing import serve_experiment, synthetic_experiment

    exp_dir = tmp_path / name
    synthetic_experiment(exp_dir, n_trials=4, experiment_id=name)
    store = ExperimentStore(store_path(exp_dir))
    if hybrid:
        config = store.config()
        config["trainingService"] = [{"platform": "remote", "machineList": []}, {"platform": "local"}]
        store.update_config(config)
    for row in store.trial_rows():
        store.update_trial(row.trial_id, platform="remote" if hybrid and row.sequence_id % 2 else "local")
    store.close()
    return serve_experiment(exp_dir, name)


def _table(browser, served):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{served.url}/?token={served.token}")
    page.goto(f"{served.url}/detail")
    page.wait_for_selector('[data-testid="trial-table"] tbody tr[data-trial]', timeout=30000)
    headers = page.locator('[data-testid="trial-table"] th').all_text_contents()
    cells = {page.locator(f'tr[data-seq="{i}"]').get_attribute("data-trial"):
             page.locator(f'tr[data-seq="{i}"] [data-col="platform"]').all_text_contents() for i in range(4)}
    context.close()
    assert errors == []
    return headers, cells


def test_platform_column_only_for_hybrid_experiments(browser, tmp_path):
    hybrid = _serve(tmp_path, "hybrid01", hybrid=True)
    single = _serve(tmp_path, "single01", hybrid=False)
    try:
        headers, cells = _table(browser, hybrid)
        assert any(h.strip() == "Platform" for h in headers)
        jobs = {j["trialJobId"]: j["platform"] for j in json.loads(hybrid.store.trial_jobs_json())}
        assert cells == {tid: [platform] for tid, platform in jobs.items()}
        assert sorted(jobs.values()) == ["local", "local", "remote", "remote"]
        headers, cells = _table(browser, single)
        assert not any(h.strip() == "Platform" for h in headers) and all(c == [] for c in cells.values())
    finally:
        hybrid.close()
        single.close()
