"""The web UI / REST benchmark (see the package docstring)."""
from __future__ import annotations

import os
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Optional

TARGETS = {"trial_jobs_ms": 200, "metric_data_latest_ms": 100, "detail_page_ms": 2000}
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


def bench_routes(base_url: str, repeat: int = 5, token: Optional[str] = None) -> dict:
    """Wall time of GET trial-jobs and metric-data-latest as a client sees it (``token``: the manager's)."""
    out = {}
    for key, route in (("trial_jobs_ms", "trial-jobs"), ("metric_data_latest_ms", "metric-data-latest")):
        first, size = _get(f"{base_url}/api/v1/nni/{route}", token)
        times = [_get(f"{base_url}/api/v1/nni/{route}", token)[0] for _ in range(repeat)]
        out[key] = {"first": round(first, 1), "median": round(statistics.median(times), 1), "min": round(min(times), 1),
                    "bytes": size, "target": TARGETS[key]}
    return out


def bench_detail_page(base_url: str, chromium: str, runs: int = 3, token: Optional[str] = None) -> dict:
    """Trials-detail page timing in headless Chromium (the UI's own performance marks).

    ``token``: the manager's; the page is opened as the printed URL (``?token=``), which the
    manager answers with a cookie and a redirect to the clean URL.
    """
    from playwright.sync_api import sync_playwright

    def marks(page) -> dict:
        page.wait_for_selector('body[data-ready="1"]', state="attached", timeout=120_000)
        return page.evaluate("""() => ({
            data: performance.getEntriesByName('nni-data-rendered')[0]?.startTime,
            interactive: performance.getEntriesByName('nni-interactive')[0]?.startTime,
        })""")

    result: dict = {"cold": [], "warm": [], "target": TARGETS["detail_page_ms"]}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{base_url}/detail" + (f"?token={token}" if token else ""))
                result["cold"].append(marks(page))
                page.reload()
                result["warm"].append(marks(page))
                rows = page.locator('[data-testid="trial-table"] tbody tr[data-trial]').count()
                shown = page.text_content('[data-testid="trial-count"]')
                context.close()
                if errors:
                    raise RuntimeError(f"the page raised: {errors}")
            result["table_rows_on_page"] = rows
            result["trial_count_shown"] = shown
        finally:
            browser.close()
    for kind in ("cold", "warm"):
        for key in ("data", "interactive"):
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


def run(trials: int = 10_000, intermediate: int = 100, exp_dir: Optional[str] = None, repeat: int = 5,
        chromium: Optional[str] = "/usr/bin/chromium") -> dict:
    from nni.server.testing import serve_experiment

    tmp = None
    if exp_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="nni-webui-bench-")
        exp_dir = tmp.name
    report: dict = {"benchmark": "webui", "trials": trials, "intermediate": intermediate, "cpus": os.cpu_count(),
                    "load_average": [round(x, 2) for x in os.getloadavg()]}
    try:
        report["store"] = build_store(exp_dir, trials, intermediate)
        report["server_uncached"] = bench_uncached(exp_dir, repeat)
        served = serve_experiment(Path(exp_dir), EXPERIMENT_ID)
        try:
            report.update(bench_routes(served.url, repeat, served.token))
            if chromium and Path(chromium).exists():
                report["detail_page_ms"] = bench_detail_page(served.url, chromium, token=served.token)
            else:
                report["detail_page_ms"] = f"skipped: no Chromium at {chromium!r}"
        finally:
            served.close()
    finally:
        if tmp is not None:
            tmp.cleanup()
    return report
