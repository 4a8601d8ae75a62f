"""Benchmark of the REST API and the web UI on a big experiment store.

``python -m nni.webui_benchmark [--trials 10000] [--intermediate 100] [--dir DIR]`` builds a
store of a finished experiment with ``trials`` x ``intermediate`` results (kept in ``--dir``
for re-runs), serves it read-only with the manager's own app on 127.0.0.1, and prints one
JSON object with:

* ``trial_jobs_ms``: ``GET /api/v1/nni/trial-jobs`` (every trial), client-side wall time:
  ``first`` (store read + encoding), then ``median`` / ``min`` of the next calls (answered from
  the manager's response cache while the store is unchanged); target <= 200 ms.
  ``server_uncached`` gives the store read + JSON encoding alone, without the cache.
* ``metric_data_latest_ms``: ``GET /api/v1/nni/metric-data-latest``; target <= 100 ms.
* ``detail_page_ms``: the Trials-detail page in headless Chromium, the browser's own timing
  (``performance.mark`` set by the UI; milliseconds since navigation start): ``data`` = data
  fetched and table rendered, ``interactive`` = table and default-metric chart drawn; target
  <= 2000 ms. ``cold`` is a fresh browser profile (plotly.js not cached), ``warm`` a reload.

Needs nni-webui-server and, for the page timing, Playwright and a Chromium
(``--chromium /usr/bin/chromium``).
"""
from __future__ import annotations

from .bench import TARGETS, bench_detail_page, bench_routes, build_store, run

__all__ = ["TARGETS", "bench_detail_page", "bench_routes", "build_store", "run"]
