"""Real OpenSSH servers on 127.0.0.1 (see :mod:`nni.training_services.remote.testing`)."""
from __future__ import annotations

import pytest

from nni.training_services.remote.testing import SshServer, sshd_unavailable_reason

_REASON = sshd_unavailable_reason()


@pytest.fixture
def nni_known_hosts(tmp_path, monkeypatch):
    """A fresh NNI config dir per test, so recorded host keys do not leak between tests."""
    config = tmp_path / "nni-config"
    monkeypatch.setenv("NNI_CONFIG_DIR", str(config))
    monkeypatch.delenv("NNI_SSH_ACCEPT_NEW_HOST_KEYS", raising=False)
    return config / "known_hosts"


def _server(tmp_path, name, nni_known_hosts, **kwargs):
    if _REASON:
        pytest.skip(_REASON)
    server = SshServer(tmp_path / name, **kwargs)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    server.trust(nni_known_hosts)
    return server


@pytest.fixture
def key_server(tmp_path, nni_known_hosts):
    """sshd accepting a generated key; its machine has a fake nvidia-smi with 2 GPUs."""
    server = _server(tmp_path, "sshd-key", nni_known_hosts, gpus=2)
    yield server
    server.stop()


@pytest.fixture
def password_server(tmp_path, nni_known_hosts):
    """sshd with password authentication for a fresh account."""
    server = _server(tmp_path, "sshd-password", nni_known_hosts, password_auth=True)
    yield server
    server.stop()
