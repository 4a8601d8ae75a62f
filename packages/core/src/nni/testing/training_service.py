"""Contract tests every training service passes (``nni.runtime.training_service``).

A platform package subclasses :class:`TrainingServiceContract` in its tests and implements
:meth:`~TrainingServiceContract.make_service`; pytest then runs every ``test_*`` below against
it::

    from nni.testing.training_service import TrainingServiceContract

    class TestLocalContract(TrainingServiceContract):
        def make_service(self, context, config=None):
            return LocalTrainingService(config or {}, context)

The trials are small Python scripts written into a temporary ``trialCodeDirectory``; they
use the real trial API (``import nni``), so ``nni`` must be importable where trials run.
"""
from __future__ import annotations

import abc
import asyncio
import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Optional

import pytest

from nni.runtime.training_service import (
    ExperimentContext,
    MetricEvent,
    StateEvent,
    TrainingService,
    TrialJobStatus,
    TrialSpec,
)

__all__ = ["TrainingServiceContract", "collect_until_final", "CONTRACT_TRIAL"]

CONTRACT_TRIAL = textwrap.dedent(
    """\
    import json, os, sys, time
    import nni

    params = nni.get_next_parameter()
    mode = params.get("mode", "ok")
    env = {k: os.environ.get(k) for k in ("NNI_PLATFORM", "NNI_EXP_ID", "NNI_TRIAL_JOB_ID", "NNI_TRIAL_SEQ_ID",
                                          "NNI_SYS_DIR", "NNI_OUTPUT_DIR", "MULTI_PHASE")}
    if mode == "env":
        nni.report_final_result({"default": 1, "env": env, "cwd": os.getcwd()})
        sys.exit(0)
    if mode == "phases":  # multi-phase: each later set comes through TrainingService.send_parameter
        finals = [params["final"]]
        while True:
            more = nni.get_next_parameter()
            if more is None:
                break
            finals.append(more["final"])
        nni.report_final_result({"default": sum(finals), "finals": finals})
        sys.exit(0)
    for i in range(params.get("steps", 3)):
        nni.report_intermediate_result(i)
        time.sleep(params.get("delay", 0.01))
    if mode == "fail":
        print("the contract trial fails on purpose", file=sys.stderr)
        sys.exit(3)
    if mode == "sleep":
        time.sleep(60)
    nni.report_final_result(params.get("final", 1.0))
    """
)


async def collect_until_final(ts: TrainingService, trial_ids: set[str], timeout: float = 60) -> list:
    """Events until every trial in ``trial_ids`` reached a final state."""
    events: list = []
    left = set(trial_ids)

    async def consume() -> None:
        async for ev in ts.events():
            events.append(ev)
            if isinstance(ev, StateEvent) and ev.status.is_final:
                left.discard(ev.trial_id)
                if not left:
                    return

    await asyncio.wait_for(consume(), timeout)
    return events


def _parameter(params: dict, pid: int = 0) -> str:
    return json.dumps({"parameter_id": pid, "parameter_source": "algorithm", "parameters": params, "parameter_index": 0})


