"""RunnerPool: the bookkeeping the remote platforms share, through the smallest platform built on
it (trial runners over pipes on this machine) — core's contract suite, a lost runner, hand-over
failures and cancels that race the hand-over."""
from __future__ import annotations

import asyncio
import json
import sys
from typing import Optional

import pytest

from nni.runtime.runner_client import RunnerClient, RunnerConnectionLost, spawn_local_runner
from nni.runtime.training_service import (
    ExperimentContext,
    RequestNeverSatisfiable,
    StateEvent,
    TrialJobDetail,
    TrialJobStatus,
    TrialSpec,
)
from nni.testing.training_service import CONTRACT_TRIAL, TrainingServiceContract, collect_until_final
from nni.training_services.local.runner_pool import RunnerPool


class _Runner:
    def __init__(self, name: str, client: RunnerClient) -> None:
        self.name = name
        self.client = client
        self.up = True
        self.trial: Optional[str] = None


class PipePool(RunnerPool):
    """``size`` runners over pipes, one trial each at a time; a lost runner's trial is re-queued."""

    platform = "remote"

    def __init__(self, config: dict, context: ExperimentContext, size: int = 2) -> None:
        super().__init__(config, context)
        self.size = size
        self.runners: list[_Runner] = []

    async def start(self) -> None:
        async def launch(i: int) -> _Runner:
            client = await spawn_local_runner()
            await client.hello(self.context, self.config, platform="remote", options={"kill_grace": 2})
            return _Runner(f"runner {i}", client)

        self.runners = list(await asyncio.gather(*(launch(i) for i in range(self.size))))
        for runner in self.runners:
            self._spawn(self._pump(runner))
        self._started = True
        self._dispatch()

    def _idle_runner(self, trial_id: str) -> Optional[_Runner]:
        return next((r for r in self.runners if r.up and r.trial is None), None)

    def _hand_over(self, runner: _Runner, trial_id: str) -> None:
        runner.trial = trial_id
        self._owner[trial_id] = runner
        self._spawn(self._send(runner, trial_id))

    def _launch_for_backlog(self) -> None:
        self._note_waiting("waiting for a free runner")

    async def _send(self, runner: _Runner, trial_id: str) -> None:
        result = await self._submit_to(runner.client, trial_id, runner.name)
        if isinstance(result, Exception):
            runner.trial = None
            self._owner.pop(trial_id, None)
            if not isinstance(result, RequestNeverSatisfiable):
                self._requeue_first(trial_id)
            self._dispatch()

    def _client_of(self, trial_id: str) -> Optional[RunnerClient]:
        runner = self._owner.get(trial_id)
        return runner.client if runner is not None and runner.up else None

    def _on_runner_state(self, runner: _Runner, detail: TrialJobDetail, event: StateEvent) -> None:
        self._set_status(detail, event.status, event.message, event.exit_code, event.time)
        if event.status.is_final:
            runner.trial = None
            self._dispatch()

    async def _pump(self, runner: _Runner) -> None:
        closed = await self._forward(runner, runner.client)
        runner.up = False
        if runner.trial is not None and not self._stopping:
            self._requeue(self._trials[runner.trial], f"{runner.name} was lost ({closed})")
            runner.trial = None
        self._dispatch()

    async def _stop_runners(self) -> None:
        await asyncio.gather(*(r.client.stop() for r in self.runners if r.up), return_exceptions=True)


class TestRunnerPoolContract(TrainingServiceContract):
    timeout = 60

    def make_service(self, context, config=None):
        return PipePool(config or {}, context)


def _trial(mode: str) -> str:
    """The contract trial's parameter: ``sleep`` runs for a minute, ``ok`` ends at once."""
    return json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"mode": mode, "steps": 1},
                       "parameter_index": 0})


@pytest.fixture
def context(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "contract_trial.py").write_text(CONTRACT_TRIAL, encoding="utf-8")
    return ExperimentContext("poolexp1", str(tmp_path / "exp"), f"{sys.executable} contract_trial.py", str(code))


