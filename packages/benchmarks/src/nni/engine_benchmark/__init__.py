"""Benchmarks of the experiment engine (manager, local training service, store).

``python -m nni.engine_benchmark [overhead|reference|store|all]`` prints one JSON object per
benchmark with the measured figures and the targets:

* ``overhead``: per-trial orchestration overhead of 200 no-op trials at concurrency 1,
  compared with a bare ``python -c 'import nni'`` spawn measured in the same run
  (target: at most 50 ms beyond it). Also reported: ``engine_only_per_trial_ms`` (the same
  orchestration around the shell command ``true``) and ``trial_api_ms`` (what
  ``get_next_parameter`` + ``report_final_result`` add to a bare ``import nni`` process).
* ``throughput``: 1,000 instant trials (read the parameters, report a final result) at
  concurrency 8 through ``Experiment.run()``, against the spawn floor (the same number of bare
  ``python -c 'import nni'`` processes, 8 at a time) measured in the same run (target: ratio
  at most 1.3).
* ``reference``: 20 trials that report 5 intermediate results 0.1 s apart then a final one,
  concurrency 2, TPE, through ``Experiment.run()`` from start to stopped (target: 8 s).
* ``store``: 10,000 trials x 100 intermediate metrics written to a fresh store, in the
  batches the scheduler uses (one transaction per batch).
"""
from __future__ import annotations

from .bench import bench_overhead, bench_reference, bench_store, bench_throughput

__all__ = ["bench_overhead", "bench_reference", "bench_store", "bench_throughput"]
