"""SSH secrets in a stored config never come back through REST ``GET /experiment`` or the profile."""
from __future__ import annotations

import json
import urllib.request

import pytest

server_testing = pytest.importorskip("nni.server.testing")  # nni-webui-server

SECRET = "pw-Zq81-never-shown"
PASSPHRASE = "pass-Zq81-never-shown"


def remote_config(base: dict) -> dict:
    return dict(base, trainingService={"platform": "remote", "reuseMode": True, "machineList": [
        {"host": "10.1.1.1", "port": 22, "user": "bob", "password": SECRET, "sshKeyFile": None, "sshPassphrase": None},
        {"host": "10.1.1.2", "port": 22, "user": "alice", "password": None, "sshKeyFile": "/k",
         "sshPassphrase": PASSPHRASE},
    ]})


def test_rest_profile_masks_passwords_and_passphrases(tmp_path):
    from nni.runtime.experiment_profile import experiment_profile
    from nni.server.store import ExperimentStore, store_path

    exp_dir = tmp_path / "exp"
    server_testing.synthetic_experiment(exp_dir, n_trials=2, experiment_id="sec00001")
    store = ExperimentStore(store_path(exp_dir))
    store.update_config(remote_config(store.config()))
    offline = experiment_profile(store.experiment_row(), store.config())  # nnictl / SDK on a stopped experiment
    store.close()

    served = server_testing.serve_experiment(exp_dir, "sec00001")
    try:
        req = urllib.request.Request(f"{served.url}/api/v1/nni/experiment", headers=served.headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read().decode()
    finally:
        served.close()
    for text in (body, json.dumps(offline)):
        assert SECRET not in text and PASSPHRASE not in text
    machines = json.loads(body)["params"]["config"]["trainingService"]["machineList"]
    assert [m["password"] for m in machines] == ["***", None]
    assert [m["sshPassphrase"] for m in machines] == [None, "***"]
    assert machines[0]["host"] == "10.1.1.1"  # everything else is shown as it is
