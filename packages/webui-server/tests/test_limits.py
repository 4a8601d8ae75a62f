"""Issue 11 items 1-3 on a real manager: every update is validated by the same code, a bad
stored experiment stays viewable and resumable, a huge ``trialConcurrency`` keeps requests and
memory bounded, and a search space far over the command-line limit starts, updates, resumes."""
from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nni.runtime.rest_api import RestClient, RestError
from nni.server.testing import free_port, wait_until

pytestmark = pytest.mark.slow

TRIAL = "import nni\np = nni.get_next_parameter()\nnni.report_final_result(0.5)\n"
NNICTL = str(Path(sys.executable).parent / "nnictl")


def _config(tmp_path, **fields) -> dict:
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / "trial.py").write_text(TRIAL)
    config = {
        "trialCommand": f"{sys.executable} trial.py",
        "trialCodeDirectory": str(code),
        "trialConcurrency": 1,
        "maxTrialNumber": 1,
        "searchSpace": {"x": {"_type": "uniform", "_value": [0, 1]}},
        "tuner": {"name": "Random"},
        "trainingService": {"platform": "local"},
        "experimentWorkingDirectory": str(tmp_path / "exps"),
    }
    config.update(fields)
    from nni.experiment.config import ExperimentConfig

    return ExperimentConfig(**config).to_canonical_dict()


