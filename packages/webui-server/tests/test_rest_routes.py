"""Every REST route of the manager: NNI's shapes and field names, 400 / 404 errors, trial-file
confinement, the access-token rule off 127.0.0.1, closed CORS, the OpenAPI document, the UI
and log files. A synthetic finished experiment is served read-only (``nnictl view``'s mode) by
the manager's own app on 127.0.0.1; write routes on a running experiment are covered by the
browser suite (tests/webui) and the engine's tests."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

import pytest

from nni.runtime.rest_api import API_ROOT, ROUTES, TRIAL_FILES, RestClient, RestError, validate, route
from nni.server.security import requires_token, resolve_token
from nni.server.store import ExperimentsRegistry
from nni.server.testing import serve_experiment, synthetic_experiment

N_TRIALS = 14
N_INTERMEDIATE = 4


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("exps")
    registry = ExperimentsRegistry(root)
    summary = synthetic_experiment(root / "synth001", N_TRIALS, N_INTERMEDIATE, "synth001", registry=registry)
    server = serve_experiment(root / "synth001", "synth001", registry=registry)
    TOKENS[server.port] = server.token
    server.summary = summary
    server.exp_dir = root / "synth001"
    yield server
    server.close()


#: Access tokens of the servers whose requests ``get`` authenticates by itself (port -> token).
TOKENS: dict = {}


def get(url, headers=None, method="GET", data=None):
    """(status, headers, body bytes) without raising on 4xx; carries the token of a server in TOKENS."""
    headers = dict(headers or {})
    token = TOKENS.get(urllib.parse.urlsplit(url).port)
    if token and "Authorization" not in headers and "Cookie" not in headers:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, headers=headers, method=method, data=data)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def api(served, path, **kw):
    status, headers, body = get(f"{served.url}{API_ROOT}{path}", **kw)
    return status, (json.loads(body) if body and headers.get("Content-Type", "").startswith("application/json") else body)


def client(served):
    return RestClient(served.port, prefix=served.prefix, token=served.token)


# ----------------------------------------------------------------- read routes: shapes


def test_version_and_status(served):
    c = client(served)
    assert isinstance(c.call("get_version"), str)
    status = c.call("get_status")
    validate(route("get_status").response, status)
    assert status == {"status": "VIEWED", "errors": []}


def test_experiment_profile_has_nni_fields(served):
    profile = client(served).call("get_experiment_profile")
    validate(route("get_experiment_profile").response, profile)
    assert profile["id"] == "synth001"
    assert isinstance(profile["params"]["searchSpace"], str)  # NNI keeps it as a JSON string
    assert json.loads(profile["params"]["searchSpace"])["batch_size"]["_type"] == "choice"
    assert profile["params"]["trialConcurrency"] == 4 and profile["params"]["maxTrialNum"] == N_TRIALS
    assert profile["nextSequenceId"] == N_TRIALS


def test_trial_jobs_list_and_one(served):
    c = client(served)
    jobs = c.call("list_trial_jobs")
    validate(route("list_trial_jobs").response, jobs)
    assert [j["sequenceId"] for j in jobs] == list(range(N_TRIALS))
    failed = [j for j in jobs if j["status"] == "FAILED"]
    assert failed and all(j["stderrPath"].endswith("stderr") and j["finalMetricData"] == [] for j in failed)
    ok = [j for j in jobs if j["status"] == "SUCCEEDED"]
    for j in ok:
        assert set(j) >= {"trialJobId", "sequenceId", "status", "startTime", "endTime", "hyperParameters", "logPath", "finalMetricData"}
        assert json.loads(j["hyperParameters"][0])["parameters"]["batch_size"] in (16, 32, 64, 128)
        assert json.loads(j["finalMetricData"][0]["data"]) == served.summary["finals"][j["trialJobId"]]
    assert c.call("list_trial_jobs", query={"status": "FAILED"}) == failed
    # The hand-assembled JSON answer == the per-trial ORM mapping, an independent path.
    assert jobs == [served.store.trial_job(j["trialJobId"]) for j in jobs]
    one = c.call("get_trial_job", id=ok[0]["trialJobId"])
    assert one == ok[0]


def test_job_statistics_count_per_status(served):
    stats = client(served).call("get_job_statistics")
    validate(route("get_job_statistics").response, stats)
    counts = {s["trialJobStatus"]: s["trialJobNumber"] for s in stats}
    n_failed = sum(1 for i in range(N_TRIALS) if i % 7 == 6)
    assert counts == {"FAILED": n_failed, "SUCCEEDED": N_TRIALS - n_failed}


def test_metric_data_all_by_trial_type_and_range(served):
    c = client(served)
    everything = c.call("get_metric_data")
    validate(route("get_metric_data").response, everything)
    assert len(everything) == served.summary["metrics"]
    rec = everything[0]
    assert set(rec) == {"timestamp", "trialJobId", "parameterId", "type", "sequence", "data"}
    assert isinstance(rec["parameterId"], str)
    finals = c.call("get_metric_data", query={"type": "FINAL"})
    assert len(finals) == len(served.summary["finals"]) and {r["type"] for r in finals} == {"FINAL"}
    one = c.call("get_trial_metric_data", job_id="T00001")
    assert [r["type"] for r in one] == ["PERIODICAL"] * N_INTERMEDIATE + ["FINAL"]
    periodical = c.call("get_trial_metric_data", job_id="T00001", query={"type": "PERIODICAL"})
    assert [r["sequence"] for r in periodical] == list(range(N_INTERMEDIATE))
    ranged = c.call("get_metric_data_range", min_seq_id=2, max_seq_id=3)
    assert {r["trialJobId"] for r in ranged} == {"T00002", "T00003"}


def test_metric_data_latest_is_finals_plus_latest_intermediate(served):
    c = client(served)
    latest = c.call("get_metric_data_latest")
    # The SQLite-encoded answer == the same selection made in Python from every record.
    everything = c.call("get_metric_data")
    last_periodical = {r["trialJobId"]: r for r in everything if r["type"] == "PERIODICAL"}
    assert latest == [r for r in everything if r["type"] != "PERIODICAL"] + [
        r for r in everything if r["type"] == "PERIODICAL" and last_periodical[r["trialJobId"]] is r]
    validate(route("get_metric_data_latest").response, latest)
    periodical = [r for r in latest if r["type"] == "PERIODICAL"]
    assert len(periodical) == N_TRIALS  # one per trial, its last one
    assert {r["sequence"] for r in periodical} == {N_INTERMEDIATE - 1}
    assert len([r for r in latest if r["type"] == "FINAL"]) == len(served.summary["finals"])


def test_export_data(served):
    data = client(served).call("export_data")
    validate(route("export_data").response, data)
    assert {d["trialJobId"] for d in data} == set(served.summary["finals"])
    for d in data:
        assert json.loads(d["value"]) == served.summary["finals"][d["trialJobId"]]
        assert set(d["parameter"]) == {"lr", "batch_size", "dropout", "optimizer"}


def test_experiment_metadata_and_experiments_info(served):
    c = client(served)
    meta = c.call("get_experiment_metadata")
    validate(route("get_experiment_metadata").response, meta)
    assert meta["id"] == "synth001" and meta["status"] == "DONE" and meta["platform"] == "local"
    infos = c.call("get_experiments_info")
    assert [i["id"] for i in infos] == ["synth001"]
    assert set(infos[0]) >= {"id", "experimentName", "port", "status", "startTime", "endTime", "platform", "logDir"}


def test_imported_data_empty(served):
    assert client(served).call("get_imported_data") == []


def test_post_experiment_answers_its_id(served):
    assert client(served).call("start_experiment", body={}) == {"experiment_id": "synth001"}


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("path", ["/trial-jobs/nope1", "/metric-data-range/x/2", "/trial-file/nope1/trial.log", "/tensorboard/abc"])
def test_unknown_ids_and_bad_path_params(served, path):
    status, body = api(served, path)
    assert status in (400, 404) and isinstance(body, dict) and body["error"]
    if "nope1" in path or "abc" in path:
        assert status == 404


@pytest.mark.parametrize("path", ["/no-such-route", "/trial-jobs/T00001/extra", "/../../api/v2/x"])
def test_unknown_api_routes_are_json_404(served, path):
    status, body = api(served, path)
    assert status == 404 and "error" in body


def test_unknown_route_outside_v1_is_json_404(served):
    status, headers, body = get(f"{served.url}/api/v2/anything")
    assert status == 404 and json.loads(body)["error"]


def test_bad_query_value_names_the_field(served):
    status, body = api(served, "/trial-jobs?status=DANCING")
    assert status == 400 and body["error"].startswith("query.status")


def test_bad_payloads_are_400_naming_the_field(served):
    headers = {"Content-Type": "application/json"}
    status, body = api(served, "/experiment?update_type=TRIAL_CONCURRENCY", method="PUT", headers=headers, data=b"{not json")
    assert status == 400 and body["error"].startswith("body")
    status, body = api(served, "/experiment?update_type=TRIAL_CONCURRENCY", method="PUT", headers=headers, data=b"{}")
    assert status == 400 and "body.params" in body["error"]
    status, body = api(served, "/trial-jobs", method="POST", headers=headers, data=b'{"parameters": {}}')
    assert status == 400 and "body.hyperParameters" in body["error"]
    status, body = api(served, "/tensorboard", method="POST", headers=headers, data=b'{"trials": 3}')
    assert status == 400 and "body.trials" in body["error"]
    status, body = api(served, "/experiment/import-data", method="POST", headers=headers, data=b'[{"value": 1}]')
    assert status == 400 and "body[0].parameter" in body["error"]


def test_write_routes_refused_in_view_mode(served):
    c = client(served)
    with pytest.raises(RestError) as err:
        c.call("cancel_trial_job", id="T00000")
    assert err.value.status == 400 and "view mode" in str(err.value)


# ----------------------------------------------------------------- trial files


@pytest.mark.parametrize("name", ["trial.log", "stdout", "stderr"])
def test_trial_file_serves_the_allowed_files(served, name):
    text = client(served).call("get_trial_file", id="T00006", filename=name)
    assert text == (served.exp_dir / "trials" / "T00006" / name).read_text()


def test_trial_file_model_onnx_is_binary(served):
    (served.exp_dir / "trials" / "T00002" / "model.onnx").write_bytes(b"\x08\x07onnx\xff")
    assert client(served).call_raw("get_trial_file", id="T00002", filename="model.onnx") == b"\x08\x07onnx\xff"
    status, _ = api(served, "/trial-file/T00003/model.onnx")
    assert status == 404


@pytest.mark.parametrize("bad", [
    "..%2F..%2F..%2Fdb%2Fnni.sqlite", "%2Fetc%2Fpasswd", "..%2Fstderr", "parameter.cfg", "..", "%2E%2E", ".nni%2Fstate",
])
def test_trial_file_rejects_other_names_and_paths(served, bad):
    status, body = api(served, f"/trial-file/T00001/{bad}")
    assert status in (400, 404)
    assert b"root:" not in json.dumps(body).encode() and b"SQLite" not in json.dumps(body).encode()
    if status == 400:
        assert body["error"].startswith("filename")


def test_trial_file_raw_dotdot_never_escapes(served):
    status, headers, body = get(f"{served.url}{API_ROOT}/trial-file/T00001/../../../../../../etc/passwd")
    assert status == 404 and b"root:" not in body


def test_trial_file_symlink_out_of_the_trial_dir_is_not_served(served, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    link = served.exp_dir / "trials" / "T00004" / "stdout"
    link.unlink()
    os.symlink(secret, link)
    status, body = api(served, "/trial-file/T00004/stdout")
    assert status == 404 and "top secret" not in json.dumps(body)


# ----------------------------------------------------------------- TensorBoard


def test_tensorboard_tasks_list_and_unknown(served):
    c = client(served)
    assert c.call("list_tensorboard_tasks") == []
    with pytest.raises(RestError) as err:
        c.call("start_tensorboard", body={"trials": "nope1"})
    assert err.value.status == 404
    with pytest.raises(RestError) as err:
        c.call("stop_tensorboard", id="nope")
    assert err.value.status == 404


def test_tensorboard_not_installed_gives_a_clear_message(served, monkeypatch):
    import nni.server.tensorboard as tb

    monkeypatch.setattr(tb, "tensorboard_available", lambda: False)
    with pytest.raises(RestError) as err:
        client(served).call("start_tensorboard", body={"trials": "T00000"})
    assert err.value.status == 400 and "pip install tensorboard" in str(err.value)


@pytest.mark.slow
def test_tensorboard_start_and_stop(served):
    pytest.importorskip("tensorboard")
    c = client(served)
    task = c.call("start_tensorboard", body={"trials": "T00000,T00001"})
    validate(route("start_tensorboard").response, task)
    try:
        assert task["status"] == "RUNNING" and task["port"] and task["pid"]
        assert task["trialJobIdList"] == ["T00000", "T00001"]
        assert task["trialLogDirectoryList"][0] == str((served.exp_dir / "trials" / "T00000" / "tensorboard").resolve())
        assert c.call("start_tensorboard", body={"trials": "T00000,T00001"})["id"] == task["id"]  # reused
        assert c.call("get_tensorboard", id=task["id"])["status"] == "RUNNING"
        assert [t["id"] for t in c.call("list_tensorboard_tasks")] == [task["id"]]
    finally:
        stopped = c.call("stop_all_tensorboards")
    assert [t["status"] for t in stopped] == ["STOPPED"]


# ----------------------------------------------------------------- OpenAPI


def test_openapi_document_covers_every_route(served):
    doc = client(served).call("get_openapi")
    assert doc["openapi"].startswith("3.")
    ops = {(m.upper(), p): op["operationId"] for p, item in doc["paths"].items() for m, op in item.items()}
    assert ops == {(r.method, r.path): r.name for r in ROUTES}
    assert doc["servers"][0]["url"] == API_ROOT
    assert "/trial-file/{id}/{filename}" in doc["paths"]
    assert TRIAL_FILES[0] in doc["paths"]["/trial-file/{id}/{filename}"]["get"]["summary"]


# ----------------------------------------------------------------- security


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2", "0.0.0.0", "::", "192.168.1.5"])
def test_token_rule(host):
    """A token on every address; --no-token only on loopback."""
    assert requires_token(host) is True
    new = resolve_token(host, None)
    assert isinstance(new, str) and len(new) >= 32 and new != resolve_token(host, None)  # a fresh secret each time
    assert resolve_token(host, "given") == "given"
    if host in ("127.0.0.1", "localhost"):
        assert requires_token(host, no_token=True) is False and resolve_token(host, None, no_token=True) is None
    else:
        with pytest.raises(ValueError, match="--no-token: a token is mandatory"):
            requires_token(host, no_token=True)


def test_default_bind_needs_a_token(served):
    assert served.token
    assert api(served, "/version")[0] == 200  # get() sends it
    assert get(f"{served.url}{API_ROOT}/version", headers={"Authorization": "Bearer wrong"})[0] == 401


def test_cors_is_closed(served):
    status, headers, _ = get(f"{served.url}{API_ROOT}/version", headers={"Origin": "http://evil.example"})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    status, headers, _ = get(f"{served.url}{API_ROOT}/experiment", method="OPTIONS",
                             headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "DELETE"})
    assert status >= 400 and "Access-Control-Allow-Origin" not in headers
    status, headers, body = get(f"{served.url}{API_ROOT}/experiment", method="DELETE", headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in json.loads(body)["error"]


@pytest.fixture(scope="module")
def served_off_default(tmp_path_factory):
    root = tmp_path_factory.mktemp("exps-token")
    synthetic_experiment(root / "tok00001", 3, 2, "tok00001")
    try:
        server = serve_experiment(root / "tok00001", "tok00001", host="127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound here")
    yield server
    server.close()


def test_token_required_on_every_route_off_default(served_off_default):
    s = served_off_default
    assert s.token
    for path in (f"{API_ROOT}/version", f"{API_ROOT}/trial-jobs", f"{API_ROOT}/openapi.json", "/", "/oview", "/static/app.css", "/logs/nnimanager.log", f"{API_ROOT}/nope"):
        status, _, body = get(s.url + path)
        assert status == 401, path
        assert b"access token" in body
    assert get(s.url + f"{API_ROOT}/version", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert get(s.url + f"{API_ROOT}/version", headers={"Authorization": f"Bearer {s.token}"})[0] == 200
    assert RestClient(s.port, host=s.host, token=s.token).call("get_status")["status"] == "VIEWED"
    with pytest.raises(RestError) as err:
        RestClient(s.port, host=s.host).call("get_status")
    assert err.value.status == 401


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_token_in_url_sets_a_cookie_for_the_ui(served_off_default):
    """The printed URL (…/?token=) answers with the cookie and a redirect to the clean URL."""
    s = served_off_default
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(f"{s.url}/oview?token={s.token}", timeout=20)
    assert redirect.value.code == 302 and redirect.value.headers["Location"] == "/oview"
    headers = redirect.value.headers
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = cookie.split(";")[0]
    assert get(f"{s.url}{API_ROOT}/trial-jobs", headers={"Cookie": value})[0] == 200


# ----------------------------------------------------------------- web UI and logs


@pytest.mark.parametrize("page", ["/", "/oview", "/detail", "/experiment"])
def test_ui_pages(served, page):
    status, headers, body = get(served.url + page)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<base href="/">' in body and b"static/js/main.js" in body
    for needle in (b'src="http', b"href='http", b'href="http', b"url(http"):
        assert needle not in body  # nothing from the internet


def test_ui_static_files_and_plotly_bundle(served):
    status, headers, body = get(served.url + "/static/js/main.js")
    assert status == 200 and "javascript" in headers["Content-Type"]
    status, headers, body = get(served.url + "/static/vendor/plotly.min.js")
    assert status == 200 and len(body) > 1_000_000 and b"plotly" in body[:2000].lower()
    for bad in ("/static/..%2F__init__.py", "/static/js/..%2F..%2F__init__.py", "/static/nope.js"):
        assert get(served.url + bad)[0] == 404


def test_ui_sources_load_nothing_from_the_internet():
    from nni.server.webui import WEBUI_DIR

    for path in WEBUI_DIR.rglob("*"):
        # vendor/: plotly.js' config defaults name its CDN (topojson of geo traces, not in the bundle)
        if path.suffix in (".js", ".css", ".html") and "vendor" not in path.relative_to(WEBUI_DIR).parts:
            text = path.read_text(encoding="utf-8")
            for needle in ("cdn.", "googleapis", "unpkg", "jsdelivr", "@import url(http"):
                assert needle not in text, f"{path.name} refers to {needle}"


def test_log_files(served):
    status, headers, body = get(served.url + "/logs/nnimanager.log")
    assert status == 200 and b"manager log" in body
    assert get(served.url + "/logs/dispatcher.log")[0] == 200
    for bad in ("/logs/..%2Fdb%2Fnni.sqlite", "/logs/secret.log", "/logs/nnictl_stdout.log"):
        assert get(served.url + bad)[0] == 404


def test_url_prefix(tmp_path):
    synthetic_experiment(tmp_path / "pre00001", 2, 1, "pre00001")
    s = serve_experiment(tmp_path / "pre00001", "pre00001", prefix="nni/")
    TOKENS[s.port] = s.token
    try:
        assert s.prefix == "/nni"
        status, _, body = get(s.url + "/oview")
        assert status == 200 and b'<base href="/nni/">' in body
        assert RestClient(s.port, prefix="nni", token=s.token).call("get_experiment_profile")["id"] == "pre00001"
        assert client(s).call("get_openapi")["servers"][0]["url"] == "/nni" + API_ROOT
        assert get(f"http://{s.host}:{s.port}{API_ROOT}/version")[0] == 404
    finally:
        s.close()


@pytest.mark.slow
def test_manager_off_default_address_prints_and_checks_a_token(tmp_path):
    """The real manager process (view mode) bound to 127.0.0.2: a token is generated, printed, required."""
    import subprocess
    import sys
    import time

    from nni.server.testing import free_port

    synthetic_experiment(tmp_path / "mgr00001", 3, 2, "mgr00001")
    port = free_port("127.0.0.2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nni.server", "--view", "mgr00001", "--experiment-dir", str(tmp_path / "mgr00001"),
         "--host", "127.0.0.2", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "NNI access token" in line, line
        token = line.rsplit(":", 1)[1].strip()
        url = f"http://127.0.0.2:{port}{API_ROOT}/check-status"
        deadline = time.time() + 20
        while True:
            try:
                if get(url)[0] == 401:
                    break
            except urllib.error.URLError:  # not listening yet
                pass
            assert time.time() < deadline
            time.sleep(0.1)
        status, _, body = get(url, headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and json.loads(body)["status"] == "VIEWED"
    finally:
        proc.terminate()
        proc.wait(10)


def test_same_origin_writes_are_not_refused(served):
    """The UI's own requests carry its origin: they pass (here a DELETE of an unknown TensorBoard task: 404)."""
    origin = f"http://{served.host}:{served.port}"
    status, headers, body = get(f"{served.url}{API_ROOT}/tensorboard/nope", method="DELETE", headers={"Origin": origin})
    assert status == 404
    status, headers, body = get(f"{served.url}{API_ROOT}/tensorboard/nope", method="DELETE",
                                headers={"Origin": "https://proxy.example", "X-Forwarded-Host": "proxy.example"})
    assert status == 404
