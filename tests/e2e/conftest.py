"""Helpers for the end-to-end experiment tests: free ports, configs, and cleanup."""
from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    return _free_port()


@pytest.fixture
def nnictl_registry(tmp_path, monkeypatch):
    """nnictl runs with NNI_EXPERIMENTS_DIR=<tmp>/exps: this process reads the managers' tokens there."""
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path / "exps"))


@pytest.fixture
def make_experiment(tmp_path, monkeypatch):
    """``make_experiment(trial_source, search_space, **config fields)`` -> a configured Experiment."""
    from nni.experiment import Experiment

    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path / "nni-experiments"))
    created = []

    def make(trial_source: str, search_space: dict, **fields):
        code = tmp_path / "code"
        code.mkdir(exist_ok=True)
        (code / "trial.py").write_text(trial_source, encoding="utf-8")
        exp = Experiment("local")
        exp.config.trial_command = f"{Path(sys.executable).name} trial.py"
        exp.config.trial_code_directory = str(code)
        exp.config.search_space = search_space
        exp.config.experiment_working_directory = str(tmp_path / "nni-experiments")
        for key, value in fields.items():
            setattr(exp.config, key, value)
        created.append(exp)
        return exp

    yield make
    for exp in created:  # never leave a manager behind
        proc = exp._process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