class TrainingServiceContract(abc.ABC):
    """Behaviour shared by every training service. Subclasses implement :meth:`make_service`."""

    #: seconds to wait for a trial to finish
    timeout: float = 60

    @abc.abstractmethod
    def make_service(self, context: ExperimentContext, config: Optional[dict] = None) -> TrainingService:
        """The training service under test, not started."""

    # ----- fixtures -----

    @pytest.fixture
    def context(self, tmp_path: Path) -> ExperimentContext:
        code = tmp_path / "code"
        code.mkdir()
        (code / "contract_trial.py").write_text(CONTRACT_TRIAL, encoding="utf-8")
        return ExperimentContext(
            experiment_id="contract",
            experiment_dir=str(tmp_path / "exp"),
            trial_command=f"{Path(sys.executable).name} contract_trial.py",
            trial_code_directory=str(code),
        )

    def _run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    # ----- tests -----

    def test_trial_succeeds_with_metrics_in_order(self, context: ExperimentContext) -> None:
        async def go():
            ts = self.make_service(context)
            await ts.start()
            detail = await ts.submit(TrialSpec("okAAA", 0, _parameter({"steps": 3, "final": 0.5})))
            assert detail.id == "okAAA" and detail.status in (TrialJobStatus.WAITING, TrialJobStatus.RUNNING)
            events = await collect_until_final(ts, {"okAAA"}, self.timeout)
            await ts.stop()
            return ts, events

        ts, events = self._run(go())
        states = [e.status for e in events if isinstance(e, StateEvent)]
        assert states[-1] == TrialJobStatus.SUCCEEDED
        assert TrialJobStatus.RUNNING in states
        metrics = [e.record for e in events if isinstance(e, MetricEvent)]
        assert [(m["type"], m["sequence"]) for m in metrics] == [("PERIODICAL", 0), ("PERIODICAL", 1), ("PERIODICAL", 2), ("FINAL", 0)]
        assert json.loads(metrics[-1]["value"]) == 0.5
        assert all(m["trial_job_id"] == "okAAA" and m["parameter_id"] == 0 for m in metrics)
        # every metric comes before the final state
        last_metric = max(i for i, e in enumerate(events) if isinstance(e, MetricEvent))
        final_state = max(i for i, e in enumerate(events) if isinstance(e, StateEvent))
        assert last_metric < final_state
        detail = ts.get_trial_job("okAAA")
        assert detail.status == TrialJobStatus.SUCCEEDED
        assert detail.start_time is not None and detail.end_time is not None and detail.end_time >= detail.start_time
        assert [d.id for d in ts.list_trial_jobs()] == ["okAAA"]

    def test_environment(self, context: ExperimentContext) -> None:
        async def go():
            ts = self.make_service(context)
            await ts.start()
            await ts.submit(TrialSpec("envAA", 7, _parameter({"mode": "env"})))
            events = await collect_until_final(ts, {"envAA"}, self.timeout)
            await ts.stop()
            return events

        events = self._run(go())
        final = [e.record for e in events if isinstance(e, MetricEvent) and e.record["type"] == "FINAL"]
        assert len(final) == 1
        value = json.loads(final[0]["value"])
        env = value["env"]
        assert env["NNI_PLATFORM"] and env["NNI_EXP_ID"] == "contract"
        assert env["NNI_TRIAL_JOB_ID"] == "envAA" and env["NNI_TRIAL_SEQ_ID"] == "7"
        assert env["NNI_SYS_DIR"] and env["NNI_OUTPUT_DIR"]
        assert env["MULTI_PHASE"] == "false"

    def test_failed_trial_keeps_stderr_tail(self, context: ExperimentContext) -> None:
        async def go():
            ts = self.make_service(context)
            await ts.start()
            await ts.submit(TrialSpec("failA", 0, _parameter({"mode": "fail", "steps": 1})))
            events = await collect_until_final(ts, {"failA"}, self.timeout)
            await ts.stop()
            return events

        events = self._run(go())
        final = [e for e in events if isinstance(e, StateEvent)][-1]
        assert final.status == TrialJobStatus.FAILED
        assert "the contract trial fails on purpose" in final.message
        assert final.exit_code == 3

    def test_cancel_and_early_stop(self, context: ExperimentContext) -> None:
        async def go():
            ts = self.make_service(context)
            await ts.start()
            await ts.submit(TrialSpec("userC", 0, _parameter({"mode": "sleep", "steps": 1})))
            await ts.submit(TrialSpec("early", 1, _parameter({"mode": "sleep", "steps": 1})))
            # wait until both run, then cancel
            running: set[str] = set()
            events: list = []
            async for ev in ts.events():
                events.append(ev)
                if isinstance(ev, StateEvent) and ev.status == TrialJobStatus.RUNNING:
                    running.add(ev.trial_id)
                if running == {"userC", "early"}:
                    break
            await ts.cancel("userC")
            await ts.cancel("early", early_stopped=True)
            events += await collect_until_final(ts, {"userC", "early"}, self.timeout)
            await ts.cancel("userC")  # cancelling a finished trial does nothing
            await ts.stop()
            return ts

        ts = self._run(go())
        assert ts.get_trial_job("userC").status == TrialJobStatus.USER_CANCELED
        early = ts.get_trial_job("early")
        assert early.status == TrialJobStatus.EARLY_STOPPED and early.is_early_stopped

    def test_stop_cancels_running_trials_and_ends_events(self, context: ExperimentContext) -> None:
        async def go():
            ts = self.make_service(context)
            await ts.start()
            await ts.submit(TrialSpec("stopA", 0, _parameter({"mode": "sleep", "steps": 1})))
            async for ev in ts.events():
                if isinstance(ev, StateEvent) and ev.status == TrialJobStatus.RUNNING:
                    break
            await asyncio.wait_for(ts.stop(), self.timeout)
            rest = [ev async for ev in ts.events()]  # must end
            return ts, rest

        ts, rest = self._run(go())
        assert ts.get_trial_job("stopA").status.is_final
        assert any(isinstance(e, StateEvent) and e.status.is_final for e in rest)

    def test_unknown_trial(self, context: ExperimentContext) -> None:
        ts = self.make_service(context)
        with pytest.raises(KeyError):
            ts.get_trial_job("nope!")

    def test_send_parameter_reaches_the_waiting_trial(self, context: ExperimentContext) -> None:
        """Multi-phase: the trial asks (a REQUEST_PARAMETER record), the manager answers with
        :meth:`~TrainingService.send_parameter`; a set with ``"parameters": null`` ends it."""

        async def go():
            ts = self.make_service(context)
            await ts.start()
            with pytest.raises(KeyError):
                await ts.send_parameter("nope!", _parameter({"final": 1}))
            first = _parameter({"mode": "phases", "final": 1})
            await ts.submit(TrialSpec("multi", 0, first, env={"MULTI_PHASE": "true"}))
            events: list = []
            answers = iter([{"final": 10}, {"final": 100}, None])
            async for ev in ts.events():
                events.append(ev)
                if isinstance(ev, MetricEvent) and ev.record["type"] == "REQUEST_PARAMETER":
                    index = ev.record["parameter_index"]
                    params = next(answers)
                    line = {"parameter_id": None if params is None else index, "parameter_source": "algorithm",
                            "parameters": params, "parameter_index": index}
                    await ts.send_parameter("multi", json.dumps(line))
                if isinstance(ev, StateEvent) and ev.status.is_final:
                    break
            await ts.stop()
            return events

        events = self._run(go())
        asked = [e.record["parameter_index"] for e in events if isinstance(e, MetricEvent) and e.record["type"] == "REQUEST_PARAMETER"]
        assert asked == [1, 2, 3]
        final = [e.record for e in events if isinstance(e, MetricEvent) and e.record["type"] == "FINAL"]
        assert len(final) == 1 and json.loads(final[0]["value"])["finals"] == [1, 10, 100]
        assert [e.status for e in events if isinstance(e, StateEvent)][-1] == TrialJobStatus.SUCCEEDED
