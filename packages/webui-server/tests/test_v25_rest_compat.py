"""NNI v2.5 REST answers on a real manager: ``PUT /experiment`` answers ``{}``,
``PUT /experiment/cluster-metadata`` exists, ``--debug`` logs at debug level."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from nni.runtime.rest_api import API_ROOT, RestClient, RestError
from nni.server.testing import auth_headers

pytestmark = pytest.mark.slow


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(tmp_path) -> dict:
    from nni.experiment.config import ExperimentConfig

    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text("import nni\np = nni.get_next_parameter()\nnni.report_final_result(p['x'])\n")
    c = ExperimentConfig("local")
    c.trial_command = f"{sys.executable} trial.py"
    c.trial_code_directory = str(code)
    c.trial_concurrency = 1
    c.max_trial_number = 1
    c.search_space = {"x": {"_type": "uniform", "_value": [0, 1]}}
    c.tuner.name = "TPE"
    c.log_level = "info"  # --debug must win over it
    c.experiment_working_directory = str(tmp_path / "exps")
    return c.to_canonical_dict()


def _put(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{API_ROOT}{path}", data=body, method="PUT",
                                 headers={"Content-Type": "application/json", **auth_headers(port)})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=20) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_v25_answers_on_a_real_manager(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path / "exps"))
    (tmp_path / "c.json").write_text(json.dumps(_config(tmp_path)))
    port = _port()
    with open(tmp_path / "manager.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "nni.server", "--config", str(tmp_path / "c.json"), "--port", str(port),
                                 "--id", "v25rest1", "--debug"], stdout=log, stderr=log)
    client = RestClient(port)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "manager.log").read_text()
            try:
                if client.call("get_status")["status"] == "DONE":
                    break
            except ConnectionError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)

        # PUT /experiment?update_type=...: 200 with {} as v2.5; the profile has the change
        profile = client.call("get_experiment_profile")
        profile["params"]["trialConcurrency"] = 3
        status, body = _put(port, "/experiment?update_type=TRIAL_CONCURRENCY", json.dumps(profile).encode())
        assert (status, json.loads(body)) == (200, {})
        after = client.call("get_experiment_profile")
        assert after["params"]["trialConcurrency"] == 3 and after["revision"] == profile["revision"] + 1

        # PUT /experiment/cluster-metadata: a JSON object of metadata, answered {}
        status, body = _put(port, "/experiment/cluster-metadata", json.dumps(
            {"nni_manager_ip": {"nniManagerIp": "127.0.0.1"}, "trial_config": {"command": "python3 t.py", "codeDir": ".", "gpuNum": 0}}).encode())
        assert (status, json.loads(body)) == (200, {})
        assert client.call("set_cluster_metadata", body={"extra": 1}) == {}
        meta = {e["key"]: e["value"] for e in client.call("get_experiment_profile")["params"]["clusterMetaData"]}
        assert meta == {"nni_manager_ip": {"nniManagerIp": "127.0.0.1"}, "trial_config": {"command": "python3 t.py", "codeDir": ".", "gpuNum": 0}, "extra": 1}
        status, body = _put(port, "/experiment/cluster-metadata", b'[{"key": "trial_config"}]')
        assert status == 400 and json.loads(body)["error"] == "body: expected object, got list"
        status, body = _put(port, "/experiment/cluster-metadata", b"{oops")
        assert status == 400 and json.loads(body)["error"] == "body: not valid JSON"
        assert "put" in client.call("get_openapi")["paths"]["/experiment/cluster-metadata"]

        # import-data says how many records it stored; the tuner's report lands in dispatcher.log
        assert client.call("import_data", body=[{"parameter": {"x": 0.5}, "value": 0.5}, {"parameter": {"y": 1}, "value": 1}]) == {"stored": 2}
        dispatcher_log = tmp_path / "exps" / "v25rest1" / "log" / "dispatcher.log"
        deadline = time.monotonic() + 20
        while "Import data: tuner TpeTuner imported 1 of 2 records" not in dispatcher_log.read_text():
            assert time.monotonic() < deadline, dispatcher_log.read_text()
            time.sleep(0.1)

        client.call("stop_experiment")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # --debug: the manager logged at debug level although the config says logLevel: info
    manager_log = (tmp_path / "exps" / "v25rest1" / "log" / "nnimanager.log").read_text()
    assert " DEBUG " in manager_log
    # the metadata survives the manager, in the profile read from the stopped experiment
    from nni.experiment import Experiment

    exp = Experiment(None)
    exp.id = "v25rest1"
    keys = [e["key"] for e in exp.get_experiment_profile()["params"]["clusterMetaData"]]
    assert keys == ["trial_config", "nni_manager_ip", "extra"]


def test_cluster_metadata_refused_in_view_mode(tmp_path):
    from nni.server.store import ExperimentsRegistry
    from nni.server.testing import serve_experiment, synthetic_experiment

    registry = ExperimentsRegistry(tmp_path)
    synthetic_experiment(tmp_path / "synth001", 2, 1, "synth001", registry=registry)
    server = serve_experiment(tmp_path / "synth001", "synth001", registry=registry)
    try:
        with pytest.raises(RestError) as err:
            RestClient(server.port, prefix=server.prefix, token=server.token).call("set_cluster_metadata", body={"a": 1})
        assert err.value.status == 400 and "view mode" in str(err.value)
    finally:
        server.close()
