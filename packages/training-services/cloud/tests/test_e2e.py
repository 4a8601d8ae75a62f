"""Experiments through ``nnictl create`` and the real manager, one per cloud platform, against
the stand-ins (OpenPAI / PAI-DLC / DLTS REST servers on 127.0.0.1, the fake ``azureml.core``).

Each experiment: trials run in jobs the stand-in starts (runners connect back to the manager),
report metrics, one job is failed while its trial runs (the trial ends SYS_CANCELED with the
platform's reason and its parameters run again), and every job is cancelled at ``nnictl stop``.
A hybrid local + openpai experiment shows each trial's platform.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nni.training_services.cloud.testing import (
    DlcStandIn,
    DltsStandIn,
    FakeAzureml,
    OpenpaiStandIn,
    install_fake_azureml,
    write_trial_code,
)

pytestmark = pytest.mark.slow
server_testing = pytest.importorskip("nni.server.testing")
NNICTL = str(Path(sys.executable).parent / "nnictl")

TRIAL = """\
import os, time, nni
p = nni.get_next_parameter()
nni.report_intermediate_result(p["x"] * 2)
time.sleep(2)
nni.report_final_result(p["x"])
print("platform", os.environ.get("NNI_PLATFORM"))
"""


class Nnictl:
    def __init__(self, tmp_path: Path, env: dict) -> None:
        self.root = tmp_path / "nni-experiments"
        (tmp_path / "home").mkdir(exist_ok=True)
        self.env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(self.root), NNI_CONFIG_DIR=str(tmp_path / "config"),
                        HOME=str(tmp_path / "home"), NNI_CLOUD_POLL_INTERVAL="0.2", **env)
        self.cwd = tmp_path

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([NNICTL, *args], capture_output=True, text=True, env=self.env, cwd=self.cwd, timeout=120)
        if ok:
            assert proc.returncode == 0, f"nnictl {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc

    def kill_managers(self) -> None:
        from nni.server.store import ExperimentsRegistry

        if (self.root / ".experiments.sqlite").exists():
            for row in ExperimentsRegistry(self.root).list():
                if row.get("pid"):
                    try:
                        os.killpg(row["pid"], signal.SIGKILL)
                    except OSError:
                        pass


class Platform:
    """A stand-in, the trainingService entry for it and what the test reads back."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name = name
        self.env: dict = {}
        storage = tmp_path / "storage"
        if name == "openpai":
            self.server = OpenpaiStandIn(tmp_path / "svc").start()
            self.config = {"platform": "openpai", "host": self.server.url, "username": self.server.username, "token": self.server.token,
                           "trialCpuNumber": 1, "trialMemorySize": "1gb", "storageConfigName": "confignfs-data",
                           "localStorageMountPoint": str(storage), "containerStorageMountPoint": str(storage)}
        elif name == "dlc":
            self.server = DlcStandIn(tmp_path / "svc").start()
            self.env = {"NNI_DLC_ENDPOINT": self.server.url}
            self.config = {"platform": "dlc", "image": "pai-dlc/pytorch:1.6", "jobType": "PyTorchJob", "podCount": 1,
                           "ecsSpec": "ecs.c6.large", "region": "cn-hangzhou", "nasDataSourceId": "data-nas-1",
                           "accessKeyId": self.server.access_key_id, "accessKeySecret": self.server.access_key_secret,
                           "localStorageMountPoint": str(storage), "containerStorageMountPoint": str(storage)}
        elif name == "dlts":
            self.server = DltsStandIn(tmp_path / "svc").start()
            self.env = {"DLTS_CLUSTER": self.server.cluster, "DLTS_TEAM": "platform", "DLTS_EMAIL": self.server.email,
                        "DLTS_PASSWORD": self.server.password}
            self.config = {"platform": "dlts", "dashboard": self.server.url}
        else:
            self.server = None
            self.fake = FakeAzureml(tmp_path / "aml")
            self.env = install_fake_azureml(tmp_path / "sdk", tmp_path / "aml")
            self.config = {"platform": "aml", "subscriptionId": "01234567-89ab-cdef-0123-456789abcdef", "resourceGroup": "rg-1",
                           "workspaceName": "ws-1", "computeTarget": "cpu-cluster"}

    def submitted(self) -> list:
        if self.server is None:
            return [r["run_id"] for r in self.fake.submitted()]
        return list(self.server.jobs)

    def cancelled(self) -> set:
        if self.server is None:
            return set(self.fake.cancelled())
        return set(self.server.cancelled)

    def fail_a_running_job(self) -> str:
        reason = f"{self.name} node lost (stand-in fault)"
        if self.server is None:
            run = next(r for r in self.submitted() if r not in self.fake.cancelled())
            self.fake.fail(run, reason)
        else:
            self.server.fail(self.server.running()[0], reason)
        return reason

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


