"""The web UI / REST benchmark (see the package docstring)."""
from __future__ import annotations

import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional

#: Targets (ms) of issue 21 by scale: "small" up to 10,000 trials (10k x 100), "large" above
#: (100k x 20). ``trial_list``: the list the UI loads (``trial-jobs?format=columns``), median of
#: the cached calls; ``interactive``: the page's table and numbers on screen (charts after).
TARGETS = {
    "small": {"trial_list_ms": 200, "metric_data_latest_ms": 100, "interactive_cold_ms": 1000, "interactive_warm_ms": 500},
    "large": {"trial_list_ms": 500, "metric_data_latest_ms": 500, "interactive_cold_ms": 2000, "interactive_warm_ms": 2000},
}
SMALL_MAX_TRIALS = 10_000


def targets_for(trials: int) -> dict:
    """The targets of an experiment of ``trials`` trials (see :data:`TARGETS`)."""
    return TARGETS["small" if trials <= SMALL_MAX_TRIALS else "large"]


EXPERIMENT_ID = "webuibn1"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def build_store(exp_dir: str | os.PathLike, trials: int, intermediate: int) -> dict:
    """Write the synthetic experiment unless ``exp_dir`` already holds one of that size."""
    from nni.server.store import ExperimentStore, store_path
    from nni.server.testing import synthetic_experiment

    path = store_path(exp_dir)
    if path.exists():
        store = ExperimentStore(path, readonly=True)
        try:
            n = store.m.Trial.select().count()
            k = store.m.Metric.select().count()
        finally:
            store.close()
        if n == trials and k >= trials * intermediate:
            return {"built_s": 0.0, "reused": True, "trials": n, "metrics": k}
        raise SystemExit(f"--dir {exp_dir} holds another store ({n} trials, {k} metrics); give an empty folder")
    t0 = time.perf_counter()
    summary = synthetic_experiment(exp_dir, trials, intermediate, EXPERIMENT_ID, seed=1)
    return {"built_s": round(time.perf_counter() - t0, 1), "reused": False, "trials": trials, "metrics": summary["metrics"]}


def _get(url: str, token: Optional[str] = None) -> tuple[float, int]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    t0 = time.perf_counter()
    with opener.open(request, timeout=120) as resp:
        body = resp.read()
    return (time.perf_counter() - t0) * 1000, len(body)


#: Routes timed by :func:`bench_routes`: key -> path under ``/api/v1/nni/`` (``{mid}``: the
#: middle of the trial list). ``trial_list``: what the web UI loads; ``trial_jobs``: NNI's list.
ROUTES = {
    "trial_list_ms": "trial-jobs?format=columns",
    "trial_details_ms": "trial-jobs?format=details",
    "trial_jobs_page_ms": "trial-jobs?offset={mid}&limit=100",
    "trial_jobs_ms": "trial-jobs",
    "metric_data_latest_ms": "metric-data-latest",
}


def bench_routes(base_url: str, repeat: int = 5, token: Optional[str] = None, trials: int = 0) -> dict:
    """Wall time of the trial list routes as a client sees it (``token``: the manager's).

    ``first``: the first call (store read + encoding), then ``median`` / ``min`` of ``repeat``
    more (the manager's response cache answers them while the store is unchanged).
    """
    out = {}
    targets = targets_for(trials)
    for key, route in ROUTES.items():
        url = f"{base_url}/api/v1/nni/{route.format(mid=trials // 2)}"
        first, size = _get(url, token)
        times = [_get(url, token)[0] for _ in range(repeat)]
        out[key] = {"first": round(first, 1), "median": round(statistics.median(times), 1), "min": round(min(times), 1), "bytes": size}
        if key in targets:
            out[key]["target"] = targets[key]
    return out


#: The UI's performance marks (milliseconds since navigation start), see static/js/main.js.
MARKS = {"data": "nni-data-rendered", "interactive": "nni-interactive", "charts": "nni-charts-drawn"}


