"""The remote platform through ``nnictl create`` against real OpenSSH servers on 127.0.0.1 (issue 13).

Two machines (:mod:`nni.training_services.remote.testing`): one reached with a key (a fake
``nvidia-smi`` there lists 2 GPUs), one with a password. Each test runs a real experiment:
trials spread over both machines, metrics arrive, killing one sshd mid-run lets the experiment
finish on the other with nothing lost, GPU trials go only where GPUs are, a hybrid local +
remote experiment finishes, and the password never appears in what NNI writes or shows.
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
for i in range(3):
    nni.report_intermediate_result(p["x"] * i)
    time.sleep(%(sleep)s)
nni.report_final_result(p["x"])
print("on", os.environ.get("NNI_PLATFORM"), "gpus", repr(os.environ.get("CUDA_VISIBLE_DEVICES")))
"""


@pytest.fixture
def machines(ssh_machines):
    return ssh_machines


def _remote(servers, **fields):
    return {"platform": "remote", "machineList": [s.machine() for s in servers], **fields}


def _status(nnictl, eid):
    return json.loads(nnictl("experiment", "status", eid).stdout)["status"]


def _finish(nnictl, eid, timeout=180):
    wait_until(lambda: _status(nnictl, eid) in ("DONE", "ERROR"), timeout=timeout, what="DONE")
    assert _status(nnictl, eid) == "DONE", nnictl("experiment", "show", eid).stdout
    return json.loads(nnictl("trial", "ls", eid).stdout)


def _trial_dirs(server, eid):
    return list((Path(server.account.home) / "nni-experiments" / eid / "trials").glob("*/.nni"))


def _running_on(server, eid):
    """Trials started on the machine (their folders there) that have not ended yet."""
    return [d.parent.name for d in _trial_dirs(server, eid) if not (d / "state").exists()]


def _finished_on(server, eid):
    return [d.parent.name for d in _trial_dirs(server, eid) if (d / "state").exists()]


def _cleanup_remote(eid, servers):
    for s in servers:
        if s.account is not None:  # the fixture removes the account, its home stays with tmp_path
            shutil.rmtree(Path(s.account.home) / "nni-experiments" / eid, ignore_errors=True)


def test_trials_spread_over_two_machines_and_survive_a_dead_one(nnictl, write_config, free_port, machines, tmp_path):
    key, pw = machines
    config = write_config(TRIAL % {"sleep": 0.3}, trialCommand="python3 trial.py", trialConcurrency=4, maxTrialNumber=12,
                          trainingService=_remote(machines))
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    try:
        # both machines work, then the password machine dies with trials running on it
        def both_busy():
            done = [t for t in rest_get(free_port, "trial-jobs") if t["status"] == "SUCCEEDED"]
            return len(done) >= 2 and _running_on(pw, eid)
        wait_until(both_busy, timeout=120, what="trials on both machines")
        pw.kill()
        trials = _finish(nnictl, eid)
        counted = [t for t in trials if not (t["status"] == "SYS_CANCELED" and "re-queued" in (t.get("message") or ""))]
        assert len(counted) == 12, trials
        # a trial lost after its final result keeps that result (counted, not re-run)
        assert all(t["status"] == "SUCCEEDED" or "final result is kept" in t["message"] for t in counted), [(t["status"], t.get("message")) for t in counted]
        lost = [t for t in trials if t not in counted]
        assert lost and all(pw.name in t["message"] for t in lost), lost
        # every trial reported its metrics, and the re-runs got the lost trials' parameters
        metrics = rest_get(free_port, "metric-data")
        finals = {m["trialJobId"] for m in metrics if m["type"] == "FINAL"}
        assert {t["trialJobId"] for t in counted} <= finals
        lost_params = {json.dumps(t["hyperParameters"], sort_keys=True) for t in lost}
        assert lost_params <= {json.dumps(t["hyperParameters"], sort_keys=True) for t in counted}
        assert _finished_on(key, eid) and _finished_on(pw, eid)  # both machines ran trials to the end
        # output came back into the local trial folders
        some = counted[0]
        assert "on remote" in (Path(nnictl.root) / eid / "trials" / some["trialJobId"] / "trial.log").read_text()
        # the password is shown nowhere and stored nowhere
        secret = pw.account.password
        assert secret not in nnictl("experiment", "show", eid).stdout
        assert secret not in json.dumps(rest_get(free_port, "experiment"))
        for path in (Path(nnictl.root) / eid).rglob("*"):
            if path.is_file() and path.name != "secrets.json":
                assert secret.encode() not in path.read_bytes(), path
    finally:
        nnictl("stop", eid, ok=False)
        _cleanup_remote(eid, machines)


