"""SSH secrets stay out of the experiment's config file and come back for the manager."""
from __future__ import annotations

import json
import stat

from nni.runtime.experiment_profile import SECRETS_FILE, mask_secrets, restore_secrets, write_config_file


def _config():
    return {
        "trialCommand": "python3 trial.py",
        "trainingService": [
            {"platform": "remote", "machineList": [
                {"host": "10.0.0.1", "user": "a", "password": "pa55", "sshPassphrase": None},
                {"host": "10.0.0.2", "user": "b", "password": None, "sshKeyFile": "/k", "sshPassphrase": "s3cr3t-pp"},
            ]},
            {"platform": "local"},
        ],
    }


def test_config_file_is_masked_and_secrets_are_owner_only(tmp_path):
    path = tmp_path / "experiment_config.json"
    write_config_file(_config(), path)
    text = path.read_text()
    assert "pa55" not in text and "s3cr3t-pp" not in text and text.count('"***"') == 2
    secrets = tmp_path / SECRETS_FILE
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    # what the manager and resume see: the real values again, nothing else changed
    assert restore_secrets(json.loads(text), tmp_path) == _config()
    assert mask_secrets(_config()) == json.loads(text)


def test_no_secrets_no_file_and_a_changed_config_is_left_alone(tmp_path):
    write_config_file({"trialCommand": "x", "trainingService": {"platform": "local"}}, tmp_path / "c.json")
    assert not (tmp_path / SECRETS_FILE).exists()
    write_config_file(_config(), tmp_path / "c.json")
    changed = {"trialCommand": "x", "trainingService": {"platform": "local"}}
    assert restore_secrets(changed, tmp_path) == changed  # paths that no longer exist are skipped
    assert restore_secrets(changed, tmp_path / "nowhere") == changed
