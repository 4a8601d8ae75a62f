"""Issue 13 items 5-6 (server side): a trial its platform loses is re-run with the same
parameters and not counted; each trial row and REST item records the platform that ran it;
stores written before the ``platform`` column still open.

A real scheduler with a real dispatcher (Random tuner) and a training service that runs
nothing: it "loses" chosen trials the way a remote platform does when a machine goes down.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from typing import Optional

from nni.runtime.protocol import CommandType
from nni.runtime.training_service import MetricEvent, StateEvent, TrainingService, TrialJobDetail, TrialJobStatus, TrialSpec, now_ms
from nni.server.resume import recover_interrupted_trials, replay_data
from nni.server.scheduler import TrialScheduler, make_context
from nni.server.store import ExperimentStore, store_path

LOST = "machine m1 (127.0.0.1:2201) is down: connection refused"


class FlakyPlatform(TrainingService):
    """Runs nothing. Trial ``n`` (0-based submission order) in ``lose`` is lost (SYS_CANCELED,
    requeue); the others report their ``x`` as final result and succeed. With ``lose_on_stop``
    the trials still running when the experiment stops are lost instead of cancelled."""

    platform = "flaky"

    def __init__(self, config: dict, context, lose: set[int], lose_on_stop: bool = False, hold: bool = False) -> None:
        super().__init__(config, context)
        self.lose, self.lose_on_stop, self.hold = lose, lose_on_stop, hold
        self.submitted: list[TrialSpec] = []

    async def start(self) -> None:
        self._queue()

    async def submit(self, spec: TrialSpec) -> TrialJobDetail:
        n = len(self.submitted)
        self.submitted.append(spec)
        detail = TrialJobDetail(spec.trial_id, TrialJobStatus.WAITING, spec.sequence_id, now_ms(), "/remote/trials/" + spec.trial_id)
        self._trials[spec.trial_id] = detail
        self._set_status(detail, TrialJobStatus.RUNNING)
        if not self.hold:
            asyncio.get_running_loop().call_later(0.05, self._finish, detail, spec, n in self.lose)
        return detail

    def _finish(self, detail: TrialJobDetail, spec: TrialSpec, lose: bool) -> None:
        if lose:
            self._lose(detail)
            return
        packed = json.loads(spec.parameter)
        record = {"parameter_id": packed["parameter_id"], "trial_job_id": spec.trial_id, "type": "FINAL", "sequence": 0,
                  "value": json.dumps(packed["parameters"]["x"])}
        self._emit(MetricEvent(spec.trial_id, record, now_ms()))
        self._set_status(detail, TrialJobStatus.SUCCEEDED, exit_code=0)

    def _lose(self, detail: TrialJobDetail) -> None:
        detail.status = TrialJobStatus.SYS_CANCELED
        self._emit(StateEvent(detail.id, TrialJobStatus.SYS_CANCELED, now_ms(), LOST, requeue=True))

    async def cancel(self, trial_id: str, early_stopped: bool = False, status: Optional[TrialJobStatus] = None) -> None:
        detail = self._trials[trial_id]
        if detail.status.is_final:
            return
        if self.lose_on_stop:
            self._lose(detail)
        else:
            self._set_status(detail, status or TrialJobStatus.USER_CANCELED)

    async def send_parameter(self, trial_id: str, parameter: str) -> None:
        self.get_trial_job(trial_id)

    async def stop(self) -> None:
        self._end_events()


def _config(tmp_path, **extra) -> dict:
    config = {"trialCommand": "true", "trialCodeDirectory": str(tmp_path), "trialConcurrency": 2, "maxTrialNumber": 4,
              "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}}, "tuner": {"name": "Random"},
              "trainingService": [{"platform": "flaky"}]}
    config.update(extra)
    return config


def _scheduler(tmp_path, ts_args: dict, **config_extra):
    exp_dir = tmp_path / "exp"
    config = _config(tmp_path, **config_extra)
    store = ExperimentStore(store_path(exp_dir))
    ts = FlakyPlatform({}, make_context("requeue1", str(exp_dir), config), **ts_args)
    scheduler = TrialScheduler("requeue1", str(exp_dir), config, store, ts)
    sent: list[tuple[CommandType, str]] = []
    real_send = scheduler.router.send
    scheduler.router.send = lambda command, data="": (sent.append((command, data)), real_send(command, data))[1]
    return scheduler, store, ts, sent


async def _until(predicate, timeout=60.0):
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


def _events(store, trial_id):
    return [e for (e,) in store.db.connection().execute("SELECT event FROM trial_event WHERE trial_id = ? ORDER BY id", (trial_id,))]


def test_lost_trial_is_rerun_with_its_parameters_and_not_counted(tmp_path):
    scheduler, store, ts, sent = _scheduler(tmp_path, {"lose": {0, 2}})

    async def go():
        await scheduler.start()
        await _until(lambda: scheduler.status == "DONE")
        await scheduler.stop()

    asyncio.run(go())
    rows = store.trial_rows()
    lost = [r for r in rows if r.status == "SYS_CANCELED"]
    done = [r for r in rows if r.status == "SUCCEEDED"]
    # maxTrialNumber 4 counts the trials that ran to the end; the two lost ones come on top
    assert (len(rows), len(lost), len(done)) == (6, 2, 4)
    assert store.counted_trials() == 4 and all(not r.counted for r in lost) and all(r.counted for r in done)
    for r in lost:
        assert r.message == LOST + "; not counted toward maxTrialNumber, its parameters were re-queued"
        rerun = [d for d in done if d.parameter == r.parameter]  # the same string: the same parameter_id
        assert len(rerun) == 1 and rerun[0].source == "requeued" and rerun[0].parameter_id == r.parameter_id
        # REQUEUE stored before the state, REQUEUED when the re-run was created
        assert _events(store, r.trial_id) == ["WAITING", "RUNNING", "REQUEUE", "SYS_CANCELED", "REQUEUED"]
        # the tuner is not told the lost trial ended: to it the parameter is still running
        assert not [d for c, d in sent if c == CommandType.TrialEnd and json.loads(d)["trial_job_id"] == r.trial_id]
    ended = [json.loads(d)["trial_job_id"] for c, d in sent if c == CommandType.TrialEnd]
    assert sorted(ended) == sorted(r.trial_id for r in done)
    assert {r.platform for r in rows} == {"flaky"}
    jobs = {j["trialJobId"]: j for j in store.trial_jobs()}
    assert all(j["platform"] == "flaky" for j in jobs.values())
    assert [jobs[r.trial_id]["message"] for r in lost] == [r.message for r in lost]

    # a resume afterwards re-queues nothing again and replays the four results
    assert recover_interrupted_trials(store, logging.getLogger("test")) == []
    replayed = replay_data(store)
    assert sorted(d["trial_job_id"] for d in replayed) == sorted(r.trial_id for r in done)
    store.close()


def test_trial_lost_while_stopping_is_rerun_by_resume(tmp_path):
    scheduler, store, ts, sent = _scheduler(tmp_path, {"lose": set(), "lose_on_stop": True, "hold": True}, trialConcurrency=1)

    async def go():
        await scheduler.start()
        await _until(lambda: any(t.status == "RUNNING" for t in scheduler.trials.values()))
        await scheduler.stop()

    asyncio.run(go())
    (row,) = store.trial_rows()
    assert (row.status, row.counted) == ("SYS_CANCELED", False)
    assert _events(store, row.trial_id) == ["WAITING", "RUNNING", "REQUEUE", "SYS_CANCELED"]
    # no re-run was created before the stop: the next resume queues the parameters, once
    assert recover_interrupted_trials(store, logging.getLogger("test")) == [row.parameter]
    assert recover_interrupted_trials(store, logging.getLogger("test")) == []
    store.close()


def test_lost_after_its_final_result_keeps_the_result(tmp_path):
    scheduler, store, ts, sent = _scheduler(tmp_path, {"lose": set(), "hold": True}, trialConcurrency=1, maxTrialNumber=1)

    async def go():
        await scheduler.start()
        await _until(lambda: ts.submitted)
        spec = ts.submitted[0]
        packed = json.loads(spec.parameter)
        ts._emit(MetricEvent(spec.trial_id, {"parameter_id": packed["parameter_id"], "type": "FINAL", "sequence": 0, "value": "0.5"}, now_ms()))
        ts._lose(ts.get_trial_job(spec.trial_id))
        await _until(lambda: scheduler.status == "DONE")
        await scheduler.stop()

    asyncio.run(go())
    (row,) = store.trial_rows()
    assert (row.status, row.counted, row.message) == ("SYS_CANCELED", True, LOST + "; its final result is kept")
    assert [json.loads(d)["event"] for c, d in sent if c == CommandType.TrialEnd] == ["SYS_CANCELED"]
    assert recover_interrupted_trials(store, logging.getLogger("test")) == []
    store.close()


def _old_store(tmp_path):
    """A store as versions before the platform column wrote it, with one finished trial."""
    exp_dir = tmp_path / "old"
    store = ExperimentStore(store_path(exp_dir))
    store.create_experiment("old00001", {"trainingService": {"platform": "local"}}, str(exp_dir), now_ms(), "DONE")
    store.close()
    conn = sqlite3.connect(store_path(exp_dir))
    conn.execute("ALTER TABLE trial DROP COLUMN platform")
    conn.execute("INSERT INTO trial (trial_id, sequence_id, status, parameter, parameter_id, submit_time, message,"
                 " working_directory, counted, generation, source) VALUES ('tOld1', 0, 'SUCCEEDED', '{}', '0', 1, '', '', 1, 0, 'algorithm')")
    conn.commit()
    conn.close()
    return exp_dir


def test_store_without_platform_column_opens(tmp_path):
    exp_dir = _old_store(tmp_path)
    viewed = ExperimentStore(store_path(exp_dir), readonly=True)
    assert [j["trialJobId"] for j in viewed.trial_jobs()] == ["tOld1"] and "platform" not in viewed.trial_jobs()[0]
    assert viewed.trial_job("tOld1")["status"] == "SUCCEEDED" and [r.trial_id for r in viewed.trial_rows()] == ["tOld1"]
    viewed.close()
    store = ExperimentStore(store_path(exp_dir))  # opened to resume: the column is added
    assert store.trial_job("tOld1").get("platform") is None
    store.add_trial("tNew1", 1, "{}", "1", now_ms())
    store.trial_state("tNew1", "RUNNING", now_ms(), platform="remote")
    assert {j["trialJobId"]: j.get("platform") for j in store.trial_jobs()} == {"tOld1": None, "tNew1": "remote"}
    assert store.trial_job("tNew1")["platform"] == "remote"
    store.close()
