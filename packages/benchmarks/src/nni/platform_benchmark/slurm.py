"""SLURM against local: the issue's workload (100 trials of 0.1 s at concurrency 4), same run.

``python -m nni.platform_benchmark --platform slurm [--trials 100] [--concurrency 4]
[--trial-seconds 0.1] [--modes reuse,single] [--fast-scheduling]``

Starts a real single-node SLURM cluster (:class:`nni.training_services.slurm.testing.SlurmCluster`:
Debian's slurm-wlm, root, munge) and runs the workload through the real manager on ``local``
and on ``slurm`` in reuse mode (a few runner jobs take trial after trial) and with one job per
trial (``reuseMode: false``). For each SLURM run it reads the service's ``slurm/stats.json``:
seconds spent in sbatch / squeue / scontrol / scancel calls and each job's start latency
(sbatch until its runner connected), and reports their share of the wall time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from .common import timed_run


def _slurm_figures(run: dict, concurrency: int, local_wall: float) -> dict:
    stats_file = Path(run["experiment_dir"]) / "slurm" / "stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {"commands": {}, "job_start_latency_s": [], "jobs_submitted": None}
    commands = stats["commands"]
    command_s = sum(c["seconds"] for c in commands.values())
    starts = stats["job_start_latency_s"]
    wall = run["wall_s"]
    # the slots' time spent waiting for jobs to start, spread over the concurrent slots
    start_wait = sum(starts) / concurrency
    return {
        "wall_s": round(wall, 2),
        "ratio_to_local": round(wall / local_wall, 2),
        "succeeded": run["succeeded"],
        "jobs_submitted": stats["jobs_submitted"],
        "calls": {name: c["calls"] for name, c in commands.items()},
        "sbatch_s": round(commands.get("sbatch", {}).get("seconds", 0.0), 3),
        "squeue_s": round(commands.get("squeue", {}).get("seconds", 0.0), 3),
        "slurm_commands_s": round(command_s, 3),
        "slurm_commands_share": round(command_s / wall, 3),
        "job_start_latency_median_s": round(statistics.median(starts), 2) if starts else None,
        "job_start_wait_s": round(start_wait, 2),
        "job_start_wait_share": round(start_wait / wall, 3),
        "trial_run_overhead_ms": round(run["trial_overhead_s"] * 1000) if run["trial_overhead_s"] is not None else None,
    }


def bench_slurm(trials: int = 100, concurrency: int = 4, trial_seconds: float = 0.1, modes: tuple = ("reuse", "single"),
                fast_scheduling: bool = False) -> dict:
    try:
        from nni.training_services.slurm.testing import SlurmCluster, cluster_unavailable_reason
    except ImportError:
        return {"benchmark": "platform-slurm", "skipped": "nni-ts-slurm is not installed (pip install packages/training-services/slurm)"}
    reason = cluster_unavailable_reason()
    if reason:
        return {"benchmark": "platform-slurm", "skipped": reason}
    cluster = SlurmCluster(cpus=max(8, concurrency * 2), fast_scheduling=fast_scheduling)
    old_conf = os.environ.get("SLURM_CONF")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ.setdefault("NNI_EXPERIMENTS_DIR", str(workdir / "registry"))
        try:
            cluster.start()
            os.environ["SLURM_CONF"] = str(cluster.conf)  # the manager (a child process) finds the cluster
            local = timed_run(workdir / "local", "local", trials, concurrency, {"platform": "local"}, trial_seconds)
            result = {
                "benchmark": "platform-slurm", "trials": trials, "concurrency": concurrency, "trial_s": trial_seconds,
                "scheduler": "sched/builtin, sched_interval=1" if fast_scheduling else "sched/builtin (Debian defaults)",
                "local": {"wall_s": round(local["wall_s"], 2), "succeeded": local["succeeded"],
                          "trial_run_overhead_ms": round(local["trial_overhead_s"] * 1000) if local["trial_overhead_s"] is not None else None},
            }
            for mode in modes:
                ts = {"platform": "slurm", "reuseMode": mode == "reuse"}
                run = timed_run(workdir / f"slurm-{mode}", f"slurm-{mode}", trials, concurrency, ts, trial_seconds)
                result[f"slurm_{mode}"] = _slurm_figures(run, concurrency, local["wall_s"])
                if cluster.active_jobs():
                    result[f"slurm_{mode}"]["jobs_left_after_stop"] = cluster.active_jobs()
        finally:
            cluster.stop()
            if old_conf is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = old_conf
    result["all_succeeded"] = all(result[k]["succeeded"] == trials for k in result if k == "local" or k.startswith("slurm_"))
    result["load_average"] = round(os.getloadavg()[0], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nni.platform_benchmark --platform slurm")
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--trial-seconds", type=float, default=0.1)
    p.add_argument("--modes", default="reuse,single", help="comma-separated: reuse (runner jobs take trial after trial), single (one job per trial)")
    p.add_argument("--fast-scheduling", action="store_true", help="SchedulerParameters=sched_interval=1 (jobs start ~1 s after sbatch instead of 2-3 s)")
    args = p.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m)
    bad = [m for m in modes if m not in ("reuse", "single")]
    if bad:
        p.error(f"--modes: unknown mode(s) {', '.join(bad)}; allowed: reuse, single")
    print(json.dumps(bench_slurm(args.trials, args.concurrency, args.trial_seconds, modes, args.fast_scheduling)), flush=True)
    return 0