def test_gpu_trials_go_to_the_machine_with_gpus(nnictl, write_config, free_port, machines):
    key, pw = machines
    config = write_config(TRIAL % {"sleep": 0.1}, trialCommand="python3 trial.py", trialConcurrency=3, maxTrialNumber=4,
                          trialGpuNumber=1, trainingService=_remote(machines))
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    try:
        trials = _finish(nnictl, eid)
        assert len(trials) == 4 and {t["status"] for t in trials} == {"SUCCEEDED"}
        assert len(_finished_on(key, eid)) == 4 and not _finished_on(pw, eid)
        logs = [(Path(nnictl.root) / eid / "trials" / t["trialJobId"] / "trial.log").read_text() for t in trials]
        assert all("gpus '0'" in log or "gpus '1'" in log for log in logs), logs
    finally:
        nnictl("stop", eid, ok=False)
        _cleanup_remote(eid, machines)


def test_hybrid_local_and_remote(nnictl, write_config, free_port, machines):
    key, _ = machines
    config = write_config(TRIAL % {"sleep": 0.1}, trialCommand="python3 trial.py", trialConcurrency=2, maxTrialNumber=6,
                          trainingService=[_remote([key]), {"platform": "local"}])
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    try:
        trials = _finish(nnictl, eid)
        assert len(trials) == 6 and {t["status"] for t in trials} == {"SUCCEEDED"}
        assert {t["platform"] for t in trials} == {"remote", "local"}
        assert _finished_on(key, eid)
        # nnictl experiment delete also removes the experiment's folder on the machines
        nnictl("stop", eid)
        nnictl("experiment", "delete", eid, "--yes")
        assert not (Path(key.account.home) / "nni-experiments" / eid).exists()
        # nnictl platform clean removes what stopped experiments left there
        leftover = Path(key.account.home) / "nni-experiments" / "oldexp01" / "trials"
        leftover.mkdir(parents=True)
        out = nnictl("platform", "clean", "--config", str(config)).stdout
        assert not leftover.parent.exists() and f"{key.name}: removed 1 experiment folder(s)" in out, out
    finally:
        nnictl("stop", eid, ok=False)
        _cleanup_remote(eid, machines)


def test_unknown_host_key_and_wrong_password_fail_before_any_trial(nnictl, write_config, free_port, machines):
    key, pw = machines
    known = Path(nnictl.env["NNI_CONFIG_DIR"]) / "known_hosts"
    known.write_text(pw.known_hosts_line())  # the key machine's host key is unknown now
    config = write_config(TRIAL % {"sleep": 0}, trialCommand="python3 trial.py", trainingService=_remote([key]))
    created = nnictl("create", "--config", str(config), "--port", str(free_port), ok=False)
    assert created.returncode == 1
    error = created.stderr.strip().splitlines()
    assert len(error) == 1 and key.name in error[0] and "unknown host key" in error[0] and "NNI_SSH_ACCEPT_NEW_HOST_KEYS" in error[0]
    assert rest_get(free_port, "trial-jobs") == []
    nnictl("stop", experiment_id_of(created.stdout), ok=False)

    wrong = dict(pw.machine(), password="not-" + pw.account.password)
    config = write_config(None, name="wrong.yml", trialCommand="python3 trial.py", trainingService={"platform": "remote", "machineList": [wrong]})
    created = nnictl("create", "--config", str(config), "--port", str(free_port), ok=False)
    error = created.stderr.strip().splitlines()
    assert created.returncode == 1 and len(error) == 1 and pw.name in error[0], created.stderr
    assert "not-" + pw.account.password not in created.stderr + created.stdout
    nnictl("stop", experiment_id_of(created.stdout), ok=False)
