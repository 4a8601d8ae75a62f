"""The experiment store and the machine-wide registry."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import peewee
import pytest

from nni.server.store import ExperimentStore, ExperimentsRegistry, experiments_root, store_path


def _store(tmp_path) -> ExperimentStore:
    s = ExperimentStore(store_path(tmp_path / "exp"))
    s.create_experiment("abcd1234", {"trialConcurrency": 2}, str(tmp_path / "exp"), 1000)
    return s


def test_profile_and_status(tmp_path):
    s = _store(tmp_path)
    assert s.status() == {"status": "INITIALIZED", "errors": []}
    assert s.update_config({"trialConcurrency": 3}) == 1
    assert s.config() == {"trialConcurrency": 3}
    s.set_status("ERROR", end_time=5, error="tuner failed")
    assert s.status() == {"status": "ERROR", "errors": ["tuner failed"]}
    assert s.experiment_row().end_time == 5
    assert s.db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_trial_lifecycle_and_rest_shapes(tmp_path):
    s = _store(tmp_path)
    param = json.dumps({"parameter_id": 0, "parameter_source": "algorithm", "parameters": {"x": 1}, "parameter_index": 0})
    s.add_trial("AAAAA", 0, param, 0, 100, "/w/AAAAA")
    s.trial_state("AAAAA", "RUNNING", 110, "")
    s.add_metrics(
        [
            {"trial_id": "AAAAA", "parameter_id": "0", "type": "PERIODICAL", "sequence": i, "data": str(i), "timestamp": 120 + i}
            for i in range(3)
        ]
        + [{"trial_id": "AAAAA", "parameter_id": "0", "type": "FINAL", "sequence": 0, "data": "0.5", "timestamp": 130}]
    )
    s.trial_state("AAAAA", "SUCCEEDED", 140, "", 0)
    s.add_trial("BBBBB", 1, param, 1, 150, "/w/BBBBB")
    s.trial_state("BBBBB", "FAILED", 160, "exit code 1; stderr tail:\nboom", 1)
    assert s.experiment_row().next_sequence_id == 2
    info = s.trial_job("AAAAA")
    assert info["status"] == "SUCCEEDED" and info["startTime"] == 110 and info["endTime"] == 140
    assert info["hyperParameters"] == [param]
    assert [m["data"] for m in info["finalMetricData"]] == ["0.5"]
    failed = s.trial_job("BBBBB")
    assert failed["message"].endswith("boom") and failed["stderrPath"].endswith("BBBBB/stderr")
    assert failed["startTime"] == 160  # never ran: start = end
    assert {d["trialJobStatus"]: d["trialJobNumber"] for d in s.job_statistics()} == {"SUCCEEDED": 1, "FAILED": 1}
    assert [t["trialJobId"] for t in s.trial_jobs("FAILED")] == ["BBBBB"]
    assert len(s.metric_data()) == 4 and len(s.metric_data("AAAAA", "FINAL")) == 1
    assert s.metric_data_latest()[0]["type"] == "FINAL"
    assert s.metric_data_range(1, 5) == []
    assert s.export_data() == [{"parameter": {"x": 1}, "value": "0.5", "trialJobId": "AAAAA"}]
    events = [e.event for e in s.m.TrialEvent.select().where(s.m.TrialEvent.trial_id == "AAAAA").order_by(s.m.TrialEvent.id)]
    assert events == ["WAITING", "RUNNING", "SUCCEEDED"]
    assert s.trial_job("nope") is None


def test_many_metrics_in_one_transaction(tmp_path):
    s = _store(tmp_path)
    rows = [{"trial_id": "T", "parameter_id": None, "type": "PERIODICAL", "sequence": i, "data": "1", "timestamp": i} for i in range(1000)]
    assert s.add_metrics(rows) == 1000
    assert s.m.Metric.select().count() == 1000


def test_imported_data(tmp_path):
    s = _store(tmp_path)
    s.add_imported_data([{"parameter": {"x": 1}, "value": 1}], 5)
    s.add_imported_data([{"parameter": {"x": 2}, "value": 2}], 6)
    assert [d["value"] for d in s.imported_data()] == [1, 2]


def test_readonly_store(tmp_path):
    _store(tmp_path).close()
    ro = ExperimentStore(store_path(tmp_path / "exp"), readonly=True)
    assert ro.status()["status"] == "INITIALIZED"
    with pytest.raises(peewee.OperationalError):
        ro.set_status("RUNNING")
    with pytest.raises(FileNotFoundError):
        ExperimentStore(tmp_path / "missing.sqlite", readonly=True)


def test_committed_writes_survive_kill_9(tmp_path):
    # A writer commits, then dies by SIGKILL before closing: nothing committed is lost.
    code = textwrap.dedent(
        f"""
        import os, signal
        from nni.server.store import ExperimentStore
        s = ExperimentStore({str(tmp_path / 'db.sqlite')!r})
        s.create_experiment('e', {{}}, '/x', 1)
        s.add_trial('AAAAA', 0, '{{}}', 0, 1)
        s.add_metrics([{{'trial_id': 'AAAAA', 'parameter_id': '0', 'type': 'FINAL', 'sequence': 0, 'data': '1', 'timestamp': 2}}])
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code])
    assert proc.returncode == -signal.SIGKILL
    s = ExperimentStore(tmp_path / "db.sqlite")
    assert s.trial_job("AAAAA")["finalMetricData"][0]["data"] == "1"


def test_registry_roundtrip(tmp_path):
    reg = ExperimentsRegistry(tmp_path)
    reg.upsert("e1", name="one", port=8080, status="RUNNING", start_time=1, platform="local", workdir="/w/e1")
    reg.upsert("e1", status="DONE", end_time=9)
    row = reg.get("e1")
    assert row["name"] == "one" and row["status"] == "DONE" and row["end_time"] == 9
    meta = ExperimentsRegistry.to_metadata(row)
    assert meta["experimentName"] == "one" and meta["logDir"] == "/w/e1"
    assert [r["id"] for r in reg.list()] == ["e1"]
    with pytest.raises(ValueError, match="unknown registry field"):
        reg.upsert("e1", bogus=1)
    reg.remove("e1")
    assert reg.get("e1") is None


def test_registry_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path / "root"))
    assert experiments_root() == tmp_path / "root"
    assert ExperimentsRegistry().path == tmp_path / "root" / ".experiments.sqlite"


def test_registry_concurrent_writers(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys
        from nni.server.store import ExperimentsRegistry
        reg = ExperimentsRegistry({str(tmp_path)!r})
        w = sys.argv[1]
        for i in range(40):
            reg.upsert(f"{{w}}-{{i}}", status="RUNNING", port=i)
            reg.upsert(f"{{w}}-{{i}}", status="DONE")
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(w)]) for w in range(4)]
    assert all(p.wait(60) == 0 for p in procs)
    rows = ExperimentsRegistry(tmp_path).list()
    assert len(rows) == 160 and {r["status"] for r in rows} == {"DONE"}


def test_registry_reports_dead_manager_as_stopped(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    reg = ExperimentsRegistry(tmp_path)
    reg.upsert("gone", status="RUNNING", pid=proc.pid)
    reg.upsert("done", status="DONE", pid=proc.pid)
    reg.upsert("live", status="RUNNING", pid=os.getpid())
    status = {r["id"]: ExperimentsRegistry.to_metadata(r)["status"] for r in reg.list()}
    assert status == {"gone": "STOPPED", "done": "DONE", "live": "RUNNING"}