def bench_detail_page(base_url: str, chromium: str, runs: int = 3, token: Optional[str] = None) -> dict:
    """Trials-detail page timing in headless Chromium (the UI's own performance marks).

    Per run: ``cold`` in a fresh browser context (empty HTTP and code cache), then ``warm``, a
    reload. Marks: ``data`` (data fetched, table and numbers in the DOM), ``interactive`` (they
    are painted: the page answers clicks) and ``charts`` (the default-metric chart drawn, after
    plotly.js loaded). ``token``: the manager's; the page is opened as the printed URL
    (``?token=``), which the manager answers with a cookie and a redirect to the clean URL.
    """
    from playwright.sync_api import sync_playwright

    script = "() => ({" + ", ".join(
        f"{key}: performance.getEntriesByName('{mark}')[0]?.startTime" for key, mark in MARKS.items()) + "})"

    def marks(page) -> dict:
        page.wait_for_selector('body[data-charts="1"]', state="attached", timeout=120_000)
        return page.evaluate(script)

    result: dict = {"cold": [], "warm": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.add_init_script("localStorage.setItem('nni.detail.tab', 'metric')")
                page.goto(f"{base_url}/detail" + (f"?token={token}" if token else ""))
                result["cold"].append(marks(page))
                page.reload()
                result["warm"].append(marks(page))
                rows = page.locator('[data-testid="trial-table"] tbody tr[data-trial]').count()
                shown = page.text_content('[data-testid="trial-count"]')
                bundle = page.evaluate("() => document.getElementById('plotly-script')?.src || null")
                context.close()
                if errors:
                    raise RuntimeError(f"the page raised: {errors}")
            result["table_rows_on_page"] = rows
            result["trial_count_shown"] = shown
            result["plotly_bundle"] = bundle
        finally:
            browser.close()
    for kind in ("cold", "warm"):
        for key in MARKS:
            values = [m[key] for m in result[kind] if m.get(key) is not None]
            result[f"{kind}_{key}_median"] = round(statistics.median(values), 1) if values else None
        result[kind] = [{k: round(v, 1) for k, v in m.items() if v is not None} for m in result[kind]]
    return result


def bench_uncached(exp_dir: str | os.PathLike, repeat: int = 5) -> dict:
    """Server-side cost without the response cache: store query + JSON encoding, per route."""
    from nni.server.store import ExperimentStore, store_path

    store = ExperimentStore(store_path(exp_dir), readonly=True)
    try:
        out = {}
        for key, build in (
            ("trial_list_ms", store.trial_table_json),
            ("trial_details_ms", store.trial_details_json),
            ("trial_jobs_ms", store.trial_jobs_json),
            ("metric_data_latest_ms", store.metric_data_latest_json),
        ):
            times, cpu = [], []
            for _ in range(repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                build()
                times.append((time.perf_counter() - t0) * 1000)
                cpu.append((time.process_time() - c0) * 1000)
            # cpu_min: CPU time of the work, which a busy machine inflates far less than wall time
            out[key] = {"median": round(statistics.median(times), 1), "min": round(min(times), 1), "cpu_min": round(min(cpu), 1)}
        return out
    finally:
        store.close()


def ratios(report: dict) -> dict:
    """Measured / target for each target of :data:`TARGETS` the report has figures for (<= 1: met)."""
    targets = targets_for(report["trials"])
    out = {}
    for key in ("trial_list_ms", "metric_data_latest_ms"):
        if isinstance(report.get(key), dict):
            out[key] = round(report[key]["median"] / targets[key], 2)
    page = report.get("detail_page_ms")
    if isinstance(page, dict):
        for kind in ("cold", "warm"):
            value = page.get(f"{kind}_interactive_median")
            if value is not None:
                out[f"interactive_{kind}_ms"] = round(value / targets[f"interactive_{kind}_ms"], 2)
    return out


def run(trials: int = 10_000, intermediate: int = 100, exp_dir: Optional[str] = None, repeat: int = 5,
        chromium: Optional[str] = "/usr/bin/chromium", page_runs: int = 3) -> dict:
    """Build (or reuse) the store, time the routes and, with ``chromium``, the page; one report."""
    from nni.server.testing import serve_experiment

    tmp = None
    if exp_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="nni-webui-bench-")
        exp_dir = tmp.name
    report: dict = {"benchmark": "webui", "trials": trials, "intermediate": intermediate, "cpus": os.cpu_count(),
                    "load_average": [round(x, 2) for x in os.getloadavg()], "targets": targets_for(trials)}
    try:
        report["store"] = build_store(exp_dir, trials, intermediate)
        report["server_uncached"] = bench_uncached(exp_dir, repeat)
        served = serve_experiment(Path(exp_dir), EXPERIMENT_ID)
        try:
            report.update(bench_routes(served.url, repeat, served.token, trials))
            if chromium and Path(chromium).exists():
                report["detail_page_ms"] = bench_detail_page(served.url, chromium, page_runs, token=served.token)
            else:
                report["detail_page_ms"] = f"skipped: no Chromium at {chromium!r}"
        finally:
            served.close()
    finally:
        if tmp is not None:
            tmp.cleanup()
    report["ratio_to_target"] = ratios(report)
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return report