class Manager:
    """``python -m nni.server`` in a subprocess, talked to through RestClient."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.port = free_port()
        self.log = tmp_path / f"manager-{self.port}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "nni.server", "--port", str(self.port), *args], stdout=log, stderr=log)
        self.client = RestClient(self.port)
        wait_until(self._answers, 60, f"manager on port {self.port}")

    def _answers(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            self.client.call("get_status")
            return True
        except ConnectionError:
            return False

    def status(self) -> dict:
        assert self.proc.poll() is None, self.log.read_text()
        return self.client.call("get_status")

    def wait_status(self, *wanted: str, timeout: float = 60) -> dict:
        return wait_until(lambda: (lambda s: s if s["status"] in wanted else None)(self.status()), timeout, f"status in {wanted}")

    def trials(self) -> list[dict]:
        return self.client.call("list_trial_jobs")

    def stop(self) -> None:
        try:
            self.client.call("stop_experiment")
            assert self.proc.wait(60) == 0, self.log.read_text()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture()
def exps(tmp_path, monkeypatch):
    monkeypatch.setenv("NNI_EXPERIMENTS_DIR", str(tmp_path / "exps"))
    return tmp_path / "exps"


def _create(tmp_path, exp_id: str, *extra: str, **fields) -> Manager:
    path = tmp_path / f"{exp_id}.json"
    path.write_text(json.dumps(_config(tmp_path, **fields)))
    return Manager(tmp_path, "--config", str(path), "--id", exp_id, *extra)


def _update(client: RestClient, update_type: str, key: str, value) -> None:
    client.call("update_experiment_profile", body={"params": {key: value}}, query={"update_type": update_type})


def _rest_error(fn, *args) -> str:
    with pytest.raises(RestError) as info:
        fn(*args)
    assert info.value.status == 400, str(info.value)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


def _nnictl(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([NNICTL, *args], capture_output=True, text=True, cwd=tmp_path, timeout=60)


# ----- item 1 + 2: every update path is validated, absurd values are refused -----


def test_updates_are_validated_on_every_path(tmp_path, exps):
    from nni.experiment import Experiment

    m = _create(tmp_path, "limits01")
    try:
        m.wait_status("DONE")
        exp = Experiment.connect(m.port)
        # search space: Python API, REST with the web UI's JSON string, nnictl
        msg = _rest_error(exp.update_search_space, {"x": 3})
        assert msg.startswith("searchSpace.x: "), msg
        msg = _rest_error(_update, m.client, "SEARCH_SPACE", "searchSpace", json.dumps({"x": {"_type": "uniform", "_value": [1, 0]}}))
        assert msg.startswith("searchSpace.x: ") and "uniform" in msg, msg
        (tmp_path / "bad_space.json").write_text('{"x": {"_type": "choice", "_value": 5}}')
        cli = _nnictl(tmp_path, "update", "searchspace", "limits01", "--filename", str(tmp_path / "bad_space.json"))
        assert cli.returncode != 0 and "--filename: parameter 'x'" in cli.stderr, cli.stderr + cli.stdout
        assert len(cli.stderr.strip().splitlines()) == 1, cli.stderr

        # budgets: refused with the field and the limit (by the REST schema or the engine's
        # check, which share the limits), nothing stored
        msg = _rest_error(exp.update_trial_concurrency, 10**10)
        assert "trialConcurrency" in msg and msg.endswith("<= 2147483647, got 10000000000"), msg
        msg = _rest_error(exp.update_max_trial_number, 1e30)
        assert "maxTrialNum" in msg and ("2147483647" in msg or "integer" in msg), msg
        msg = _rest_error(_update, m.client, "MAX_TRIAL_NUM", "maxTrialNum", 2**40)
        assert "maxTrialNum" in msg and "2147483647" in msg, msg
        msg = _rest_error(exp.update_max_experiment_duration, 1e20)
        assert "maxE" in msg and ("36500d (100 years)" in msg or "3153600000" in msg), msg
        msg = _rest_error(exp.update_max_experiment_duration, "1000000d")
        assert "maxE" in msg and ("36500d (100 years)" in msg or "3153600000" in msg), msg
        cli = _nnictl(tmp_path, "update", "concurrency", "limits01", "--value", str(10**10))
        assert cli.returncode != 0, cli.stdout
        assert cli.stderr.strip().endswith("--value: expected an integer >= 1 and <= 2147483647, got 10000000000"), cli.stderr
        cli = _nnictl(tmp_path, "update", "trialnum", "limits01", "--value", str(2**40))
        assert cli.returncode != 0 and "--value: expected an integer >= 1 and <= 2147483647" in cli.stderr, cli.stderr

        # nothing above reached the store or the dispatcher: the experiment is as it was
        params = exp.get_experiment_profile()["params"]
        assert json.loads(params["searchSpace"]) == {"x": {"_type": "uniform", "_value": [0, 1]}}
        assert (params["trialConcurrency"], params["maxTrialNum"]) == (1, 1)
        assert m.status()["status"] == "DONE"
        exp.update_trial_concurrency(10**9)  # large is allowed: requests stay bounded (below)
        assert exp.get_experiment_profile()["params"]["trialConcurrency"] == 10**9
    finally:
        m.stop()


# ----- item 1: a stored experiment with a bad part stays viewable and resumable -----


def _corrupt(exps: Path, exp_id: str, **changes) -> None:
    conn = sqlite3.connect(exps / exp_id / "db" / "nni.sqlite")
    config = json.loads(conn.execute("SELECT config FROM experiment_config").fetchone()[0])
    config.update(changes)
    conn.execute("UPDATE experiment_config SET config = ?", (json.dumps(config),))
    conn.commit()
    conn.close()


def test_bad_stored_state_is_viewable_and_resumable(tmp_path, exps):
    m = _create(tmp_path, "corrupt1")
    m.wait_status("DONE")
    m.stop()
    _corrupt(exps, "corrupt1", searchSpace={"x": 3})  # as an older version could have stored it

    view = Manager(tmp_path, "--view", "corrupt1")
    try:
        assert view.status()["status"] == "VIEWED"
        profile = view.client.call("get_experiment_profile")
        assert json.loads(profile["params"]["searchSpace"]) == {"x": 3}
        assert len(view.trials()) == 1
    finally:
        view.stop()
    assert "stored searchSpace.x: " in (exps / "corrupt1" / "log" / "nnimanager.log").read_text()

    m = Manager(tmp_path, "--resume", "corrupt1")
    try:
        st = m.wait_status("ERROR")
        assert any(e.startswith("searchSpace.x: ") and "nnictl update searchspace" in e for e in st["errors"]), st
        assert m.proc.poll() is None  # reported, not fatal
        # fixing the space resumes the run where it was
        _update(m.client, "SEARCH_SPACE", "searchSpace", {"x": {"_type": "choice", "_value": [7]}})
        _update(m.client, "MAX_TRIAL_NUM", "maxTrialNum", 2)
        m.wait_status("DONE")
        trials = m.trials()
        assert [t["status"] for t in trials] == ["SUCCEEDED", "SUCCEEDED"]
        assert json.loads(trials[-1]["hyperParameters"][0])["parameters"] == {"x": 7}
    finally:
        m.stop()

    # an algorithm that is no longer installed: resume reports it, the manager and data stay up
    _corrupt(exps, "corrupt1", tuner={"name": "NoSuchTuner"})
    m = Manager(tmp_path, "--resume", "corrupt1")
    try:
        st = m.wait_status("ERROR")
        assert any("NoSuchTuner" in e for e in st["errors"]), st
        assert len(m.trials()) == 2
    finally:
        m.stop()


# ----- item 2: trialConcurrency 10**9 -----


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_huge_concurrency_is_bounded(tmp_path, exps):
    from nni.server.scheduler import REQUEST_BATCH

    m = _create(tmp_path, "bigconc1", "--debug", trialConcurrency=10**9, maxTrialNumber=120, trialCommand="true")
    log = exps / "bigconc1" / "log" / "nnimanager.log"
    try:
        # the first request is small at once (before: GE 120 here, GE 10**9 without a budget)
        first = wait_until(lambda: re.search(r"-> dispatcher GE (\d+)", log.read_text()), 30, "the first GE")
        assert int(first.group(1)) <= REQUEST_BATCH
        m.wait_status("DONE", timeout=120)
        text = log.read_text()
        dispatcher_pid = int(re.search(r"Dispatcher started(?: early)?, pid (\d+)", text).group(1))
        assert _rss_mb(m.proc.pid) < 300 and _rss_mb(dispatcher_pid) < 300
        asked = [int(n) for n in re.findall(r"-> dispatcher GE (\d+)", text)]
        assert max(asked) <= REQUEST_BATCH and sum(asked) == 120, asked
        trials = m.trials()
        assert len(trials) == 120 and {t["status"] for t in trials} == {"SUCCEEDED"}
    finally:
        m.stop()


# ----- item 3: search spaces far over the command-line limit -----


def _big_space(prefix: str, size: int) -> dict:
    n = max(1, size // 1000)
    return {"x": {"_type": "choice", "_value": [f"{prefix}{i:09d}" + "." * 988 for i in range(n)]}}


@pytest.mark.parametrize("size", [1_000_000, pytest.param(49_000_000, id="49MB")])
def test_large_search_space_starts_updates_resumes(tmp_path, exps, size):
    from nni.experiment import Experiment

    m = _create(tmp_path, "bigspace", searchSpace=_big_space("a", size))
    try:
        m.wait_status("DONE")
        assert json.loads(m.trials()[0]["hyperParameters"][0])["parameters"]["x"].startswith("a")
        exp = Experiment.connect(m.port)
        exp.update_search_space(_big_space("b", size))
        exp.update_max_trial_number(2)
        m.wait_status("DONE")
        assert json.loads(m.trials()[1]["hyperParameters"][0])["parameters"]["x"].startswith("b")
    finally:
        m.stop()
    params_file = exps / "bigspace" / "log" / "dispatcher_params.json"
    assert params_file.is_file() and params_file.stat().st_size < 10_000  # the space goes through the pipe
    m = Manager(tmp_path, "--resume", "bigspace")
    try:
        m.wait_status("DONE")  # the budget is used up: the dispatcher started with the big space
        _update(m.client, "MAX_TRIAL_NUM", "maxTrialNum", 3)
        m.wait_status("DONE")
        trials = m.trials()
        assert len(trials) == 3 and json.loads(trials[2]["hyperParameters"][0])["parameters"]["x"].startswith("b")
        assert "ERROR" not in (exps / "bigspace" / "log" / "nnimanager.log").read_text()
    finally:
        m.stop()
