"""Resume after a crash edge: trials the lifeline stopped (``.nni/manager_died``), a trial
interrupted after its final result, and trials cancelled because the dispatcher died."""
from __future__ import annotations

import logging

from nni.runtime.trial_metrics import encode_metric_record
from nni.server.resume import REQUEUE_EVENT, recover_interrupted_trials
from nni.server.store import ExperimentStore


def _trial(store, tmp_path, tid, seq):
    d = tmp_path / "trials" / tid
    (d / ".nni").mkdir(parents=True)
    store.add_trial(tid, seq, f'{{"parameter_id": {seq}, "parameters": {{"x": {seq}}}}}', seq, 1, str(d))
    store.trial_state(tid, "RUNNING", 2, "", pid=2**22 + 4242)  # no such process
    return d


def _rec(tid, kind, value):
    return encode_metric_record({"parameter_id": 0, "trial_job_id": tid, "type": kind, "sequence": 0, "value": value})


def test_lifeline_stop_final_kept_and_dispatcher_requeue(tmp_path):
    log = logging.getLogger("test")
    store = ExperimentStore(tmp_path / "db.sqlite")
    store.create_experiment("e", {}, str(tmp_path), 0)
    # stopped by its watcher: the marker's time is the end; the exit its SIGTERM caused is not the trial's
    stopped = _trial(store, tmp_path, "stopA", 0)
    (stopped / ".nni" / "metrics").write_bytes(_rec("stopA", "PERIODICAL", "0.5"))
    (stopped / ".nni" / "manager_died").write_text("5000")
    (stopped / ".nni" / "state").write_text("143 5001")
    # finished before its manager died: the state file (older than the marker) is the outcome
    done = _trial(store, tmp_path, "doneB", 1)
    (done / ".nni" / "state").write_text("0 4000")
    (done / ".nni" / "manager_died").write_text("4500")
    # stopped after its final result: the result is the outcome, nothing is re-run
    final = _trial(store, tmp_path, "finC", 2)
    (final / ".nni" / "metrics").write_bytes(_rec("finC", "FINAL", "0.9"))
    (final / ".nni" / "manager_died").write_text("6000")
    # cancelled by the previous manager when the dispatcher died: re-queued by the next resume only
    _trial(store, tmp_path, "dispD", 3)
    store.trial_state("dispD", "SYS_CANCELED", 7000, "dispatcher died (x)", counted=False)
    store.add_event("dispD", REQUEUE_EVENT, 7000)

    requeue = recover_interrupted_trials(store, log)

    a = store.trial_row("stopA")
    assert a.status == "SYS_CANCELED" and a.end_time == 5000 and not a.counted
    assert a.message == ("manager died: the trial was stopped when its manager exited unexpectedly (crash or kill -9);"
                         " its parameters were re-queued")
    assert [(m["type"], m["data"]) for m in store.metric_data("stopA")] == [("PERIODICAL", "0.5")]
    b = store.trial_row("doneB")
    assert b.status == "SUCCEEDED" and b.end_time == 4000 and b.counted
    c = store.trial_row("finC")
    assert c.status == "SYS_CANCELED" and c.counted and c.message.endswith("its final result is kept")
    assert [m["type"] for m in store.metric_data("finC")] == ["FINAL"]
    assert sorted(requeue) == sorted([store.trial_row("dispD").parameter, a.parameter])
    assert recover_interrupted_trials(store, log) == []  # once only
