"""HybridTrainingService: routing by capacity, merged events, forwarding, checks (issue 13 item 6).

The platforms here keep their trials in memory (core may not import a platform package); the
same class runs real local trials in tests/cli/test_hybrid_e2e.py."""
from __future__ import annotations

import asyncio
from typing import Optional

import pytest

from nni.runtime.hybrid_training_service import HybridTrainingService, build_training_service
from nni.runtime.training_service import (
    ExperimentContext,
    MetricEvent,
    RequestNeverSatisfiable,
    StateEvent,
    TrainingService,
    TrialJobDetail,
    TrialJobStatus,
    TrialSpec,
    now_ms,
)

CTX = ExperimentContext("hyb00001", "/nonexistent/exp", "true", "/nonexistent/code")


class MemoryPlatform(TrainingService):
    """Trials run until :meth:`finish`; ``cap`` is its capacity, ``max_gpus`` the GPUs it has."""

    def __init__(self, name: str, cap: Optional[int] = None, max_gpus: Optional[int] = None) -> None:
        super().__init__({"platform": name}, CTX)
        self.platform = name
        self.cap, self.max_gpus = cap, max_gpus
        self.log: list[tuple] = []

    def capacity(self) -> Optional[int]:
        return self.cap

    def check_request(self, gpu_number: Optional[int]) -> None:
        if gpu_number and (self.max_gpus or 0) < gpu_number:
            raise RequestNeverSatisfiable(f"only {self.max_gpus or 0} GPU(s)")

    async def start(self) -> None:
        self.log.append(("start",))
        self._queue()

    async def submit(self, spec: TrialSpec) -> TrialJobDetail:
        detail = TrialJobDetail(spec.trial_id, TrialJobStatus.WAITING, spec.sequence_id, now_ms(), f"/{self.platform}/{spec.trial_id}")
        self._trials[spec.trial_id] = detail
        self._set_status(detail, TrialJobStatus.RUNNING)
        return detail

    def finish(self, trial_id: str) -> None:
        self._emit(MetricEvent(trial_id, {"type": "FINAL", "value": "1"}, now_ms()))
        self._set_status(self._trials[trial_id], TrialJobStatus.SUCCEEDED, exit_code=0)

    async def cancel(self, trial_id: str, early_stopped: bool = False, status: Optional[TrialJobStatus] = None) -> None:
        self.log.append(("cancel", trial_id, early_stopped, status))
        self._set_status(self._trials[trial_id], status or TrialJobStatus.USER_CANCELED)

    async def send_parameter(self, trial_id: str, parameter: str) -> None:
        self.get_trial_job(trial_id)
        self.log.append(("parameter", trial_id, parameter))

    async def stop(self) -> None:
        self.log.append(("stop",))
        for d in self._trials.values():
            self._set_status(d, TrialJobStatus.SYS_CANCELED)
        self._end_events()


async def _drain(ts: TrainingService) -> list:
    await asyncio.sleep(0)
    return ts.get_nowait()


