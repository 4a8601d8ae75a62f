"""Settling the trials a crashed manager left behind."""
from __future__ import annotations

import logging

from nni.runtime.trial_metrics import encode_metric_record
from nni.server.resume import recover_interrupted_trials
from nni.server.store import ExperimentStore


def _trial(store, tmp_path, tid, seq, status="RUNNING", pid=None):
    d = tmp_path / "trials" / tid
    (d / ".nni").mkdir(parents=True)
    store.add_trial(tid, seq, f'{{"parameter_id": {seq}, "parameters": {{"x": {seq}}}}}', seq, 1, str(d))
    if status == "RUNNING":
        store.trial_state(tid, "RUNNING", 2, "", pid=pid)
    return d


def _rec(tid, kind, seq, value):
    return encode_metric_record({"parameter_id": 0, "trial_job_id": tid, "type": kind, "sequence": seq, "value": value})


def test_recover(tmp_path):
    store = ExperimentStore(tmp_path / "db.sqlite")
    store.create_experiment("e", {}, str(tmp_path), 0)
    # finished while the manager was down: two metrics stored, one more plus the final in the file
    done = _trial(store, tmp_path, "doneA", 0)
    store.add_metrics([{"trial_id": "doneA", "parameter_id": "0", "type": "PERIODICAL", "sequence": 0, "data": "1", "timestamp": 3}])
    (done / ".nni" / "metrics").write_bytes(_rec("doneA", "PERIODICAL", 0, "1") + _rec("doneA", "PERIODICAL", 1, "2") + _rec("doneA", "FINAL", 0, "3"))
    (done / ".nni" / "state").write_text("0 1234567")
    # died without finishing (no state file, no process)
    dead = _trial(store, tmp_path, "deadB", 1, pid=2**22 + 12345)
    (dead / ".nni" / "metrics").write_bytes(_rec("deadB", "PERIODICAL", 0, "5")[:-2])  # a partial record is not taken
    # failed while the manager was down
    failed = _trial(store, tmp_path, "failC", 2)
    (failed / ".nni" / "state").write_text("2 999")
    # never started
    _trial(store, tmp_path, "waitD", 3, status="WAITING")

    requeue = recover_interrupted_trials(store, logging.getLogger("test"))

    a = store.trial_job("doneA")
    assert a["status"] == "SUCCEEDED" and a["endTime"] == 1234567
    assert [(m["type"], m["data"]) for m in store.metric_data("doneA")] == [("PERIODICAL", "1"), ("PERIODICAL", "2"), ("FINAL", "3")]
    b = store.trial_row("deadB")
    assert b.status == "SYS_CANCELED" and not b.counted and "re-queued" in b.message
    assert store.metric_data("deadB") == []
    assert store.trial_row("failC").status == "FAILED" and store.trial_row("failC").exit_code == 2
    assert store.trial_row("waitD").status == "SYS_CANCELED"
    assert [r for r in requeue] == [store.trial_row("deadB").parameter, store.trial_row("waitD").parameter]
    assert store.counted_trials() == 2
