"""Benchmark of the REST API and the web UI on a big experiment store.

``python -m nni.webui_benchmark [--trials 10000] [--intermediate 100] [--dir DIR]`` builds a
store of a finished experiment with ``trials`` x ``intermediate`` results (kept in ``--dir``
for re-runs), serves it read-only with the manager's own app on 127.0.0.1, and prints one
JSON object with:

* ``trial_list_ms``: ``GET /api/v1/nni/trial-jobs?format=columns``, the trial list the web UI
  loads (every trial, column-wise), client-side wall time: ``first`` (store read + encoding),
  then ``median`` / ``min`` of the next calls (answered from the manager's response cache while
  the store is unchanged). Also ``trial_details_ms`` (``format=details``: parameters, loaded
  after the table), ``trial_jobs_page_ms`` (``?offset=&limit=100``), ``trial_jobs_ms`` (NNI's
  full list) and ``metric_data_latest_ms``. ``server_uncached``: store read + JSON encoding
  alone, without the cache.
* ``detail_page_ms``: the Trials-detail page in headless Chromium, the browser's own timing
  (``performance.mark`` set by the UI; milliseconds since navigation start): ``data`` = data
  fetched and table rendered, ``interactive`` = table and numbers painted, ``charts`` = the
  default-metric chart drawn (plotly.js is loaded after ``interactive``). ``cold`` is a fresh
  browser context (empty caches), ``warm`` a reload.
* ``targets`` (:data:`TARGETS`, by scale: up to 10,000 trials or more) and
  ``ratio_to_target`` (median / target; <= 1 meets it), with the load average before and after:
  on a shared machine the figures move with it.

Needs nni-webui-server and, for the page timing, Playwright and a Chromium
(``--chromium /usr/bin/chromium``).
"""
from __future__ import annotations

from .bench import TARGETS, bench_detail_page, bench_routes, build_store, ratios, run, targets_for

__all__ = ["TARGETS", "bench_detail_page", "bench_routes", "build_store", "ratios", "run", "targets_for"]
