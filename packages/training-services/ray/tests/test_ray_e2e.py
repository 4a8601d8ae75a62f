"""A real hybrid experiment (``nnictl create``, real manager, real trials) on ``[local, ray]``:
the Ray part starts its own local cluster on 127.0.0.1; trials complete on both platforms and
report metrics; a Ray worker killed under a running trial re-queues that trial; ``nnictl stop``
leaves no process of the experiment (driver, cluster, workers, runners, trials) behind."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray")
server_testing = pytest.importorskip("nni.server.testing")  # nni-webui-server

pytestmark = pytest.mark.slow

NNICTL = str(Path(sys.executable).parent / "nnictl")

# The first trial that runs on Ray claims the marker and sleeps until its worker is killed;
# every other one (and the claimed trial's re-run) finishes in a second.
TRIAL = """\
import os, time, nni
p = nni.get_next_parameter()
if os.environ.get("NNI_PLATFORM") == "ray":
    try:
        fd = os.open("claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        fd = None
    if fd is not None:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        time.sleep(300)
time.sleep(1)  # long enough for the hybrid service to share trials between the platforms
nni.report_intermediate_result(p["x"])
nni.report_final_result(p["x"] * 10)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _procs_with_env(marker: str) -> dict[int, str]:
    """pid -> cmdline of every live process whose environment contains ``marker``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker.encode() not in f.read():
                    continue
            with open(f"/proc/{entry}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def test_hybrid_local_and_ray_experiment_requeues_a_killed_worker_and_stops_clean(tmp_path, monkeypatch):
    root = tmp_path / "exps"
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(root))  # where rest_get finds the manager's token
    (tmp_path / "home").mkdir()
    env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(root), NNI_CONFIG_DIR=str(tmp_path / "cfg"), HOME=str(tmp_path / "home"))
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(TRIAL)
    port = _free_port()
    config = {
        "searchSpace": {"x": {"_type": "choice", "_value": list(range(6))}},
        "trialCommand": f"{sys.executable} trial.py",
        "trialCodeDirectory": str(code),
        # 4 at once: the hybrid service gives Ray (capacity 2) the 2nd and the 4th trial at the
        # start, so one of them sleeps (and is killed) and the other succeeds on Ray
        "trialConcurrency": 4,
        "maxTrialNumber": 6,
        "tuner": {"name": "GridSearch"},
        "trainingService": [{"platform": "local"}, {"platform": "ray", "localClusterCpus": 2, "numCpusPerTrial": 1}],
    }
    (tmp_path / "config.yml").write_text(yaml.safe_dump(config))

    def nnictl(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([NNICTL, *args], capture_output=True, text=True, env=env, timeout=180)
        assert proc.returncode == 0, f"nnictl {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc

    out = nnictl("create", "--config", str(tmp_path / "config.yml"), "--port", str(port)).stdout
    eid = re.search(r"The experiment id is (\w+)", out).group(1)
    get = server_testing.rest_get
    wait = server_testing.wait_until
    stopped = False
    try:
        # the claimed Ray trial is running: kill the Ray worker that runs its runner (the runner
        # runs inside the worker, whose title names the runner task)
        claimed = code / "claimed"
        wait(lambda: claimed.exists() and claimed.read_text(), timeout=240, what="a trial running on Ray")
        pid = int(claimed.read_text())
        while pid > 1 and "ray::" not in _cmdline(pid) and "default_worker" not in _cmdline(pid):
            pid = _parent(pid)
        worker = pid
        assert f"nni-runner-{eid}-" in _cmdline(worker), _cmdline(worker)
        os.kill(worker, signal.SIGKILL)

        wait(lambda: get(port, "check-status")["status"] == "DONE", timeout=240, what="the experiment to finish")
        jobs = get(port, "trial-jobs")
        by_status: dict[str, list] = {}
        for j in jobs:
            by_status.setdefault(j["status"], []).append(j)
        lost = by_status.get("SYS_CANCELED", [])
        assert len(lost) == 1, [(j["trialJobId"], j["status"], j.get("message")) for j in jobs]
        assert lost[0].get("platform") in (None, "ray") and "lost" in (lost[0].get("message") or lost[0].get("errorMessage") or json.dumps(lost[0]))
        done = by_status.get("SUCCEEDED", [])
        summary = [(j["trialJobId"], j["status"], j.get("platform"), j.get("message") or j.get("errorMessage")) for j in jobs]
        assert len(done) == 6, summary  # the lost trial did not count toward maxTrialNumber
        params = lambda j: json.loads(j["hyperParameters"][0])["parameters"]["x"]  # noqa: E731
        assert sorted(params(j) for j in done) == list(range(6))  # its parameters ran again
        assert params(lost[0]) in [params(j) for j in done]
        assert {j["platform"] for j in done} == {"local", "ray"}  # the web UI's platform column
        for j in done:
            assert [json.loads(m["data"]) for m in j["finalMetricData"]] == [params(j) * 10]

        running = _procs_with_env(str(root))
        assert any("training_services/ray/driver.py" in c for c in running.values()), running
        assert any("raylet" in c for c in running.values()), running
        nnictl("stop", eid)
        stopped = True
        wait(lambda: not _procs_with_env(str(root)), timeout=60, what="no process of the experiment left")
    finally:
        if not stopped:
            subprocess.run([NNICTL, "stop", eid], capture_output=True, env=env, timeout=180)
        for pid in _procs_with_env(str(root)):  # never leave a cluster behind, even when failing
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
