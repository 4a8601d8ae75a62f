"""RayTrainingService against a real Ray cluster made with ``ray start --head`` on 127.0.0.1, with
token authentication on (in-process service, no manager): concurrency follows the cluster's
resources, both reuse modes, and ``stop`` leaves no task on the cluster."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from nni.runtime.training_service import ExperimentContext, MetricEvent, StateEvent, TrialJobStatus, TrialSpec  # noqa: E402
from nni.training_services.ray import RayTrainingService  # noqa: E402
from nni.training_services.ray.testing import RayCluster, processes_with_env, ray_unavailable_reason  # noqa: E402

pytestmark = pytest.mark.slow

TRIAL = """\
import json, os, time, nni
p = nni.get_next_parameter()
start = time.time()
time.sleep(p["sleep"])
with open(os.path.join(os.environ["NNI_OUTPUT_DIR"], "span.json"), "w") as f:
    json.dump({"start": start, "end": time.time(), "platform": os.environ["NNI_PLATFORM"]}, f)
nni.report_final_result(p["x"] + 1)
"""


def _cmdlines() -> dict[int, str]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    out[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                pass
    return out


def _runners(experiment_id: str) -> list[str]:
    """Processes serving a runner of the experiment: Ray workers running a runner task (titled
    ``ray::nni-runner-<id>``), or runner processes of the subprocess fallback."""
    return [c for c in _cmdlines().values() if f"nni-runner-{experiment_id}-" in c or f"--runner-id {experiment_id}-" in c]


@pytest.fixture(scope="module")
def cluster():
    """A one-node cluster: 3 CPUs and 2 units of the custom resource ``nni_slot``, token auth on."""
    reason = ray_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with RayCluster(cpus=3, resources={"nni_slot": 2}) as c:
        yield c


@pytest.fixture
def ray_env(cluster, monkeypatch):
    """The service's driver inherits the token (and nothing else tells it)."""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", cluster.token)
    return cluster


def _context(tmp_path: Path, trial_concurrency=None) -> ExperimentContext:
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(TRIAL)
    return ExperimentContext(secrets.token_hex(4), str(tmp_path / "exp"), f"{sys.executable} trial.py", str(code),
                             trial_concurrency=trial_concurrency)


def _param(i: int, sleep: float) -> str:
    return json.dumps({"parameter_id": i, "parameter_source": "algorithm", "parameters": {"x": i, "sleep": sleep}})


async def _collect(ts: RayTrainingService, n: int, timeout: float = 180) -> tuple[dict, dict]:
    finals, metrics = {}, {}

    async def read():
        async for ev in ts.events():
            if isinstance(ev, MetricEvent):
                metrics[ev.trial_id] = json.loads(ev.record["value"])
            elif isinstance(ev, StateEvent) and ev.status.is_final:
                finals[ev.trial_id] = ev
                if len(finals) == n:
                    return

    await asyncio.wait_for(read(), timeout)
    return finals, metrics


@pytest.mark.parametrize("reuse", [True, False])
def test_concurrency_follows_the_cluster_resources(tmp_path, ray_env, reuse):
    ctx = _context(tmp_path, trial_concurrency=4)
    # nni_slot: 1 per trial and 2 on the cluster -> 2 trials at once, though 3 CPUs are free
    ts = RayTrainingService({"platform": "ray", "address": ray_env.address, "numCpusPerTrial": 1,
                             "resources": {"nni_slot": 1}, "reuseMode": reuse}, ctx)

    async def main():
        await ts.start()
        assert ts.capacity() == 2 and len(ts.nodes) == 1
        # runners start with the service, before any trial: trialConcurrency 4, capped by the cluster
        assert ts.runners_started == 2 and ts.runner_count() == 2
        for i in range(5):
            await ts.submit(TrialSpec(f"t{i:04d}", i, _param(i, 0.6)))
        result = await _collect(ts, 5)
        assert ts.runner_count() <= 2
        assert ts.runners_started == (2 if reuse else 5)  # reuse: one task per slot; else one per trial
        await ts.stop()
        return result

    finals, metrics = asyncio.run(main())
    assert {e.status for e in finals.values()} == {TrialJobStatus.SUCCEEDED}, finals
    assert metrics == {f"t{i:04d}": i + 1 for i in range(5)}
    spans = [json.loads((Path(ctx.experiment_dir) / "trials" / t / "span.json").read_text()) for t in finals]
    assert {s["platform"] for s in spans} == {"ray"}
    edges = sorted([(s["start"], 1) for s in spans] + [(s["end"], -1) for s in spans])
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    # never more than the cluster fits; in reuse mode the two runners ran side by side (without
    # reuse a trial of 0.6 s may end before Ray has started the next task's worker)
    assert most == 2 if reuse else 1 <= most <= 2


