"""Access control (issue 11, items 5-7): a token on every address, the Host check, the token
file, ``--no-token`` on loopback only, private experiment files.

The manager's own app is served from a synthetic store on 127.0.0.1 (and 127.0.0.2 where it
can be bound); the real manager process is covered by tests/cli/test_access_e2e.py."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from nni.runtime import access
from nni.runtime.rest_api import API_ROOT, RestClient, RestError
from nni.server.store import ExperimentStore, ExperimentsRegistry, store_path
from nni.server.testing import auth_headers, free_port, serve_experiment, synthetic_experiment


def get(url, headers=None, method="GET"):
    """(status, headers, body) without following redirects or raising on 4xx."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect)
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with opener.open(req, timeout=20) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    exp_dir = tmp_path_factory.mktemp("acc") / "acc00001"
    synthetic_experiment(exp_dir, 3, 2, "acc00001")
    server = serve_experiment(exp_dir, "acc00001")
    server.exp_dir = exp_dir
    yield server
    server.close()


def test_a_token_is_required_by_default_on_127_0_0_1(served):
    """Any local user could list and stop experiments on 127.0.0.1 without a token."""
    assert served.token
    for method, path in (("GET", "/experiment"), ("GET", "/experiments-info"), ("DELETE", "/experiment"), ("GET", "/check-status")):
        status, _, body = get(f"{served.url}{API_ROOT}{path}", method=method)
        assert status == 401, (method, path)
        assert "access token required" in json.loads(body)["error"]
    for page in ("/", "/oview", "/static/app.css", "/logs/nnimanager.log"):
        assert get(served.url + page)[0] == 401, page
    assert get(f"{served.url}{API_ROOT}/experiment", headers={"Authorization": "Bearer nope"})[0] == 401
    assert get(f"{served.url}{API_ROOT}/experiment", headers=served.headers)[0] == 200


def test_host_header_must_name_the_manager(served):
    """A DNS-rebinding page reaches 127.0.0.1 with its own name in Host: refused, even with the token."""
    url = f"{served.url}{API_ROOT}/check-status"
    for host in ("evil.example", f"evil.example:{served.port}", "127.0.0.1.evil.example", "0.0.0.0"):
        status, _, body = get(url, headers={"Host": host, **served.headers})
        assert status == 403, host
        error = json.loads(body)["error"]
        assert "Host header" in error and "\n" not in error
    for host in (f"127.0.0.1:{served.port}", f"localhost:{served.port}", f"[::1]:{served.port}", "LOCALHOST"):
        assert get(url, headers={"Host": host, **served.headers})[0] == 200, host


def test_token_url_sets_an_httponly_cookie_and_redirects_to_the_clean_url(served):
    status, headers, _ = get(f"{served.url}/oview?token={served.token}&tab=trials")
    assert status == 302 and headers["Location"] == "/oview?tab=trials"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"nni_token_{served.port}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = cookie.split(";")[0]
    assert get(f"{served.url}{API_ROOT}/trial-jobs", headers={"Cookie": value})[0] == 200
    assert get(f"{served.url}/", headers={"Cookie": value})[0] == 200
    assert get(f"{served.url}/?token=wrong")[0] == 401
    # a cookie of another manager (another port of the same host) does not open this one
    assert get(f"{served.url}/", headers={"Cookie": f"nni_token_1={served.token}"})[0] == 401


def test_token_file_is_private_and_found_by_rest_client(served):
    path = access.token_path(served.exp_dir)
    assert path.read_text() == served.token and mode(path) == 0o600
    with pytest.raises(RestError) as err:
        RestClient(served.port, token=False).call("get_status")
    assert err.value.status == 401
    # registered like a running manager: RestClient and the test helper find the token by port
    ExperimentsRegistry().upsert("acc00001", port=served.port, pid=os.getpid(), workdir=str(served.exp_dir), start_time=1)
    try:
        assert RestClient(served.port).call("get_status")["status"] == "VIEWED"
        assert auth_headers(served.port) == served.headers
        assert RestClient(served.port, host="10.1.2.3").token is None  # never sent to another machine
    finally:
        ExperimentsRegistry().remove("acc00001")


def test_no_token_only_on_loopback(tmp_path):
    synthetic_experiment(tmp_path / "nt000001", 2, 1, "nt000001")
    s = serve_experiment(tmp_path / "nt000001", "nt000001", no_token=True)
    try:
        assert s.token is None and not access.token_path(tmp_path / "nt000001").exists()
        assert get(f"{s.url}{API_ROOT}/check-status")[0] == 200
        assert get(f"{s.url}{API_ROOT}/check-status", headers={"Host": "evil.example"})[0] == 403
    finally:
        s.close()
    with pytest.raises(ValueError, match=r"--no-token: a token is mandatory when binding 127\.0\.0\.2"):
        serve_experiment(tmp_path / "nt000001", "nt000001", host="127.0.0.2", no_token=True)


def test_other_address_needs_the_token_and_accepts_its_own_name(tmp_path):
    synthetic_experiment(tmp_path / "oa000001", 2, 1, "oa000001")
    try:
        s = serve_experiment(tmp_path / "oa000001", "oa000001", host="127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound here")
    try:
        assert get(f"{s.url}{API_ROOT}/check-status")[0] == 401
        assert get(f"{s.url}{API_ROOT}/check-status", headers=s.headers)[0] == 200
        assert get(f"{s.url}{API_ROOT}/check-status", headers={"Host": "attacker.example", **s.headers})[0] == 403
    finally:
        s.close()


def test_server_cli_refuses_no_token_off_loopback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nni.server", "--view", "x", "--host", "127.0.0.2", "--no-token",
                           "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("Error: --no-token: a token is mandatory when binding 127.0.0.2; "
                                   "turning it off is allowed only for 127.0.0.1, localhost, ::1")
    proc = subprocess.run([sys.executable, "-m", "nni.server", "--view", "x", "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, NNI_NO_TOKEN="1"))
    assert "a token is mandatory" not in proc.stderr  # allowed on 127.0.0.1 (fails later: no such experiment)


def test_printed_urls_are_real_addresses():
    addresses = access.local_addresses()
    assert addresses[0] == "127.0.0.1" and "0.0.0.0" not in addresses
    urls = access.web_urls(8080, "0.0.0.0", "nni", "T0K")
    assert urls[0] == "http://127.0.0.1:8080/nni/?token=T0K" and not any("0.0.0.0" in u for u in urls)
    assert access.web_urls(8080, "127.0.0.2") == ["http://127.0.0.2:8080"]


def test_store_registry_and_token_are_owner_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        exp_dir = access.private_dir(tmp_path / "exps" / "own00001")
        store = ExperimentStore(store_path(exp_dir))
        store.create_experiment("own00001", {"trialConcurrency": 1}, str(exp_dir), 1)
        store.close()
        registry = ExperimentsRegistry(tmp_path / "root")
        registry.upsert("own00001", port=1)
        access.write_token(exp_dir, "secret")
    finally:
        os.umask(old)
    assert mode(exp_dir) == 0o700
    assert mode(exp_dir / "db") == 0o700
    assert mode(store_path(exp_dir)) == 0o600
    for extra in ("-wal", "-shm"):
        wal = store_path(exp_dir).with_name("nni.sqlite" + extra)
        if wal.exists():
            assert mode(wal) == 0o600
    assert mode(tmp_path / "root") == 0o700 and mode(registry.path) == 0o600
    assert mode(access.token_path(exp_dir)) == 0o600
