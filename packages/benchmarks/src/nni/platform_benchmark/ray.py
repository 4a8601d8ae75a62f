"""Ray against local: the issue's workload (100 trials of 0.1 s at concurrency 4), same run.

``python -m nni.platform_benchmark --platform ray [--trials 100] [--concurrency 4]
[--trial-seconds 0.1] [--modes cluster,own,single]``

Runs the workload through the real manager on ``local`` and then on ``ray``:

* ``cluster``: an existing cluster (``address``), made beforehand with ``ray start --head`` on
  127.0.0.1 with ``concurrency`` CPUs and token authentication
  (:class:`nni.training_services.ray.testing.RayCluster`); reuse mode, one CPU per trial. This is
  the target's figure: a Ray cluster is normally up before experiments use it.
* ``own``: no ``address``: the experiment starts (and stops) its own local cluster, whose
  start-up is part of the wall time (``ray.init`` takes ~4 s on an idle machine).
* ``single``: the existing cluster with ``reuseMode: false`` (one Ray task per trial).

Each result has ``wall_s`` (``Experiment.run``, start to end), ``trials_span_s`` (first trial
start to last trial end) and their ratios to local; ``within_2x_local`` is the target
(``cluster`` mode's wall time at most twice local's).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from .common import timed_run

MODES = ("cluster", "own", "single")


def _figures(run: dict, local: dict) -> dict:
    out = {"wall_s": round(run["wall_s"], 2), "ratio_to_local": round(run["wall_s"] / local["wall_s"], 2),
           "succeeded": run["succeeded"]}
    if run.get("trials_span_s") and local.get("trials_span_s"):
        out["trials_span_s"] = round(run["trials_span_s"], 2)
        out["trials_span_ratio_to_local"] = round(run["trials_span_s"] / local["trials_span_s"], 2)
    if run["trial_overhead_s"] is not None:
        out["trial_run_overhead_ms"] = round(run["trial_overhead_s"] * 1000)
    return out


def bench_ray(trials: int = 100, concurrency: int = 4, trial_seconds: float = 0.1, modes: tuple = ("cluster", "own")) -> dict:
    try:
        from nni.training_services.ray.testing import RayCluster, ray_unavailable_reason
    except ImportError:
        return {"benchmark": "platform-ray", "skipped": "nni-ts-ray is not installed (pip install 'packages/training-services/ray[ray]')"}
    reason = ray_unavailable_reason()
    if reason:
        return {"benchmark": "platform-ray", "skipped": reason}
    result: dict = {"benchmark": "platform-ray", "trials": trials, "concurrency": concurrency, "trial_s": trial_seconds}
    saved = dict(os.environ)
    cluster = None
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("NNI_EXPERIMENTS_DIR", str(workdir / "registry"))
        try:
            if "cluster" in modes or "single" in modes:
                cluster = RayCluster(cpus=concurrency).start()
            local = timed_run(workdir / "local", "local", trials, concurrency, {"platform": "local"}, trial_seconds)
            result["local"] = {"wall_s": round(local["wall_s"], 2), "succeeded": local["succeeded"]}
            if local.get("trials_span_s"):
                result["local"]["trials_span_s"] = round(local["trials_span_s"], 2)
            if local["trial_overhead_s"] is not None:
                result["local"]["trial_run_overhead_ms"] = round(local["trial_overhead_s"] * 1000)
            base_env = dict(os.environ)
            for mode in modes:
                ts: dict = {"platform": "ray", "numCpusPerTrial": 1}
                os.environ.clear()
                os.environ.update(base_env)
                if mode == "own":
                    ts["localClusterCpus"] = concurrency
                else:
                    ts["address"] = cluster.address
                    ts["reuseMode"] = mode == "cluster"
                    os.environ.update(cluster.env())  # the manager's driver joins with the token
                run = timed_run(workdir / f"ray-{mode}", f"ray-{mode}", trials, concurrency, ts, trial_seconds)
                result[f"ray_{mode}"] = _figures(run, local)
            os.environ.clear()
            os.environ.update(base_env)
            if cluster is not None:
                available, total = cluster.query()
                result["cluster_cpus_free_after_stop"] = f"{available.get('CPU', 0):g}/{total.get('CPU', 0):g}"
        finally:
            if cluster is not None:
                cluster.stop()
            os.environ.clear()
            os.environ.update(saved)
    runs = [k for k in result if k == "local" or k.startswith("ray_")]
    result["all_succeeded"] = all(result[k]["succeeded"] == trials for k in runs)
    if "ray_cluster" in result:
        result["within_2x_local"] = result["ray_cluster"]["ratio_to_local"] <= 2.0
    result["load_average"] = round(os.getloadavg()[0], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nni.platform_benchmark --platform ray")
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--trial-seconds", type=float, default=0.1)
    p.add_argument("--modes", default="cluster,own",
                   help="comma-separated: cluster (an existing cluster, reuse mode), own (the experiment starts a local "
                        "cluster), single (existing cluster, one task per trial)")
    args = p.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m)
    bad = [m for m in modes if m not in MODES]
    if bad:
        p.error(f"--modes: unknown mode(s) {', '.join(bad)}; allowed: {', '.join(MODES)}")
    print(json.dumps(bench_ray(args.trials, args.concurrency, args.trial_seconds, modes)), flush=True)
    return 0