def test_stop_leaves_no_task_on_the_cluster(tmp_path, ray_env):
    ctx = _context(tmp_path)
    ts = RayTrainingService({"platform": "ray", "address": ray_env.address, "numCpusPerTrial": 1}, ctx)

    async def main():
        await ts.start()
        assert ts.capacity() == 3
        for i in range(4):
            await ts.submit(TrialSpec(f"s{i:04d}", i, _param(i, 120)))
        running = set()
        async for ev in ts.events():
            if isinstance(ev, StateEvent) and ev.status == TrialJobStatus.RUNNING:
                running.add(ev.trial_id)
                if len(running) == 3:
                    break
        assert ts.list_trial_jobs()[3].status == TrialJobStatus.WAITING  # a 4th does not fit
        assert "fits 3 trial(s)" in ts.list_trial_jobs()[3].message
        busy = _runners(ctx.experiment_id)
        assert len(busy) == 3, busy
        t0 = time.monotonic()
        await ts.stop()
        finals = {ev.trial_id: ev.status for ev in ts.get_nowait() if isinstance(ev, StateEvent) and ev.status.is_final}
        return finals, time.monotonic() - t0

    finals, took = asyncio.run(main())
    assert finals == {f"s{i:04d}": TrialJobStatus.SYS_CANCELED for i in range(4)}
    assert took < 60
    assert not _runners(ctx.experiment_id)
    assert not processes_with_env(f"NNI_EXP_ID={ctx.experiment_id}")  # no trial
    available, total = ray_env.query()
    assert available.get("CPU") == total["CPU"] == 3 and available.get("nni_slot") == total["nni_slot"] == 2


def test_a_cluster_without_room_for_one_trial_is_refused_in_one_line(tmp_path, ray_env):
    from nni.runtime.training_service import RequestNeverSatisfiable

    ts = RayTrainingService({"platform": "ray", "address": ray_env.address, "numCpusPerTrial": 4}, _context(tmp_path))
    with pytest.raises(RequestNeverSatisfiable) as info:
        asyncio.run(ts.start())
    msg = str(info.value)
    assert "\n" not in msg and "CPU 4" in msg and "CPU 3" in msg and "numCpusPerTrial" in msg


def test_a_dead_driver_requeues_the_trials_and_is_restarted(tmp_path, ray_env):
    """Ray ends the tasks of a driver that died; the service re-queues their trials, starts a
    new driver and runs trials again."""
    ctx = _context(tmp_path)
    ts = RayTrainingService({"platform": "ray", "address": ray_env.address, "numCpusPerTrial": 1}, ctx)

    async def main():
        await ts.start()
        for i in range(2):
            await ts.submit(TrialSpec(f"d{i:04d}", i, _param(i, 120)))
        running, requeued = set(), {}
        events = ts.events()
        async for ev in events:
            if isinstance(ev, StateEvent) and ev.status == TrialJobStatus.RUNNING:
                running.add(ev.trial_id)
                if len(running) == 2:
                    break
        old = ts._driver
        old.kill()  # the driver process dies (OOM kill, a crash)
        async for ev in events:
            if isinstance(ev, StateEvent) and ev.status.is_final:
                requeued[ev.trial_id] = ev
                if len(requeued) == 2:
                    break
        await ts.submit(TrialSpec("d0002", 2, _param(2, 0.1)))  # what the manager does with a re-queued trial
        async for ev in events:
            if isinstance(ev, StateEvent) and ev.trial_id == "d0002" and ev.status.is_final:
                final = ev
                break
        assert ts._driver is not old and ts._driver.returncode is None
        await ts.stop()
        return requeued, final

    requeued, final = asyncio.run(asyncio.wait_for(main(), 300))
    assert {e.status for e in requeued.values()} == {TrialJobStatus.SYS_CANCELED}
    assert all(e.requeue and "Ray driver exited" in e.message for e in requeued.values()), requeued
    assert final.status == TrialJobStatus.SUCCEEDED
    assert not _runners(ctx.experiment_id)
    assert not processes_with_env(f"NNI_EXP_ID={ctx.experiment_id}")


def test_cancel_early_stop_and_send_parameter_reach_the_trial_on_its_runner(tmp_path, ray_env):
    ctx = _context(tmp_path)
    ts = RayTrainingService({"platform": "ray", "address": ray_env.address, "numCpusPerTrial": 1}, ctx)
    running, final = TrialJobStatus.RUNNING, {}

    async def main():
        await ts.start()
        events = ts.events()

        async def next_state(trial_id):
            """The trial's next RUNNING or final status."""
            async for ev in events:
                if isinstance(ev, StateEvent) and ev.trial_id == trial_id and (ev.status.is_final or ev.status == running):
                    return ev.status

        await ts.submit(TrialSpec("c0000", 0, _param(0, 120)))
        assert await asyncio.wait_for(next_state("c0000"), 120) == running
        await ts.send_parameter("c0000", _param(9, 0))  # the runner writes it where the trial reads it
        assert '"x": 9' in (Path(ctx.experiment_dir) / "trials" / "c0000" / "parameter.cfg").read_text()
        await ts.cancel("c0000")
        final["c0000"] = await asyncio.wait_for(next_state("c0000"), 60)
        await ts.send_parameter("c0000", _param(10, 0))  # a final trial: ignored
        await ts.cancel("c0000")
        await ts.submit(TrialSpec("c0001", 1, _param(1, 120)))
        assert await asyncio.wait_for(next_state("c0001"), 60) == running
        await ts.cancel("c0001", early_stopped=True)
        final["c0001"] = await asyncio.wait_for(next_state("c0001"), 60)
        await ts.submit(TrialSpec("c0002", 2, _param(2, 0.1)))
        while "c0002" not in final or not final["c0002"].is_final:
            final["c0002"] = await asyncio.wait_for(next_state("c0002"), 60)
        started = ts.runners_started
        await ts.stop()
        return started

    started = asyncio.run(asyncio.wait_for(main(), 240))
    assert final == {"c0000": TrialJobStatus.USER_CANCELED, "c0001": TrialJobStatus.EARLY_STOPPED, "c0002": TrialJobStatus.SUCCEEDED}
    assert started == 1  # reuse: the runner of a cancelled trial takes the next one
    assert not _runners(ctx.experiment_id)
    assert not processes_with_env(f"NNI_EXP_ID={ctx.experiment_id}")