def test_backlog_waits_with_the_reason_and_a_lost_runner_requeues_its_trial(context):
    async def main():
        ts = PipePool({}, context, size=1)
        await ts.start()
        try:
            await ts.submit(TrialSpec("first", 0, _trial("sleep")))
            await ts.submit(TrialSpec("second", 1, _trial("ok")))
            assert ts.get_trial_job("second").message == "waiting for a free runner"
            async for ev in ts.events():
                if isinstance(ev, StateEvent) and ev.trial_id == "first" and ev.status == TrialJobStatus.RUNNING:
                    break
            ts.runners[0].client.process.kill()  # the runner (and so its trial) is lost
            await collect_until_final(ts, {"first"}, 30)
            await ts.cancel("second")  # still in the backlog: no runner left
            await ts.cancel("never-submitted")  # nothing to do
        finally:
            await ts.stop()
        with pytest.raises(RuntimeError, match="the remote training service is stopping"):
            await ts.submit(TrialSpec("late", 2, _trial("ok")))
        return ts

    ts = asyncio.run(main())
    first = ts.get_trial_job("first")
    assert first.status == TrialJobStatus.SYS_CANCELED and first.message.startswith("runner 0 was lost")
    assert ts.get_trial_job("second").status == TrialJobStatus.USER_CANCELED
    assert not ts._cancelling and not ts._backlog


class _Refusing:
    """A runner client whose submit fails as told (no process needed)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.cancelled: list[str] = []

    async def submit(self, spec):
        raise self.error

    async def cancel(self, trial_id, early_stopped=False, status=None):
        self.cancelled.append(trial_id)


def test_submit_to_fails_a_never_satisfiable_trial_and_leaves_a_lost_one_for_requeue(context):
    async def main():
        ts = PipePool({}, context, size=0)
        for trial_id in ("big", "lost"):
            await ts.submit(TrialSpec(trial_id, 0, _trial("ok")))
        ts._backlog.clear()
        big = await ts._submit_to(_Refusing(RequestNeverSatisfiable("needs 8 GPUs, 1 here")), "big", "machine m1")
        lost = await ts._submit_to(_Refusing(RunnerConnectionLost("gone")), "lost", "machine m1")
        ts._requeue_first("lost")
        return ts, big, lost

    ts, big, lost = asyncio.run(main())
    assert isinstance(big, RequestNeverSatisfiable) and isinstance(lost, RunnerConnectionLost)
    detail = ts.get_trial_job("big")
    assert detail.status == TrialJobStatus.FAILED and detail.message == "machine m1: needs 8 GPUs, 1 here"
    assert ts.get_trial_job("lost").status == TrialJobStatus.WAITING and ts._backlog == ["lost"]


def test_a_trial_cancelled_while_handed_over_frees_its_runner(context):
    """Cancelled in the same tick as its submit, before the runner has it: the pool marks it
    cancelled and cancels it on the runner once handed over; the runner's report of that end
    must free the runner, or the next trial would wait for it forever."""
    async def main():
        ts = PipePool({}, context, size=1)
        await ts.start()
        client = ts.runners[0].client
        submit = client.submit

        async def slow_submit(spec):  # the hand-over is still on its way when the cancel comes
            await asyncio.sleep(0.3)
            return await submit(spec)

        client.submit = slow_submit
        try:
            await ts.submit(TrialSpec("raced", 0, _trial("sleep")))
            await ts.cancel("raced")
            assert ts.get_trial_job("raced").status == TrialJobStatus.USER_CANCELED
            await ts.submit(TrialSpec("next", 1, _trial("ok")))
            await collect_until_final(ts, {"next"}, 30)
        finally:
            await ts.stop()
        return ts

    ts = asyncio.run(main())
    assert ts.get_trial_job("next").status == TrialJobStatus.SUCCEEDED
