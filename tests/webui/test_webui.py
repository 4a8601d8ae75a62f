"""The web UI in headless Chromium against a real running experiment: every page loads without
console errors, the numbers shown match the store (REST API), a trial is killed from the UI,
a customized trial is added from the UI and runs, concurrency is edited from the UI.
Screenshots of each page: artifacts/webui/*.png."""
from __future__ import annotations

import json
import math
import re
import time

import pytest

pytestmark = pytest.mark.slow


def wait_for(predicate, timeout=30.0, interval=0.3, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def metric_default(job):
    if not job["finalMetricData"]:
        return None
    value = json.loads(job["finalMetricData"][-1]["data"].replace("NaN", '"NaN"'))
    if isinstance(value, str):
        value = json.loads(value.replace("NaN", '"NaN"'))
    value = value.get("default") if isinstance(value, dict) else value
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def refresh(page):
    page.click('[data-testid="refresh"]')
    page.wait_for_timeout(400)
    page.wait_for_function("!document.querySelector('[data-testid=refresh]').classList.contains('spinning')")


def test_overview_numbers_match_the_store(ui, experiment, artifacts):
    client = experiment._client
    page = ui.open("oview")
    for attempt in range(6):  # the experiment runs on: compare a UI snapshot with the store taken right after it
        refresh(page)
        shown = {
            "total": page.text_content('[data-testid="count-total"]'),
            "succeeded": page.text_content('[data-testid="count-SUCCEEDED"] .count-value'),
            "failed": page.text_content('[data-testid="count-FAILED"] .count-value'),
            "best": page.text_content('[data-testid="best-metric"]'),
            "status": page.text_content('[data-testid="exp-status"]'),
        }
        jobs = client.call("list_trial_jobs")
        status = client.call("get_status")["status"]
        expected = {
            "total": str(len(jobs)),
            "succeeded": str(sum(j["status"] == "SUCCEEDED" for j in jobs)),
            "failed": str(sum(j["status"] == "FAILED" for j in jobs)),
            "status": status,
        }
        if all(shown[k] == v for k, v in expected.items()):
            break
    assert {k: shown[k] for k in expected} == expected
    best = max(v for v in map(metric_default, jobs) if v is not None)
    assert float(shown["best"]) == pytest.approx(best, abs=1e-6)
    assert page.text_content('[data-testid="exp-id"]') == experiment.id
    assert page.text_content('[data-testid="exp-name"]') == "webui-e2e"
    top = [float(x) for x in page.locator('[data-testid="top-metric"]').all_text_contents()]
    assert top and top == sorted(top, reverse=True) and top[0] == pytest.approx(best, abs=1e-6)
    page.wait_for_selector(".top-card .main-svg")  # the top-trials chart is drawn
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)


def test_edit_concurrency_from_the_ui(ui, experiment):
    page = ui.open("oview")
    page.click('[data-testid="edit-concurrency-edit"]')
    page.fill('[data-testid="edit-concurrency-input"]', "3")
    page.click('[data-testid="edit-concurrency-save"]')
    wait_for(lambda: experiment._client.call("get_experiment_profile")["params"]["trialConcurrency"] == 3, 10, what="concurrency 3 in the store")
    page.wait_for_function("document.querySelector('[data-testid=edit-concurrency-value]')?.textContent === '3'")
    # a bad value is refused in the page, the store keeps 3
    page.click('[data-testid="edit-concurrency-edit"]')
    page.fill('[data-testid="edit-concurrency-input"]', "0")
    page.click('[data-testid="edit-concurrency-save"]')
    page.wait_for_selector(".toast-error")
    assert experiment._client.call("get_experiment_profile")["params"]["trialConcurrency"] == 3