@pytest.mark.parametrize("name", ["openpai", "aml", "dlc", "dlts"])
def test_experiment_end_to_end(tmp_path, monkeypatch, name):
    platform = Platform(name, tmp_path)
    nnictl = Nnictl(tmp_path, platform.env)
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(nnictl.root))  # rest_get finds the manager's token there
    code = write_trial_code(tmp_path / "code", TRIAL)
    config = {"searchSpace": {"x": {"_type": "choice", "_value": [1, 2, 3, 4, 5, 6]}}, "trialCommand": "python3 trial.py",
              "trialCodeDirectory": str(code), "trialConcurrency": 2, "maxTrialNumber": 3, "tuner": {"name": "Random"},
              "trainingService": platform.config}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    port = server_testing.free_port()
    eid = None
    try:
        eid = server_testing.experiment_id_of(nnictl("create", "--config", str(path), "--port", str(port)).stdout)
        server_testing.wait_until(lambda: sum(t["status"] == "RUNNING" for t in server_testing.rest_get(port, "trial-jobs")) >= 2,
                                  timeout=60, what="two running trials")
        reason = platform.fail_a_running_job()
        server_testing.wait_until(lambda: server_testing.rest_get(port, "check-status")["status"] in ("DONE", "ERROR"),
                                  timeout=90, what="DONE")
        trials = json.loads(nnictl("trial", "ls", eid).stdout)
        lost = [t for t in trials if t["status"] == "SYS_CANCELED"]
        done = [t for t in trials if t["status"] == "SUCCEEDED"]
        assert len(done) == 3 and len(lost) == 1, trials
        assert reason in lost[0]["message"], lost
        assert lost[0]["hyperParameters"] in [t["hyperParameters"] for t in done]  # re-run with the same parameters
        finals = {m["trialJobId"] for m in server_testing.rest_get(port, "metric-data") if m["type"] == "FINAL"}
        assert {t["trialJobId"] for t in done} <= finals
        assert {t.get("platform") for t in trials} <= {name, None, ""}
        nnictl("stop", eid)
        submitted = platform.submitted()
        assert len(submitted) >= 3  # two environments + the one replacing the failed job
        server_testing.wait_until(lambda: set(submitted) <= platform.cancelled(), timeout=30, what="every job cancelled")
    finally:
        nnictl.kill_managers()
        platform.close()
        if name == "aml" and eid:
            for folder in Path("/tmp/nni-aml").glob(f"{eid}-*"):
                shutil.rmtree(folder, ignore_errors=True)


def test_hybrid_local_and_openpai(tmp_path, monkeypatch):
    platform = Platform("openpai", tmp_path)
    nnictl = Nnictl(tmp_path, platform.env)
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(nnictl.root))
    code = write_trial_code(tmp_path / "code", TRIAL.replace("time.sleep(2)", "time.sleep(0.5)"))
    config = {"searchSpace": {"x": {"_type": "choice", "_value": [1, 2, 3, 4]}}, "trialCommand": "python3 trial.py",
              "trialCodeDirectory": str(code), "trialConcurrency": 2, "maxTrialNumber": 4, "tuner": {"name": "Random"},
              "trainingService": [{"platform": "local"}, platform.config]}
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(config))
    port = server_testing.free_port()
    try:
        eid = server_testing.experiment_id_of(nnictl("create", "--config", str(path), "--port", str(port)).stdout)
        server_testing.wait_until(lambda: server_testing.rest_get(port, "check-status")["status"] in ("DONE", "ERROR"),
                                  timeout=90, what="DONE")
        trials = json.loads(nnictl("trial", "ls", eid).stdout)
        assert {t["status"] for t in trials} == {"SUCCEEDED"} and len(trials) == 4
        assert {t["platform"] for t in trials} == {"local", "openpai"}
        nnictl("stop", eid)
        server_testing.wait_until(lambda: not platform.server.running(), timeout=30, what="the OpenPAI jobs stopped")
        assert platform.cancelled() == set(platform.submitted())
    finally:
        nnictl.kill_managers()
        platform.close()
