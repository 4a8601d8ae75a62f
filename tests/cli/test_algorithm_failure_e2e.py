"""Custom algorithms against real managers through nnictl (NNI v2.5 behaviour):

* a tuner that raises (in ``__init__`` or in ``receive_trial_result``) puts the experiment in
  ERROR with the traceback in check-status, the web UI and ``nnictl log stderr`` while the
  manager keeps serving; ``nnictl create`` reports it with the web UI URL, and after the tuner
  file is fixed ``nnictl stop`` + ``nnictl resume`` finish the experiment;
* trials added by hand (``POST /trial-jobs``) reach only a tuner that called
  ``self._accept_customized_trials()``;
* ``nnictl log stdout|stderr|trial`` show the manager's, the dispatcher's and a trial's output.
"""
from __future__ import annotations

import json
import re
import urllib.request

import pytest

from nni.server.testing import wait_until as _wait, experiment_id_of as _id_of

from nni.runtime.rest_api import RestClient

pytestmark = pytest.mark.slow

TRIAL = """\
import sys, time, nni
p = nni.get_next_parameter()
print("hello from the trial", p)
print("a warning on stderr", file=sys.stderr)
time.sleep(p.get("sleep", 0))
nni.report_final_result(p["x"])
"""

BROKEN_INIT = """\
from nni.tuner import Tuner


class MyTuner(Tuner):
    def __init__(self, optimize_mode="maximize"):
        raise RuntimeError("tuner init exploded")
"""

FIXED = """\
from nni.tuner import Tuner


class MyTuner(Tuner):
    def __init__(self, optimize_mode="maximize"):
        self.optimize_mode = optimize_mode

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, **kwargs):
        return {"x": parameter_id}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        pass
"""

RAISES_ON_RESULT = """\
from nni.tuner import Tuner


class MyTuner(Tuner):
    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, **kwargs):
        return {"x": parameter_id, "sleep": 2 if parameter_id == 0 else 30}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        raise ValueError("tuner exploded on result %s" % value)
"""

RECORDING = """\
import json
from nni.tuner import Tuner


class RecordingTuner(Tuner):
    def __init__(self, record, accept=False):
        self.record = record
        if accept:
            self._accept_customized_trials()  # NNI v2.5's opt-in

    def _write(self, *item):
        with open(self.record, "a") as f:
            f.write(json.dumps(item) + "\\n")

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, **kwargs):
        return {"x": parameter_id, "sleep": 3}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        self._write("result", parameters, value, kwargs.get("customized"))

    def trial_end(self, parameter_id, success, **kwargs):
        self._write("end", parameter_id, success)
"""


def _status(port: int) -> dict:
    return RestClient(port, timeout=10).call("get_status")


def _get(url: str) -> tuple[int, str]:
    from urllib.parse import urlsplit

    from nni.server.testing import auth_headers

    request = urllib.request.Request(url, headers=auth_headers(urlsplit(url).port))
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def _tuner_config(write_config, tmp_path, source, name="config.yml", **fields):
    algos = tmp_path / "algos"
    algos.mkdir(exist_ok=True)
    (algos / "my_tuner.py").write_text(source, encoding="utf-8")
    fields.setdefault("tuner", {"className": "my_tuner.MyTuner", "codeDirectory": str(algos), "classArgs": {"optimize_mode": "maximize"}})
    return write_config(TRIAL, name=name, **fields), algos


def test_tuner_failing_at_start_then_fixed_and_resumed(nnictl, write_config, free_port, tmp_path):
    config, algos = _tuner_config(write_config, tmp_path, BROKEN_INIT, maxTrialNumber=2)
    proc = nnictl("create", "--config", str(config), "--port", str(free_port), ok=False)
    url = f"http://127.0.0.1:{free_port}"
    eid = _id_of(proc.stdout)
    assert proc.returncode == 1 and url in proc.stdout, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"ERROR: experiment {eid} failed to start: RuntimeError: tuner init exploded.") and url in line
    assert f"nnictl resume {eid}" in line

    # the manager and the web UI stay up and show the traceback
    status = _status(free_port)
    assert status["status"] == "ERROR"
    error = status["errors"][-1]
    assert error.splitlines()[0] == "RuntimeError: tuner init exploded"
    assert "Traceback (most recent call last):" in error and 'my_tuner.py", line 6, in __init__' in error
    assert _get(url + "/oview")[0] == 200
    code, dispatcher_log = _get(url + "/logs/dispatcher.log")
    assert code == 200 and "tuner init exploded" in dispatcher_log
    assert json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "ERROR"
    stderr_log = nnictl("log", "stderr", eid).stdout
    assert "Traceback (most recent call last):" in stderr_log and "RuntimeError: tuner init exploded" in stderr_log
    assert "Experiment failed: RuntimeError: tuner init exploded" in nnictl("log", "stdout", eid).stdout

    # fix the tuner, stop, resume: the experiment runs to the end
    (algos / "my_tuner.py").write_text(FIXED, encoding="utf-8")
    nnictl("stop", eid)
    out = nnictl("resume", eid, "--port", str(free_port)).stdout
    assert "Successfully resumed experiment!" in out
    _wait(lambda: _status(free_port)["status"] == "DONE", what="DONE after resume")
    assert _status(free_port)["errors"] == []
    trials = RestClient(free_port).call("list_trial_jobs")
    assert sorted(t["status"] for t in trials) == ["SUCCEEDED", "SUCCEEDED"]
    nnictl("stop", eid)


