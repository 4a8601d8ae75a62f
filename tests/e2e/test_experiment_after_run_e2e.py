"""``Experiment.run()`` returns with the experiment stopped (as in NNI v2.5); its results are
then read from the experiment's store: a user runs an experiment, then looks at the results."""
from __future__ import annotations

import socket
import time

import pytest

pytestmark = pytest.mark.slow

TRIAL = """\
import nni
p = nni.get_next_parameter()
nni.report_intermediate_result(p["x"] / 2)
nni.report_final_result(p["x"])
"""

SPACE = {"x": {"_type": "choice", "_value": [1, 2, 3]}}


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _check_results(exp, n: int) -> None:
    assert exp.get_status() == "STOPPED"
    trials = exp.list_trial_jobs()
    assert len(trials) == n and {t.status for t in trials} == {"SUCCEEDED"}
    by_id = {t.trialJobId: t.hyperParameters[0].parameters["x"] for t in trials}
    results = exp.export_data()
    assert sorted(r.trialJobId for r in results) == sorted(by_id)
    assert all(r.value == by_id[r.trialJobId] == r.parameter["x"] for r in results)
    metrics = exp.get_job_metrics()
    assert set(metrics) == set(by_id)
    for trial_id, records in metrics.items():
        assert [(m.type, m.data) for m in records] == [("PERIODICAL", by_id[trial_id] / 2), ("FINAL", by_id[trial_id])]
    one = next(iter(by_id))
    assert [m.type for m in exp.get_job_metrics(one)[one]] == ["PERIODICAL", "FINAL"]
    assert exp.get_trial_job(one).status == "SUCCEEDED"
    assert exp.get_job_statistics() == [{"trialJobStatus": "SUCCEEDED", "trialJobNumber": n}]
    assert exp.get_experiment_profile()["id"] == exp.id
    assert exp.get_experiment_metadata()["status"] == "STOPPED"


def test_run_returns_stopped_then_results_come_from_the_store(make_experiment, free_port):
    exp = make_experiment(TRIAL, SPACE, trial_concurrency=2, max_trial_number=3)
    exp.config.tuner.name = "GridSearch"
    assert exp.run(free_port) is True
    assert exp._process is None and not _port_open(free_port)  # the manager is gone
    _check_results(exp, 3)
    assert sorted(r.value for r in exp.export_data()) == [1, 2, 3]


def test_connected_experiment_is_readable_after_stop(make_experiment, free_port):
    from nni.experiment import Experiment

    exp = make_experiment(TRIAL, SPACE, trial_concurrency=1, max_trial_number=2)
    exp.config.tuner.name = "Random"
    exp.start(free_port)
    try:
        connected = Experiment.connect(free_port)
        deadline = time.monotonic() + 60
        while connected.get_status() != "DONE":
            assert time.monotonic() < deadline, "experiment did not finish"
            time.sleep(0.1)
        connected.stop()
        assert not _port_open(free_port)
        _check_results(connected, 2)  # found through the registry: no config, no folder given
    finally:
        exp.stop()
    _check_results(exp, 2)
