"""Per-trial overhead of the trial runner over pipes vs the local training service in-process.

    .venv/bin/python -m nni.engine_benchmark.runner_overhead [--trials 20] [--concurrency 4] [--repeat 3]

Runs ``--trials`` no-op trials (``python -c pass``) ``--concurrency`` at a time, first with a
:class:`LocalTrainingService` in this process, then through ``python -m
nni.training_services.local.runner`` driven by :class:`RunnerClient` over pipes; prints the
median over ``--repeat`` runs of the batch's wall time and of the per-trial latency (submit to
the final state event arriving here). The runner's start-up (process + hello) is timed apart.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time

from nni.runtime.runner_client import spawn_local_runner
from nni.runtime.training_service import ExperimentContext, StateEvent, TrialSpec
from nni.training_services.local import LocalTrainingService

PARAM = json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": {}, "parameter_index": 0})


async def _batch(submit, events, trials: int, concurrency: int) -> tuple[float, list[float]]:
    """Keep ``concurrency`` trials running until ``trials`` ended; (wall s, per-trial latencies s)."""
    started: dict[str, float] = {}
    latencies: list[float] = []
    t0 = time.perf_counter()
    next_id = 0

    async def launch() -> None:
        nonlocal next_id
        trial_id = f"t{next_id:04d}"
        started[trial_id] = time.perf_counter()
        await submit(TrialSpec(trial_id, next_id, PARAM))
        next_id += 1

    for _ in range(min(concurrency, trials)):
        await launch()
    async for ev in events():
        if isinstance(ev, StateEvent) and ev.status.is_final:
            latencies.append(time.perf_counter() - started[ev.trial_id])
            if len(latencies) == trials:
                break
            if next_id < trials:
                await launch()
    return time.perf_counter() - t0, latencies


async def run_local(trials: int, concurrency: int) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        ts = LocalTrainingService({}, ExperimentContext("bench", f"{tmp}/exp", "python -c pass", tmp))
        await ts.start()
        result = await _batch(ts.submit, ts.events, trials, concurrency)
        await ts.stop()
        return result


async def run_runner(trials: int, concurrency: int) -> tuple[float, list[float], float]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        client = await spawn_local_runner()
        await client.hello(ExperimentContext("bench", f"{tmp}/exp", "python -c pass", tmp))
        startup = time.perf_counter() - t0
        wall, lat = await _batch(client.submit, client.events, trials, concurrency)
        await client.stop()
        return wall, lat, startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    local_walls, local_lat, runner_walls, runner_lat, startups = [], [], [], [], []
    for _ in range(args.repeat):
        wall, lat = asyncio.run(run_local(args.trials, args.concurrency))
        local_walls.append(wall)
        local_lat.append(statistics.median(lat))
        wall, lat, startup = asyncio.run(run_runner(args.trials, args.concurrency))
        runner_walls.append(wall)
        runner_lat.append(statistics.median(lat))
        startups.append(startup)
    med = statistics.median
    print(f"{args.trials} no-op trials, concurrency {args.concurrency}, median of {args.repeat} runs")
    print(f"  local service in-process: batch {med(local_walls) * 1000:7.1f} ms, per-trial latency {med(local_lat) * 1000:6.1f} ms")
    print(f"  runner over pipes:        batch {med(runner_walls) * 1000:7.1f} ms, per-trial latency {med(runner_lat) * 1000:6.1f} ms")
    extra_batch = (med(runner_walls) - med(local_walls)) / args.trials * 1000
    print(f"  extra per trial: {med(runner_lat) * 1000 - med(local_lat) * 1000:+.1f} ms latency, {extra_batch:+.1f} ms of batch time")
    print(f"  runner start-up (process + hello, once per worker): {med(startups) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
