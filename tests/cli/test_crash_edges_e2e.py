"""Crash edges of a real experiment driven through nnictl (issue 11, items 8 and 9):

* kill -9 of the manager stops its running trials within seconds (the local platform's
  lifeline); ``nnictl resume`` records them as SYS_CANCELED "manager died", keeps the metrics
  they reported, does not count them toward ``maxTrialNumber`` and runs their parameters again;
* a dispatcher frozen with SIGSTOP is reported in check-status ``warnings`` and the manager log
  after ``NNI_DISPATCHER_TIMEOUT`` seconds while the experiment stays RUNNING; the report clears
  after SIGCONT; a dispatcher killed with SIGKILL puts the experiment in ERROR, and the trials
  ``nnictl stop`` then cancels carry the reason, do not count and are re-run by resume.
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from nni.runtime.rest_api import RestClient
from nni.server.testing import experiment_id_of, wait_until
from nni.testing.processes import process_running

pytestmark = pytest.mark.slow

# Trials from sequence id `hold_from` on block until the file `release` exists in the code folder.
TRIAL = """\
import os, time, nni
p = nni.get_next_parameter()
seq = nni.get_sequence_id()
open("pid-%d" % seq, "w").write(str(os.getpid()))
nni.report_intermediate_result(seq + 0.5)
while seq >= {hold_from} and not os.path.exists("release"):
    time.sleep(0.1)
