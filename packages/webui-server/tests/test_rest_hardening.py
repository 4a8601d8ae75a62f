"""Hostile REST input answers 4xx with one line naming the field, never 500 (issue 11, item 4).

One real manager process on 127.0.0.1 serves every test of this module; raw bodies (too large,
too deep) go through urllib because RestClient can only send what ``json.dumps`` can write.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from nni.runtime.rest_api import API_ROOT, MAX_BODY_BYTES, MAX_NESTING, ROUTES, RestClient, RestError

pytestmark = pytest.mark.slow

TOKEN = "hardening-test-token-0123456789"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hardening")
    code = tmp / "code"
    code.mkdir()
    (code / "trial.py").write_text("import nni\np = nni.get_next_parameter()\nnni.report_final_result(p['x'])\n")
    config = {
        "trialCommand": f"{sys.executable} trial.py", "trialCodeDirectory": str(code), "trialConcurrency": 1,
        "maxTrialNumber": 1, "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "tuner": {"name": "Random"}, "trainingService": {"platform": "local"},
        "experimentWorkingDirectory": str(tmp / "exps"),
    }
    (tmp / "c.json").write_text(json.dumps(config))
    port = _port()
    env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(tmp / "exps"), NNI_ACCESS_TOKEN=TOKEN)
    log = open(tmp / "manager.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "nni.server", "--config", str(tmp / "c.json"), "--port", str(port),
                             "--id", "harden01"], stdout=log, stderr=log, env=env)
    client = RestClient(port, token=TOKEN)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, (tmp / "manager.log").read_text()
        try:
            client.call("get_status")
            break
        except ConnectionError:
            assert time.monotonic() < deadline, "manager did not answer"
            time.sleep(0.05)
    yield client, proc, tmp / "manager.log"
    proc.terminate()
    proc.wait(30)
    log.close()


def _raw(client: RestClient, method: str, path: str, data: bytes | None = None, headers: dict | None = None):
    """(status, headers, decoded JSON or None) of one raw request to the manager."""
    url = f"http://127.0.0.1:{client.port}{API_ROOT}{path}"
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}", **(headers or {})})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=120) as resp:
            status, hdrs, text = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        status, hdrs, text = err.code, err.headers, err.read()
    return status, hdrs, (json.loads(text) if text else None)


def _one_line_error(answer, *words):
    message = answer["error"]
    assert "\n" not in message and "Traceback" not in message, message
    for word in words:
        assert word in message, message
    return message


def test_body_over_the_limit_is_413(manager):
    client, proc, _ = manager
    body = b"[" + b" " * (MAX_BODY_BYTES + 1) + b"]"
    status, _, answer = _raw(client, "POST", "/experiment/import-data", body)
    assert status == 413
    _one_line_error(answer, "body", "50 MB")
    # a chunked body (no Content-Length) is counted while it is read
    def chunks():
        for _ in range(MAX_BODY_BYTES // (1 << 20) + 2):
            yield b" " * (1 << 20)
    status, _, answer = _raw(client, "POST", "/experiment/import-data", chunks(), {"Transfer-Encoding": "chunked"})
    assert status == 413 and proc.poll() is None


@pytest.mark.parametrize("depth", [5000, MAX_NESTING + 1])
def test_deeply_nested_body_is_400(manager, depth):
    client, proc, log = manager
    inner = b"[" * depth + b"]" * depth
    body = b'[{"parameter": {"x": ' + inner + b'}, "value": 1}]'
    status, _, answer = _raw(client, "POST", "/experiment/import-data", body)
    assert status == 400
    _one_line_error(answer, "body", f"deeper than {MAX_NESTING}")
    assert "RecursionError" not in log.read_text(errors="replace")
    assert client.call("get_imported_data") == []  # nothing of it was stored


def test_nan_and_invalid_utf8_bodies_are_400(manager):
    client, _, _ = manager
    status, _, answer = _raw(client, "POST", "/experiment/import-data", b'[{"parameter": {}, "value": NaN}]')
    assert status == 400 and _one_line_error(answer, "body", "NaN")
    status, _, answer = _raw(client, "PUT", "/experiment/cluster-metadata", b'{"a": "\xff\xfe"}')
    assert status == 400 and _one_line_error(answer, "body", "UTF-8")


@pytest.mark.parametrize("update_type, key", [
    ("TRIAL_CONCURRENCY", "trialConcurrency"), ("MAX_TRIAL_NUM", "maxTrialNum"), ("MAX_EXEC_DURATION", "maxExecDuration"),
])
def test_integers_over_sqlite_range_are_400_naming_the_field(manager, update_type, key):
    client, _, _ = manager
    with pytest.raises(RestError) as err:
        client.call("update_experiment_profile", {"params": {key: 2**64}}, {"update_type": update_type})
    assert err.value.status == 400 and f"body.params.{key}" in str(err.value) and "<=" in str(err.value)
    assert client.call("get_experiment_profile")["params"]["trialConcurrency"] == 1


def test_path_integers_over_sqlite_range_are_400(manager):
    client, _, _ = manager
    for lo, hi, field in ((0, 2**64, "max_seq_id:"), (-(2**70), 0, "min_seq_id:"), ("x", 1, "min_seq_id:")):
        with pytest.raises(RestError) as err:
            client.call("get_metric_data_range", min_seq_id=lo, max_seq_id=hi)
        assert err.value.status == 400 and field in str(err.value)
    assert isinstance(client.call("get_metric_data_range", min_seq_id=0, max_seq_id=2**63 - 1), list)


def test_undeclared_method_is_405_with_allow(manager):
    client, _, _ = manager
    status, headers, answer = _raw(client, "PATCH", "/experiment", b"{}")
    assert status == 405 and headers["Allow"] == "DELETE, GET, POST, PUT"
    _one_line_error(answer, "PATCH", "allowed")
    declared = {r.method for r in ROUTES if r.path == "/trial-jobs/{id}"}
    status, headers, _ = _raw(client, "POST", "/trial-jobs/abc", b"{}")
    assert status == 405 and set(headers["Allow"].split(", ")) == declared
    status, _, _ = _raw(client, "PATCH", "/no-such-route")  # unknown paths stay 404
    assert status == 404


def test_missing_required_query_parameter_is_400(manager):
    client, _, _ = manager
    with pytest.raises(RestError) as err:
        client.call("update_experiment_profile", {"params": {"trialConcurrency": 2}})
    assert err.value.status == 400 and "query.update_type" in str(err.value)