def test_trials_spread_by_capacity_and_events_merge():
    local, remote = MemoryPlatform("local"), MemoryPlatform("remote", cap=2)
    hybrid = HybridTrainingService([local, remote], CTX)

    async def go():
        await hybrid.start()
        placed = []
        for i in range(6):
            detail = await hybrid.submit(TrialSpec(f"t{i}", i, "{}"))
            placed.append(detail.platform)
        # unbounded local counts as large as remote (2): alternate; once both have 2, remote is
        # full, so the rest go to local
        assert placed == ["local", "remote", "local", "remote", "local", "local"]
        assert hybrid.capacity() is None and hybrid.platform_counts() == {"local": 4, "remote": 2}
        remote.finish("t1")
        await asyncio.sleep(0.01)  # the hybrid learns it from the merged feed
        # remote has room again: the next trial goes there
        assert (await hybrid.submit(TrialSpec("t6", 6, "{}"))).platform == "remote"
        events = await _drain(hybrid)
        assert [(e.trial_id, e.status.value) for e in events if isinstance(e, StateEvent)][-2:] == [("t1", "SUCCEEDED"), ("t6", "RUNNING")]
        assert [e.trial_id for e in events if isinstance(e, MetricEvent)] == ["t1"]
        assert hybrid.get_trial_job("t3").platform == "remote" and hybrid.get_trial_job("t0").working_directory == "/local/t0"
        assert [d.id for d in hybrid.list_trial_jobs()] == [f"t{i}" for i in range(7)]

        await hybrid.cancel("t2", early_stopped=True)
        await hybrid.send_parameter("t3", '{"parameter_index": 1}')
        assert local.log[-1] == ("cancel", "t2", True, None)
        assert remote.log[-1] == ("parameter", "t3", '{"parameter_index": 1}')
        with pytest.raises(KeyError):
            await hybrid.send_parameter("ghost", "{}")

        await hybrid.stop()
        assert ("stop",) in local.log and ("stop",) in remote.log
        rest = [e async for e in hybrid.events()]  # the feed ends after the last event of both
        assert {e.trial_id for e in rest if e.status == TrialJobStatus.SYS_CANCELED} == {"t0", "t4", "t5", "t3", "t6"}

    asyncio.run(go())


def test_check_request_needs_one_platform_and_routes_only_there():
    cpu, gpu = MemoryPlatform("local"), MemoryPlatform("remote", cap=4, max_gpus=2)
    hybrid = HybridTrainingService([cpu, gpu], CTX)
    hybrid.check_request(2)  # passes: remote has 2 GPUs

    async def go():
        await hybrid.start()
        assert {(await hybrid.submit(TrialSpec(f"g{i}", i, "{}"))).platform for i in range(3)} == {"remote"}
        await hybrid.stop()

    asyncio.run(go())
    with pytest.raises(RequestNeverSatisfiable, match=r"^no platform of the hybrid trainingService can run a trial: local: only 0 GPU\(s\); remote: only 2 GPU\(s\)$"):
        HybridTrainingService([MemoryPlatform("local"), MemoryPlatform("remote", max_gpus=2)], CTX).check_request(3)


def test_full_platforms_take_the_least_loaded():
    a, b = MemoryPlatform("local", cap=1), MemoryPlatform("remote", cap=3)
    hybrid = HybridTrainingService([a, b], CTX)

    async def go():
        await hybrid.start()
        placed = [(await hybrid.submit(TrialSpec(f"t{i}", i, "{}"))).platform for i in range(6)]
        # both full after four: the least loaded relative to capacity (a tie: the first entry)
        assert placed == ["local", "remote", "remote", "remote", "local", "remote"]
        assert hybrid.capacity() == 4
        await hybrid.stop()

    asyncio.run(go())


def test_build_training_service():
    classes = {"local": lambda c, ctx: MemoryPlatform("local"), "remote": lambda c, ctx: MemoryPlatform("remote")}
    single = build_training_service([{"platform": "local"}], CTX, classes.__getitem__)
    assert isinstance(single, MemoryPlatform)
    both = build_training_service([{"platform": "remote"}, {"platform": "local"}], CTX, classes.__getitem__)
    assert isinstance(both, HybridTrainingService) and [s.platform for s in both.services] == ["remote", "local"]
    with pytest.raises(ValueError, match="at least one platform"):
        HybridTrainingService([], CTX)


def test_a_platform_that_fails_to_stop_does_not_hang_the_others():
    class Broken(MemoryPlatform):
        async def stop(self) -> None:
            raise OSError("ssh: connection lost")

    good, broken = MemoryPlatform("local"), Broken("remote")
    hybrid = HybridTrainingService([good, broken], CTX)

    async def go():
        await hybrid.start()
        await hybrid.submit(TrialSpec("t0", 0, "{}"))
        with pytest.raises(OSError, match="connection lost"):
            await asyncio.wait_for(hybrid.stop(), 5)
        return [e async for e in hybrid.events()]  # the merged feed still ends

    events = asyncio.run(go())
    assert [(e.trial_id, e.status.value) for e in events][-1] == ("t0", "SYS_CANCELED")
