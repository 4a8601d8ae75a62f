"""A real manager process answering the REST routes (payload shapes, errors, view mode)."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from nni.runtime.rest_api import ROUTES, RestClient, RestError
from nni.server.api import RestHandlers

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_route_has_a_handler():
    for r in ROUTES:
        assert callable(getattr(RestHandlers, r.name, None)), r.name


def _config(tmp_path) -> dict:
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(
        "import nni\np = nni.get_next_parameter()\nnni.report_intermediate_result(p['x'])\nnni.report_final_result({'default': p['x'], 'extra': 1})\n"
    )
    from nni.experiment.config import ExperimentConfig

    c = ExperimentConfig("local")
    c.trial_command = f"{sys.executable} trial.py"
    c.trial_code_directory = str(code)
    c.trial_concurrency = 2
    c.max_trial_number = 3
    c.search_space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    c.tuner.name = "Random"
    c.experiment_working_directory = str(tmp_path / "exps")
    return c.to_canonical_dict()


def _start(args, tmp_path):
    log = open(tmp_path / f"manager-{time.time_ns()}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "nni.server", *args], stdout=log, stderr=log)


def _wait_up(client, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "manager exited"
        try:
            return client.call("get_status")
        except ConnectionError:
            time.sleep(0.05)
    raise AssertionError("manager did not answer")


def test_routes_on_a_real_manager(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path / "exps"))
    (tmp_path / "c.json").write_text(json.dumps(_config(tmp_path)))
    port = _port()
    proc = _start(["--config", str(tmp_path / "c.json"), "--port", str(port), "--id", "rest0001"], tmp_path)
    client = RestClient(port)
    try:
        _wait_up(client, proc)
        deadline = time.monotonic() + 30
        while client.call("get_status")["status"] != "DONE":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert isinstance(client.call("get_version"), str)
        profile = client.call("get_experiment_profile")
        assert profile["id"] == "rest0001" and profile["nextSequenceId"] == 3
        assert json.loads(profile["params"]["searchSpace"]) == {"x": {"_type": "uniform", "_value": [0, 1]}}
        assert profile["params"]["trainingServicePlatform"] == "local" and profile["params"]["tuner"]["builtinTunerName"] == "Random"
        jobs = client.call("list_trial_jobs")
        assert len(jobs) == 3 and all(j["status"] == "SUCCEEDED" for j in jobs)
        assert client.call("list_trial_jobs", query={"status": "FAILED"}) == []
        one = client.call("get_trial_job", id=jobs[0]["trialJobId"])
        assert json.loads(one["hyperParameters"][0])["parameter_source"] == "algorithm"
        assert json.loads(one["finalMetricData"][0]["data"])["extra"] == 1
        assert client.call("get_job_statistics") == [{"trialJobStatus": "SUCCEEDED", "trialJobNumber": 3}]
        metrics = client.call("get_metric_data")
        assert len(metrics) == 6 and {m["type"] for m in metrics} == {"PERIODICAL", "FINAL"}
        assert len(client.call("get_trial_metric_data", job_id=jobs[0]["trialJobId"], query={"type": "FINAL"})) == 1
        assert len(client.call("get_metric_data_latest")) == 6  # finals + the latest intermediate of each trial
        assert len(client.call("get_metric_data_range", min_seq_id=0, max_seq_id=1)) == 4
        assert len(client.call("export_data")) == 3
        assert client.call("get_experiment_metadata")["status"] == "DONE"
        assert [e["id"] for e in client.call("get_experiments_info")] == ["rest0001"]
        client.call("import_data", body=[{"parameter": {"x": 0.5}, "value": 0.5}])
        assert client.call("get_imported_data") == [{"parameter": {"x": 0.5}, "value": 0.5}]
        # errors
        with pytest.raises(RestError) as e404:
            client.call("get_trial_job", id="nope!")
        assert e404.value.status == 404 and "nope!" in str(e404.value)
        with pytest.raises(RestError) as e400:
            client.call("update_experiment_profile", body={"params": {}}, query={"update_type": "TRIAL_CONCURRENCY"})
        assert e400.value.status == 400 and "trialConcurrency" in str(e400.value)
        with pytest.raises(RestError) as bad:
            client.call("update_experiment_profile", body={"params": {"trialConcurrency": 0}}, query={"update_type": "TRIAL_CONCURRENCY"})
        assert bad.value.status == 400 and "trialConcurrency" in str(bad.value) and ">= 1" in str(bad.value)
        with pytest.raises(RestError) as bad_q:
            client.call("update_experiment_profile", body={"params": {}}, query={"update_type": "NOPE"})
        assert bad_q.value.status == 400 and "update_type" in str(bad_q.value)
        with pytest.raises(RestError) as bad_body:
            client.call("add_customized_trial", body={"nothing": 1})
        assert bad_body.value.status == 400 and "hyperParameters" in str(bad_body.value)
        import urllib.request, urllib.error

        with pytest.raises(urllib.error.HTTPError) as unknown:
            from nni.server.testing import auth_headers

            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/nni/no-such-route", headers=auth_headers(port)))
        assert unknown.value.code == 404 and "no such API route" in json.loads(unknown.value.read())["error"]
        # raising the budget of a DONE experiment makes it run again
        client.call("update_experiment_profile", body={"params": {"maxTrialNum": 4}}, query={"update_type": "MAX_TRIAL_NUM"})
        deadline = time.monotonic() + 30
        while len(client.call("list_trial_jobs")) < 4 or client.call("get_status")["status"] != "DONE":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client.call("stop_experiment")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()

    # view mode: read-only
    port2 = _port()
    viewer = _start(["--view", "rest0001", "--port", str(port2)], tmp_path)
    client = RestClient(port2)
    try:
        assert _wait_up(client, viewer)["status"] == "VIEWED"
        assert len(client.call("list_trial_jobs")) == 4
        with pytest.raises(RestError) as ro:
            client.call("add_customized_trial", body={"hyperParameters": {"x": 1}})
        assert ro.value.status == 400 and "view mode" in str(ro.value)
        client.call("stop_experiment")
        assert viewer.wait(30) == 0
    finally:
        if viewer.poll() is None:
            viewer.kill()


def test_manager_user_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path / "exps"))
    r = subprocess.run([sys.executable, "-m", "nni.server", "--resume", "nosuchid", "--port", str(_port())], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "experiment 'nosuchid' not found" in r.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        (tmp_path / "c.json").write_text(json.dumps(_config(tmp_path)))
        r = subprocess.run(
            [sys.executable, "-m", "nni.server", "--config", str(tmp_path / "c.json"), "--port", str(busy.getsockname()[1]), "--id", "busy0001"],
            capture_output=True, text=True, timeout=60,
        )
    assert r.returncode == 1 and "is not available" in r.stderr and r.stderr.strip().count("\n") == 0
