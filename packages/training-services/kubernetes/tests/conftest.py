"""A stand-in cluster per test (:mod:`nni.training_services.kubernetes.testing`), the trial code,
and helpers to run a training service against it in-process."""
from __future__ import annotations

import asyncio
import json
import secrets
import shutil
from pathlib import Path

import pytest

from nni.experiment.config import ExperimentConfig
from nni.runtime.training_service import ExperimentContext, StateEvent, TrialSpec
from nni.training_services.kubernetes.testing import StandInCluster

TRIAL = """\
import os, time, nni
p = nni.get_next_parameter()
nni.report_intermediate_result(p["x"] / 2)
time.sleep(p.get("sleep", 0))
nni.report_final_result(p["x"])
print("platform", os.environ.get("NNI_PLATFORM"), "pod", os.environ.get("NNI_POD_NAME"), "cwd", os.getcwd())
"""


@pytest.fixture
def code(tmp_path):
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "trial.py").write_text(TRIAL)
    return folder


@pytest.fixture
def cluster(tmp_path, code):
    """The stand-in; the image ``digits:latest`` holds the trial code (AdaptDL's codeDirectory)."""
    c = StandInCluster(tmp_path / "cluster", images={"digits:latest": code}).start()
    yield c
    c.stop()


@pytest.fixture
def kubeconfig(cluster, tmp_path, monkeypatch):
    path = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def nfs(tmp_path):
    """An 'NFS export' on this machine (server 127.0.0.1): the service uses it in place."""
    folder = tmp_path / "nfs-export"
    folder.mkdir()
    return folder


@pytest.fixture
def experiment_id():
    eid = "k" + secrets.token_hex(4)
    yield eid
    shutil.rmtree(f"/tmp/nni-{eid}", ignore_errors=True)  # AdaptDL pods' ephemeral folder (local in the stand-in)


def canonical_ts(ts: dict, code: Path, **top) -> dict:
    """The canonical trainingService mapping the manager would pass."""
    cfg = {"trialCommand": "python3 trial.py", "trialCodeDirectory": str(code), "trialConcurrency": 1,
           "searchSpace": {"x": {"_type": "choice", "_value": [1]}}, "tuner": {"name": "Random"}, "trainingService": ts, **top}
    return ExperimentConfig.from_dict(cfg).to_canonical_dict(check_algorithms=False)["trainingService"][0]


def context(tmp_path, code, experiment_id, **kw) -> ExperimentContext:
    return ExperimentContext(experiment_id, str(tmp_path / "exp" / experiment_id), "python3 trial.py", str(code), **kw)


def param(i, x=None, sleep=0.0) -> str:
    return json.dumps({"parameter_id": i, "parameter_source": "algorithm", "parameters": {"x": i if x is None else x, "sleep": sleep}})


async def collect(ts, until, timeout=60.0):
    """Events of ``ts`` until ``until(states, metrics)`` is true; states: trial -> [StateEvent]."""
    states: dict = {}
    metrics: dict = {}

    async def run():
        async for ev in ts.events():
            if isinstance(ev, StateEvent):
                states.setdefault(ev.trial_id, []).append(ev)
            else:
                metrics.setdefault(ev.trial_id, []).append(ev.record)
            if until(states, metrics):
                return

    await asyncio.wait_for(run(), timeout)
    return states, metrics


def finals(states) -> dict:
    return {t: evs[-1] for t, evs in states.items() if evs[-1].status.is_final}


@pytest.fixture
def helpers():
    class H:
        pass

    h = H()
    h.canonical_ts, h.context, h.param, h.collect, h.finals, h.TrialSpec = canonical_ts, context, param, collect, finals, TrialSpec
    return h
