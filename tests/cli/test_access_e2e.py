"""Access control against real managers started by nnictl (issue 11, items 5-7): the printed
URL carries the token, nnictl / Experiment.connect / the test helper find it by themselves,
raw requests without it are refused, the files are owner-only, ``--host`` / ``--no-token``."""
from __future__ import annotations

import json
import os
import re
import stat
import urllib.error
import urllib.request

import pytest

from nni.server.testing import auth_headers, experiment_id_of, free_port as _free

pytestmark = pytest.mark.slow

TRIAL = "import nni\nnni.report_final_result(nni.get_next_parameter()['x'])\n"


def _get(url: str, headers: dict | None = None) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_token_by_default(nnictl, write_config, free_port, monkeypatch):
    config = write_config(TRIAL, maxTrialNumber=2)
    old = os.umask(0)  # the manager inherits it: modes must not depend on it
    try:
        out = nnictl("create", "--config", str(config), "--port", str(free_port)).stdout
    finally:
        os.umask(old)
    eid = experiment_id_of(out)
    exp_dir = nnictl.root / eid
    token = (exp_dir / "access_token").read_text()
    assert f"The Web UI urls are: http://127.0.0.1:{free_port}/?token={token}" in out
    assert _mode(exp_dir) == 0o700 and _mode(exp_dir / "access_token") == 0o600
    assert _mode(exp_dir / "db" / "nni.sqlite") == 0o600 and _mode(nnictl.root / ".experiments.sqlite") == 0o600

    api = f"http://127.0.0.1:{free_port}/api/v1/nni"
    assert _get(f"{api}/experiment") == 401 and _get(f"{api}/experiments-info") == 401
    assert auth_headers(free_port, root=nnictl.root) == {"Authorization": f"Bearer {token}"}
    assert _get(f"{api}/experiment", auth_headers(free_port, root=nnictl.root)) == 200
    assert nnictl("webui", "url").stdout.strip() == f"Web UI urls: http://127.0.0.1:{free_port}/?token={token}"
    assert isinstance(json.loads(nnictl("trial", "ls", eid).stdout), list)

    from nni.experiment import Experiment

    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(nnictl.root))
    exp = Experiment.connect(free_port)
    assert exp.id == eid and exp.url == f"http://127.0.0.1:{free_port}/?token={token}"
    nnictl("stop", eid)
    for log in (exp_dir / "log").iterdir():  # the token is never logged
        assert token not in log.read_text(errors="replace"), log.name


def test_host_and_no_token(nnictl, write_config, free_port):
    config = write_config(TRIAL, maxTrialNumber=1)
    bad = nnictl("create", "--config", str(config), "--port", str(free_port), "--host", "127.0.0.2", "--no-token", ok=False)
    assert bad.returncode == 1
    assert bad.stderr.strip() == ("ERROR: --no-token: a token is mandatory when binding 127.0.0.2; "
                                  "turning it off is allowed only for 127.0.0.1, localhost, ::1")
    # --no-token on loopback: old scripts talk raw HTTP without a token
    out = nnictl("create", "--config", str(config), "--port", str(free_port), "--no-token").stdout
    eid = experiment_id_of(out)
    assert f"The Web UI urls are: http://127.0.0.1:{free_port}\n" in out
    assert _get(f"http://127.0.0.1:{free_port}/api/v1/nni/check-status") == 200
    nnictl("stop", eid)
    # another address: bound there, the token is mandatory, nnictl still reaches it
    port = _free("127.0.0.2")
    out = nnictl("create", "--config", str(config), "--port", str(port), "--host", "127.0.0.2").stdout
    eid = experiment_id_of(out)
    token = (nnictl.root / eid / "access_token").read_text()
    assert re.search(rf"The Web UI urls are: http://127\.0\.0\.2:{port}/\?token={token}\n", out)
    assert _get(f"http://127.0.0.2:{port}/api/v1/nni/check-status") == 401
    assert _get(f"http://127.0.0.2:{port}/api/v1/nni/check-status", {"Authorization": f"Bearer {token}"}) == 200
    assert nnictl("webui", "url", eid).stdout.strip() == f"Web UI urls: http://127.0.0.2:{port}/?token={token}"
    assert isinstance(json.loads(nnictl("trial", "ls", eid).stdout), list)
    nnictl("stop", eid)