def test_tuner_raising_on_result_keeps_manager_up_and_logs(nnictl, write_config, free_port, tmp_path):
    config, _ = _tuner_config(write_config, tmp_path, RAISES_ON_RESULT, trialConcurrency=2, maxTrialNumber=2,
                              tuner={"className": "my_tuner.MyTuner", "codeDirectory": str(tmp_path / "algos")})
    created = nnictl("create", "--config", str(config), "--port", str(free_port), ok=False)  # fails 2 s later
    if created.returncode == 0:
        eid = _id_of(created.stdout)
    else:  # a loaded machine: the first result came while create was still watching the start-up
        assert "tuner exploded on result 0" in created.stderr, created.stderr
        eid = re.search(r"experiment (\w+) failed to start", created.stderr).group(1)
    _wait(lambda: json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "ERROR", what="ERROR")
    error = _status(free_port)["errors"][-1]
    assert error.splitlines()[0] == "ValueError: tuner exploded on result 0"
    assert "in receive_trial_result" in error
    assert _get(f"http://127.0.0.1:{free_port}/oview")[0] == 200
    stderr_log = nnictl("log", "stderr", eid).stdout
    assert "in receive_trial_result" in stderr_log and "ValueError: tuner exploded on result 0" in stderr_log
    tail = nnictl("log", "stderr", eid, "--tail", "1").stdout  # the last line of each file, under its name
    assert tail.count("==> ") == 2 and "nnictl_stderr.log <==" in tail and "dispatcher.log <==" in tail

    # the trial still running when the tuner failed is left to finish (not cancelled)
    trials = {t["sequenceId"]: t for t in RestClient(free_port).call("list_trial_jobs")}
    assert trials[0]["status"] == "SUCCEEDED" and trials[1]["status"] == "RUNNING"

    # nnictl log trial: every trial's log path, then one trial's stdout and stderr
    first = trials[0]["trialJobId"]
    listing = nnictl("log", "trial", eid).stdout
    assert f"{first}: " in listing and listing.count("trial.log") == 2
    shown = nnictl("log", "trial", eid, "--trial_id", first).stdout
    assert "hello from the trial {'x': 0, 'sleep': 2}" in shown and "a warning on stderr" in shown
    assert shown.index("hello from the trial") < shown.index("a warning on stderr")
    paths = nnictl("log", "trial", eid, "-T", first, "--path").stdout.split()
    assert [p.rsplit("/", 1)[1] for p in paths] == ["trial.log", "stdout", "stderr"]
    assert "Stop experiment success" in nnictl("stop", eid).stdout
    assert _wait(lambda: nnictl.managers() == [], what="manager exit")


def test_customized_trials_reach_only_a_tuner_that_opts_in(nnictl, write_config, free_port, tmp_path):
    algos = tmp_path / "algos"
    algos.mkdir()
    (algos / "recording_tuner.py").write_text(RECORDING, encoding="utf-8")
    ports = {"default": free_port, "accepts": free_port + 1 if free_port < 65000 else free_port - 1}
    for kind, port in ports.items():
        record = tmp_path / f"{kind}.jsonl"
        tuner = {"className": "recording_tuner.RecordingTuner", "codeDirectory": str(algos),
                 "classArgs": {"record": str(record), "accept": kind == "accepts"}}
        config = write_config(TRIAL, name=f"{kind}.yml", trialConcurrency=1, maxTrialNumber=2, tuner=tuner)
        nnictl("create", "--config", str(config), "--port", str(port))
        # the web UI's "Add trial": POST /trial-jobs while the first trial runs
        RestClient(port).call("add_customized_trial", body={"hyperParameters": {"x": 100, "sleep": 0}})
    for kind, port in ports.items():
        _wait(lambda: _status(port)["status"] == "DONE", what=f"{kind} DONE")
        finals = sorted(json.loads(t["finalMetricData"][-1]["data"]) for t in RestClient(port).call("list_trial_jobs"))
        assert finals == [0, 100]  # the hand-added trial ran in both experiments
    default = [json.loads(line) for line in (tmp_path / "default.jsonl").read_text().splitlines()]
    accepts = [json.loads(line) for line in (tmp_path / "accepts.jsonl").read_text().splitlines()]
    assert [r for r in default if r[0] == "result"] == [["result", {"x": 0, "sleep": 3}, 0, False]]
    assert len([r for r in default if r[0] == "end"]) == 1
    assert ["result", {"x": 100, "sleep": 0}, 100, True] in accepts
    assert len([r for r in accepts if r[0] == "end"]) == 2
    nnictl("stop", "--all")