def test_trials_detail_table_and_charts(ui, experiment, artifacts):
    client = experiment._client
    page = ui.open("detail")
    page.wait_for_selector(".main-chart .main-svg")
    page.screenshot(path=str(artifacts / "detail-default-metric.png"), full_page=True)
    for attempt in range(6):
        refresh(page)
        count = page.text_content('[data-testid="trial-count"]')
        jobs = client.call("list_trial_jobs")
        if count == str(len(jobs)):
            break
    assert count == str(len(jobs))
    # the first page of the table: trial numbers, ids and statuses as in the store
    rows = page.locator('[data-testid="trial-table"] tbody tr[data-trial]')
    by_id = {j["trialJobId"]: j for j in jobs}
    for i in range(rows.count()):
        row = rows.nth(i)
        job = by_id[row.get_attribute("data-trial")]
        assert row.get_attribute("data-seq") == str(job["sequenceId"])
        assert row.locator('[data-col="status"] .badge').get_attribute("data-status") == job["status"] or job["status"] not in ("SUCCEEDED", "FAILED")
    # the failed trial (no metric) and the NaN metric trial do not break the page
    failed = page.locator('tr[data-seq="2"]')
    assert failed.locator(".badge").text_content() == "FAILED"
    assert page.locator('tr[data-seq="4"] [data-col="metric"]').text_content().startswith("NaN")
    # sort by metric descending: finished trials with numbers first, no-metric trials last
    page.click('th[data-col="metric"]')
    first = float(page.locator('[data-testid="trial-table"] tbody tr[data-trial] [data-col="metric"]').first.text_content().split()[0])
    best = max(v for v in map(metric_default, jobs) if v is not None)
    assert first == pytest.approx(best, abs=1e-6) or first > best  # a running trial's LATEST may lead
    for tab in ("hyper", "duration", "intermediate"):
        page.click(f'[data-testid="tab-{tab}"]')
        page.wait_for_selector(".main-chart .main-svg, .main-chart .chart-empty", timeout=20000)
        page.wait_for_timeout(300)
        page.screenshot(path=str(artifacts / f"detail-{tab}.png"), full_page=True)
    # intermediate filter: index 1, a range nothing can reach
    page.fill('[data-testid="inter-index"]', "1")
    page.fill('[data-testid="inter-min"]', "5")
    page.press('[data-testid="inter-min"]', "Enter")
    page.wait_for_selector(".main-chart .chart-empty")
    page.click('[data-testid="tab-metric"]')
    page.click('[data-testid="best-curve"] + .slider')
    page.wait_for_selector(".main-chart .legend")


def test_expand_row_logs_copy_and_compare(ui, experiment, artifacts):
    page = ui.open("detail")
    page.fill('[data-testid="search-text"]', "")
    row = page.locator('tr[data-seq="0"]')
    row.locator('[data-testid="expand"]').click()
    page.wait_for_selector(".expanded-row .params-view")
    params = json.loads(page.locator(".expanded-row pre.code").text_content())
    job = next(j for j in experiment._client.call("list_trial_jobs") if j["sequenceId"] == 0)
    assert params == json.loads(job["hyperParameters"][0])["parameters"]
    page.click('.expanded-row [data-tab="log"]')
    page.click('[data-testid="view-trial-log"]')
    page.wait_for_selector('[data-testid="trial-file-dialog"] pre.code')
    page.keyboard.press("Escape")
    page.click('.expanded-row [data-tab="intermediate"]')
    page.wait_for_selector(".expanded-row .main-svg")
    page.locator('[data-testid="select-trial"]').nth(0).check()
    page.locator('[data-testid="select-trial"]').nth(1).check()
    page.click('[data-testid="compare"]')
    page.wait_for_selector('[data-testid="compare-dialog"] .main-svg')
    page.screenshot(path=str(artifacts / "detail-compare.png"))
    page.keyboard.press("Escape")
    page.click('[data-testid="tensorboard"]')
    page.wait_for_selector('[data-testid="tensorboard-dialog"]')
    page.keyboard.press("Escape")


