"""``sharedStorage`` on the remote platform through ``nnictl create`` against real OpenSSH servers (issue 13, item 7).

The storage is a folder "mounted by the user" (``localMounted: usermount``) that the two sshd
machines (this host) see at the same path: the code is copied into it once, trials of both
machines work in ``<storage>/nni/<id>/trials/<trial id>`` and nothing is uploaded per machine or
copied back. A real NFS server cannot run in this container (see nni-ts-remote's README).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nni.server.testing import experiment_id_of, rest_get, wait_until
from nni.training_services.remote.testing import sshd_unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sshd_unavailable_reason() is not None, reason=str(sshd_unavailable_reason()))]

TRIAL = """\
import os, time, nni
p = nni.get_next_parameter()
nni.report_intermediate_result(p["x"])
time.sleep(0.2)
nni.report_final_result(p["x"])
print("on", os.environ.get("NNI_PLATFORM"), "in", os.getcwd())
print("home", os.environ.get("HOME"))
"""


@pytest.fixture
def machines(ssh_machines):
    return ssh_machines


def _status(nnictl, eid):
    return json.loads(nnictl("experiment", "status", eid).stdout)["status"]


def test_usermount_shared_storage_experiment(nnictl, write_config, free_port, machines, tmp_path):
    shared = tmp_path / "shared-storage"
    shared.mkdir()
    storage = {"storageType": "NFS", "localMountPoint": str(shared), "remoteMountPoint": str(shared),
               "localMounted": "usermount", "nfsServer": "nfs.example", "exportedDirectory": "/export/nni"}
    config = write_config(TRIAL, trialCommand="python3 trial.py", trialConcurrency=4, maxTrialNumber=8,
                          trainingService={"platform": "remote", "machineList": [s.machine() for s in machines]},
                          sharedStorage=storage)
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    try:
        wait_until(lambda: _status(nnictl, eid) in ("DONE", "ERROR"), timeout=180, what="DONE")
        assert _status(nnictl, eid) == "DONE", nnictl("experiment", "show", eid).stdout
        trials = json.loads(nnictl("trial", "ls", eid).stdout)
        assert len(trials) == 8 and {t["status"] for t in trials} == {"SUCCEEDED"}, trials
        finals = {m["trialJobId"] for m in rest_get(free_port, "metric-data") if m["type"] == "FINAL"}
        assert finals == {t["trialJobId"] for t in trials}
        root = shared / "nni" / eid
        assert (root / "code" / "trial.py").is_file()
        for t in trials:
            out = (root / "trials" / t["trialJobId"] / "stdout").read_text()
            assert f"on remote in {root / 'code'}" in out, out
            # nnictl and the web UI read the trial's folder in the experiment folder: it has the output too
            assert out in (Path(nnictl.root) / eid / "trials" / t["trialJobId"] / "stdout").read_text()
        for server in machines:  # trials ran on both machines, none of them got its own copy of the code
            exp = Path(server.account.home) / "nni-experiments" / eid
            assert not list(exp.glob("envs/*/code"))
        homes = {line for t in trials for line in (root / "trials" / t["trialJobId"] / "stdout").read_text().splitlines()
                 if line.startswith("home ")}
        assert homes == {f"home {s.account.home}" for s in machines}, homes  # both machines ran trials
    finally:
        nnictl("stop", eid, ok=False)
        for s in machines:
            if s.account is not None:
                shutil.rmtree(Path(s.account.home) / "nni-experiments" / eid, ignore_errors=True)