nni.report_final_result(seq)
"""




def _children(pid: int) -> list[tuple[int, str]]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                out.append((int(stat.parent.name), cmd))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _dispatcher_pid(manager_pid: int) -> int:
    found = [p for p, cmd in _children(manager_pid) if "--command_fds" in cmd]
    assert len(found) == 1, _children(manager_pid)
    return found[0]


def _trials(port: int) -> dict[int, dict]:
    return {t["sequenceId"]: t for t in RestClient(port, timeout=10).call("list_trial_jobs")}


def _status(port: int) -> dict:
    return RestClient(port, timeout=10).call("get_status")


@pytest.fixture(autouse=True)
def _same_root(nnictl, monkeypatch):
    # RestClient finds the manager's access token in the experiments folder nnictl uses
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(nnictl.root))


def test_kill_9_of_the_manager_stops_trials_and_resume_reruns_them(nnictl, write_config, free_port, tmp_path):
    config = write_config(TRIAL.format(hold_from=0), trialConcurrency=2, maxTrialNumber=3)
    code = tmp_path / "code"
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    (manager,) = nnictl.managers()
    wait_until(lambda: len([t for t in _trials(free_port).values() if t["status"] == "RUNNING"]) == 2, 60, "2 running trials")
    pids = wait_until(lambda: [int((code / f"pid-{s}").read_text()) for s in (0, 1) if (code / f"pid-{s}").exists()]
                      if all((code / f"pid-{s}").exists() for s in (0, 1)) else None, 30, "the trials' pids")
    wait_until(lambda: len(RestClient(free_port).call("get_metric_data")) == 2, 30, "the intermediate results")
    before = {t["trialJobId"]: t for t in _trials(free_port).values()}

    killed = time.monotonic()
    os.kill(manager, signal.SIGKILL)
    wait_until(lambda: not any(process_running(p) for p in pids), 10, "the trials to stop after kill -9 of their manager", interval=0.05)
    assert time.monotonic() - killed < 6

    (code / "release").write_text("")
    nnictl("resume", eid, "--port", str(free_port))
    wait_until(lambda: _status(free_port)["status"] == "DONE", 90, "DONE after resume")
    trials = json.loads(nnictl("trial", "ls", eid).stdout)
    by_id = {t["trialJobId"]: t for t in trials}
    for tid in before:  # the interrupted trials say why, keep their metric, and were not counted
        t = by_id[tid]
        assert t["status"] == "SYS_CANCELED", t
        assert t["message"].startswith("manager died: the trial was stopped when its manager exited unexpectedly"), t
        assert "re-queued" in t["message"]
        metrics = RestClient(free_port).call("get_trial_metric_data", job_id=tid)
        assert [(m["type"], json.loads(m["data"])) for m in metrics] == [("PERIODICAL", t["sequenceId"] + 0.5)]
    succeeded = [t for t in trials if t["status"] == "SUCCEEDED"]
    assert len(succeeded) == 3 and len(trials) == 5  # maxTrialNumber: the 2 re-runs replace, not add
    params = lambda t: json.loads(t["hyperParameters"][0])["parameters"]  # noqa: E731
    rerun = [params(t) for t in succeeded]
    for tid in before:
        assert params(by_id[tid]) in rerun  # their parameters were run again
    nnictl("stop", eid)


def test_dispatcher_stopped_then_continued_then_killed(nnictl, write_config, free_port, tmp_path):
    nnictl.env["NNI_DISPATCHER_TIMEOUT"] = "1.5"
    config = write_config(TRIAL.format(hold_from=2), trialConcurrency=1, maxTrialNumber=4)
    code = tmp_path / "code"
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    (manager,) = nnictl.managers()
    dispatcher = _dispatcher_pid(manager)
    wait_until(lambda: _trials(free_port).get(2, {}).get("status") == "RUNNING", 60, "trial 2 running")
    assert "warnings" not in _status(free_port)

    # frozen: reported after the timeout, the experiment stays RUNNING, the REST API answers
    os.kill(dispatcher, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        status = wait_until(lambda: (lambda s: s if s.get("warnings") else None)(_status(free_port)), 20, "the warning")
        assert time.monotonic() - frozen >= 1.5
        assert status["status"] == "RUNNING" and status["errors"] == []
        (warning,) = status["warnings"]
        assert f"the dispatcher (tuner/assessor, pid {dispatcher}) has not read its commands for more than 1.5 s" in warning
        assert "Dispatcher not answering" in nnictl("log", "stdout", eid).stdout
    finally:
        os.kill(dispatcher, signal.SIGCONT)
    wait_until(lambda: "warnings" not in _status(free_port), 20, "the warning to clear")
    assert _status(free_port)["status"] == "RUNNING"
    assert "Dispatcher answers again" in nnictl("log", "stdout", eid).stdout

    # killed: ERROR; trial 2 keeps running; `nnictl stop` cancels it with the reason, uncounted
    os.kill(dispatcher, signal.SIGKILL)
    wait_until(lambda: _status(free_port)["status"] == "ERROR", 20, "ERROR")
    assert "dispatcher exited unexpectedly" in _status(free_port)["errors"][-1]
    assert _trials(free_port)[2]["status"] == "RUNNING"
    nnictl("stop", eid)
    trials = {t["sequenceId"]: t for t in json.loads(nnictl("trial", "ls", eid).stdout)}
    assert trials[2]["status"] == "SYS_CANCELED"
    assert trials[2]["message"].startswith("dispatcher died (dispatcher exited unexpectedly with code -9")
    assert "not counted toward maxTrialNumber, re-queued by nnictl resume" in trials[2]["message"]

    # resume: the cancelled trial's parameters run again and the budget is still 4 trials
    (code / "release").write_text("")
    nnictl("resume", eid, "--port", str(free_port))
    wait_until(lambda: _status(free_port)["status"] == "DONE", 90, "DONE after resume")
    rest = _trials(free_port)
    assert rest[2]["status"] == "SYS_CANCELED" and rest[2]["message"] == trials[2]["message"]
    assert sorted(t["status"] for t in rest.values()) == ["SUCCEEDED"] * 4 + ["SYS_CANCELED"]
    rerun = [json.loads(t["hyperParameters"][0])["parameters"] for t in rest.values() if t["status"] == "SUCCEEDED"]
    assert json.loads(rest[2]["hyperParameters"][0])["parameters"] in rerun
    nnictl("stop", eid)