def test_add_customized_trial_from_the_ui(ui, experiment, artifacts):
    client = experiment._client
    before = {j["trialJobId"] for j in client.call("list_trial_jobs")}
    page = ui.open("detail")
    page.click('[data-testid="add-trial"]')
    dialog = page.locator('[data-testid="customize-dialog"]')
    dialog.locator('input[name="x"]').fill("0.4242")
    dialog.locator('select[name="optimizer"]').select_option(label="adam")
    page.screenshot(path=str(artifacts / "customized-trial.png"))
    page.click('[data-testid="customize-submit"]')
    page.wait_for_selector(".toast")

    def customized():
        for j in client.call("list_trial_jobs"):
            params = json.loads(j["hyperParameters"][0])
            if j["trialJobId"] not in before and params["parameters"].get("x") == 0.4242:
                return j
        return None

    job = wait_for(customized, 30, what="the customized trial in the store")
    assert json.loads(job["hyperParameters"][0])["parameters"]["optimizer"] == "adam"
    done = wait_for(lambda: (j := client.call("get_trial_job", id=job["trialJobId"]))["status"] == "SUCCEEDED" and j, 40,
                    what="the customized trial to succeed")
    assert metric_default(done) == pytest.approx(0.4242)


def test_kill_a_running_trial_from_the_ui(ui, experiment, artifacts):
    client = experiment._client
    long = next(j for j in client.call("list_trial_jobs") if j["sequenceId"] == 3)
    assert long["status"] == "RUNNING"
    page = ui.open("detail")
    page.select_option('[data-testid="search-field"]', "no")
    page.fill('[data-testid="search-text"]', "3")
    row = page.locator('tr[data-seq="3"]')
    row.wait_for()
    row.locator('[data-testid="kill"]').click()
    page.click('[data-testid="confirm-ok"]')
    wait_for(lambda: client.call("get_trial_job", id=long["trialJobId"])["status"] == "USER_CANCELED", 20, what="USER_CANCELED")
    refresh(page)
    assert row.locator(".badge").text_content() == "USER_CANCELED"
    assert row.locator('[data-testid="kill"]').is_disabled()
    page.screenshot(path=str(artifacts / "detail-killed.png"), full_page=True)


def test_dialogs_show_store_content(ui, experiment, artifacts):
    page = ui.open("oview")
    page.click('[data-testid="btn-search-space"]')
    shown = json.loads(page.locator('[data-testid="search-space-dialog"] pre.code').text_content())
    assert shown == json.loads(experiment._client.call("get_experiment_profile")["params"]["searchSpace"])
    page.keyboard.press("Escape")
    page.click('[data-testid="btn-config"]')
    config = json.loads(page.locator('[data-testid="config-dialog"] pre.code').text_content())
    assert config["trialConcurrency"] == experiment._client.call("get_experiment_profile")["params"]["trialConcurrency"]
    page.keyboard.press("Escape")
    page.click('[data-testid="btn-logs"]')
    page.wait_for_selector('[data-testid="logs-dialog"] pre.code')
    assert "Experiment" in page.locator('[data-testid="logs-dialog"] pre.code').text_content()
    page.screenshot(path=str(artifacts / "overview-logs.png"))
    page.keyboard.press("Escape")
    page.click('[data-testid="btn-summary"]')
    page.wait_for_selector('[data-testid="download-summary"]')
    with page.expect_download() as download:
        page.click('[data-testid="download-summary"]')
    summary = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert summary["experimentParameters"]["id"] == experiment.id
    assert len(summary["trialMessage"]) >= 5 and "intermediate" in summary["trialMessage"][0]
    page.keyboard.press("Escape")
    page.click('[data-testid="nav-about"]')
    assert page.text_content('[data-testid="version"]') == experiment._client.call("get_version")
    page.keyboard.press("Escape")


def test_all_experiments_page(ui, experiment, artifacts):
    page = ui.open("experiment")
    row = page.locator(f'tr[data-exp="{experiment.id}"]')
    row.wait_for()
    status = experiment._client.call("get_experiment_metadata")["status"]
    assert row.locator(".badge").text_content() == status
    page.click(f'[data-testid="exp-filter-{status}"]')
    assert row.is_visible()
    page.screenshot(path=str(artifacts / "all-experiments.png"), full_page=True)
    row.locator("a").click()
    page.wait_for_url(re.compile(r".*/oview$"))
