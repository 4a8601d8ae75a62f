"""Helpers for the nnictl end-to-end tests: an isolated nnictl, configs, and cleanup."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

NNICTL = str(Path(sys.executable).parent / "nnictl")


@pytest.fixture()
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nnictl:
    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path / "nni-experiments"
        self.env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(self.root), NNI_CONFIG_DIR=str(tmp_path / "config"),
                        HOME=str(tmp_path / "home"))
        self.cwd = tmp_path
        self.executable = NNICTL

    def __call__(self, *args: str, ok: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        proc = subprocess.run([NNICTL, *args], capture_output=True, text=True, env=self.env, cwd=self.cwd, timeout=timeout)
        if ok:
            assert proc.returncode == 0, f"nnictl {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc

    def managers(self) -> list[int]:
        from nni.server.store import ExperimentsRegistry

        if not (self.root / ".experiments.sqlite").exists():
            return []
        return [r["pid"] for r in ExperimentsRegistry(self.root).list() if r.get("pid")]


@pytest.fixture()
def nnictl(tmp_path, monkeypatch):
    tool = Nnictl(tmp_path)
    # The same registry for this process: RestClient and nni.server.testing.auth_headers find
    # the managers' access tokens through it.
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tool.root))
    (tmp_path / "home").mkdir()
    yield tool
    for pid in tool.managers():  # never leave a manager behind
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture()
def write_config(tmp_path):
    """``write_config(trial_source or None, **yaml_fields)`` -> path of a local-platform config.yml."""

    def write(trial_source: str | None, name: str = "config.yml", **fields) -> Path:
        import yaml

        code = tmp_path / "code"
        code.mkdir(exist_ok=True)
        if trial_source is not None:  # None: keep the trial of an earlier config
            (code / "trial.py").write_text(textwrap.dedent(trial_source), encoding="utf-8")
        config = {
            "experimentName": "cli-e2e",
            "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
            "trialCommand": f"{sys.executable} trial.py",
            "trialCodeDirectory": str(code),
            "trialConcurrency": 2,
            "maxTrialNumber": 4,
            "tuner": {"name": "Random"},
            "trainingService": {"platform": "local"},
        }
        config.update(fields)
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    return write


@pytest.fixture
def ssh_machines(tmp_path, nnictl):
    """Two real sshd machines on 127.0.0.1 trusted in the nnictl environment's known_hosts: one
    logged in with a key (a fake ``nvidia-smi`` there lists 2 GPUs), one with a password."""
    from nni.training_services.remote.testing import SshServer, sshd_unavailable_reason

    reason = sshd_unavailable_reason()
    if reason:
        pytest.skip(reason)
    known = Path(nnictl.env["NNI_CONFIG_DIR"]) / "known_hosts"
    servers = []
    try:
        for name, kwargs in (("key", {"gpus": 2}), ("pw", {"password_auth": True})):
            server = SshServer(tmp_path / f"sshd-{name}", **kwargs)
            servers.append(server)
            server.start()
            server.trust(known)
        yield servers
    finally:
        for server in servers:
            server.stop()
