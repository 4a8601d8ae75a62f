"""Experiments through the real manager (``Experiment.start``: the manager process, its scheduler,
the tuner) on the stand-in cluster: Kubeflow, FrameworkController with a pod eviction mid-run,
AdaptDL, and a hybrid local + kubeflow experiment."""
from __future__ import annotations

import shutil
import socket
import time

import pytest

from nni.experiment import Experiment
from nni.experiment.config import ExperimentConfig

pytestmark = pytest.mark.slow

SPACE = {"x": {"_type": "choice", "_value": [1, 2, 3, 4]}}


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def run(tmp_path, monkeypatch, kubeconfig):
    """``run(trainingService, **fields)`` -> (Experiment, trials) once DONE; the manager is stopped after."""
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path / "nni-experiments"))
    started = []

    def start(ts, code, sleep=0.0, during=None, **fields):
        config = ExperimentConfig.from_dict({
            "trialCommand": "python3 trial.py", "trialCodeDirectory": str(code), "searchSpace": SPACE,
            "tuner": {"name": "GridSearch"}, "trialConcurrency": 2, "maxTrialNumber": 4,
            "experimentWorkingDirectory": str(tmp_path / "nni-experiments"), "trainingService": ts, **fields})
        (code / "trial.py").write_text((code / "trial.py").read_text().replace('p.get("sleep", 0)', str(sleep)))
        exp = Experiment(config)
        started.append(exp)
        exp.start(_port())
        deadline = time.monotonic() + 150
        while exp.get_status() not in ("DONE", "ERROR"):
            assert time.monotonic() < deadline, "the experiment did not finish"
            if during is not None and during(exp):
                during = None
            time.sleep(0.2)
        trials = exp.list_trial_jobs()
        assert exp.get_status() == "DONE", (exp.get_status(), [(t.status, t.message) for t in trials])
        exp.stop()
        return exp, trials

    yield start
    for exp in started:
        exp.stop()
        if exp.id:
            shutil.rmtree(f"/tmp/nni-{exp.id.lower()}", ignore_errors=True)


def _values(trials):
    return sorted(t.hyperParameters[0].parameters["x"] for t in trials)


def test_kubeflow_experiment(run, code, cluster, nfs):
    ts = {"platform": "kubeflow", "operator": "tf-operator", "storage": {"storageType": "nfs", "server": "127.0.0.1", "path": str(nfs)},
          "worker": {"command": "python3 trial.py", "cpuNumber": 1, "memorySize": "512m"}}
    exp, trials = run(ts, code)
    assert len(trials) == 4 and {t.status for t in trials} == {"SUCCEEDED"} and _values(trials) == [1, 2, 3, 4]
    assert sorted(float(t.finalMetricData[0].data) for t in trials) == [1, 2, 3, 4]
    assert all(t.platform in (None, "", "kubeflow") for t in trials)
    assert len(cluster.created_of("tfjobs")) == 2  # reuse mode: two environments for trialConcurrency 2
    assert cluster.list("tfjobs") == [] and cluster.list("pods") == []  # deleted when the experiment stopped


def test_frameworkcontroller_experiment_survives_an_eviction(run, code, cluster, nfs):
    ts = {"platform": "frameworkcontroller", "storage": {"storageType": "nfs", "server": "127.0.0.1", "path": str(nfs)},
          "taskRoles": [{"name": "worker", "command": "python3 trial.py", "cpuNumber": 1, "memorySize": "512m"}]}
    evicted = []

    def evict_one(exp):
        running = [t for t in exp.list_trial_jobs() if t.status == "RUNNING"]
        pods = [p for p in cluster.list("pods") if p["status"].get("phase") == "Running"]
        if running and pods:
            cluster.evict_pod(pods[0]["metadata"]["name"], "The node was low on resource: memory.")
            evicted.append(pods[0]["metadata"]["name"])
            return True
        return False

    exp, trials = run(ts, code, sleep=1.5, during=evict_one, trialConcurrency=1)
    lost = [t for t in trials if t.status == "SYS_CANCELED"]
    counted = [t for t in trials if t.status != "SYS_CANCELED"]
    assert evicted and len(lost) == 1 and evicted[0] in lost[0].message and "evicted" in lost[0].message
    assert len(counted) == 4 and {t.status for t in counted} == {"SUCCEEDED"}
    assert _values(counted) == [1, 2, 3, 4]  # the lost trial's parameters ran again
    assert cluster.list("frameworks") == [] and cluster.list("pods") == []


def test_adl_experiment(run, code, cluster):
    ts = {"platform": "adl", "dockerImage": "digits:latest", "codeDirectory": ".", "cpuNumber": 1}
    exp, trials = run(ts, code, nniManagerIp="127.0.0.1")
    assert len(trials) == 4 and {t.status for t in trials} == {"SUCCEEDED"}
    assert len(cluster.created_of("adaptdljobs")) == 4  # one AdaptDLJob per trial
    assert cluster.list("adaptdljobs") == [] and cluster.list("pods") == []


def test_hybrid_local_and_kubeflow(run, code, cluster, nfs):
    kubeflow = {"platform": "kubeflow", "operator": "pytorch-operator",
                "storage": {"storageType": "nfs", "server": "127.0.0.1", "path": str(nfs)},
                "master": {"command": "python3 trial.py", "cpuNumber": 1, "memorySize": "512m"}}
    exp, trials = run([{"platform": "local"}, kubeflow], code, sleep=0.5)
    assert len(trials) == 4 and {t.status for t in trials} == {"SUCCEEDED"}
    assert {t.platform for t in trials} == {"local", "kubeflow"}
    assert cluster.created_of("pytorchjobs") and cluster.list("pytorchjobs") == []
