"""NNI v2.5 metrics end to end (``nnictl create``, real manager, real trials): a trial may report
any JSON-serializable metric -- lists, dicts without ``default``, numpy scalars and arrays. The
manager stores and serves them, a custom tuner receives them as reported, and a built-in tuner
that needs a scalar says which metric it could not use."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nni.server.testing import rest_get as _get, wait_until as _wait

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("nnictl_registry")]

NNICTL = str(Path(sys.executable).parent / "nnictl")

TRIAL = """\
import nni
import numpy as np
kind = nni.get_next_parameter()["kind"]
nni.report_intermediate_result(np.array([0.1, 0.2]))
nni.report_intermediate_result({"acc": np.float32(0.5)})
final = [[1, 2], {"acc": 0.5, "loss": [0.1]}, np.array([[1.5, 2.5]]), np.float32(0.25)][kind]
nni.report_final_result(final)
"""
# what each kind's final metric is after JSON
EXPECTED = {0: [1, 2], 1: {"acc": 0.5, "loss": [0.1]}, 2: [[1.5, 2.5]], 3: 0.25}

TUNER = """\
import json
from nni.tuner import Tuner

class RecordingTuner(Tuner):
    def __init__(self, out):
        self.out = out

    def update_search_space(self, search_space):
        pass

    def generate_parameters(self, parameter_id, **kwargs):
        return {"kind": parameter_id % 4}

    def receive_trial_result(self, parameter_id, parameters, value, **kwargs):
        with open(self.out, "a") as f:
            f.write(json.dumps({"kind": parameters["kind"], "value": value}) + "\\n")
"""


class _Nnictl:
    def __init__(self, tmp_path: Path):
        (tmp_path / "home").mkdir()
        self.root = tmp_path / "exps"
        self.env = dict(os.environ, NNI_EXPERIMENTS_DIR=str(self.root), NNI_CONFIG_DIR=str(tmp_path / "cfg"),
                        HOME=str(tmp_path / "home"))

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([NNICTL, *args], capture_output=True, text=True, env=self.env, timeout=120)
        assert not ok or proc.returncode == 0, f"nnictl {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc

    def create(self, tmp_path: Path, port: int, ok: bool = True, **config) -> tuple[str, str]:
        path = tmp_path / "config.yml"
        path.write_text(yaml.safe_dump(config))
        proc = self("create", "--config", str(path), "--port", str(port), ok=ok)
        assert "Traceback" not in proc.stdout + proc.stderr.split("show the traceback")[0]
        return re.search(r"The experiment id is (\w+)", proc.stdout).group(1), proc.stdout + proc.stderr

    def status(self, eid: str) -> str:
        return json.loads(self("experiment", "status", eid).stdout)["status"]


def _config(code: Path, tuner: dict, trials: int) -> dict:
    return {
        "searchSpace": {"kind": {"_type": "choice", "_value": [0, 1, 2, 3]}},
        "trialCommand": f"{sys.executable} trial.py",
        "trialCodeDirectory": str(code),
        "trialConcurrency": 2,
        "maxTrialNumber": trials,
        "tuner": tuner,
        "trainingService": {"platform": "local"},
    }


def test_any_json_metric_is_stored_served_and_given_to_a_custom_tuner(tmp_path, free_port):
    nnictl = _Nnictl(tmp_path)
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(TRIAL)
    (code / "recording_tuner.py").write_text(TUNER)
    received = tmp_path / "received.jsonl"
    tuner = {"className": "recording_tuner.RecordingTuner", "codeDirectory": str(code), "classArgs": {"out": str(received)}}
    eid, _ = nnictl.create(tmp_path, free_port, **_config(code, tuner, 4))
    try:
        _wait(lambda: nnictl.status(eid) == "DONE", what="DONE")
        jobs = _get(free_port, "trial-jobs")
        assert len(jobs) == 4 and {j["status"] for j in jobs} == {"SUCCEEDED"}, jobs
        for job in jobs:
            kind = json.loads(job["hyperParameters"][0])["parameters"]["kind"]
            assert [json.loads(m["data"]) for m in job["finalMetricData"]] == [EXPECTED[kind]]
            metrics = _get(free_port, f"metric-data/{job['trialJobId']}")
            assert [(m["type"], json.loads(m["data"])) for m in metrics] == [
                ("PERIODICAL", [0.1, 0.2]), ("PERIODICAL", {"acc": 0.5}), ("FINAL", EXPECTED[kind])]
        # the custom tuner got each final metric as the trial reported it
        got = sorted((r["kind"], json.dumps(r["value"])) for r in map(json.loads, received.read_text().splitlines()))
        assert got == sorted((k, json.dumps(v)) for k, v in EXPECTED.items())
        assert len(_get(free_port, "metric-data-latest")) >= 4
    finally:
        nnictl("stop", eid)


def test_builtin_tuner_names_the_metric_it_cannot_use(tmp_path, free_port):
    nnictl = _Nnictl(tmp_path)
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text("import nni\nnni.get_next_parameter()\nnni.report_final_result([0.1, 0.2])\n")
    tuner = {"name": "TPE", "classArgs": {"optimize_mode": "maximize"}}
    # Whether a failing tuner ends the experiment (ERROR, nnictl create exits 1) or is only
    # logged is the dispatcher's policy; either way the message names the metric, and the
    # manager stays up to serve the trial and what it reported.
    eid, output = nnictl.create(tmp_path, free_port, ok=False, **_config(code, tuner, 2))
    try:
        message = ("metric [0.1, 0.2] has no scalar (it is a list); built-in tuners and assessors need a number "
                   "or a dict with a numeric 'default' key")
        if "ERROR:" in output:
            assert message in output
        log = nnictl.root / eid / "log" / "dispatcher.log"
        _wait(lambda: log.exists() and message in log.read_text(), what="the named metric error in dispatcher.log")
        # the manager is still up and serves the trial and its metric
        job = _wait(lambda: [j for j in _get(free_port, "trial-jobs") if j.get("finalMetricData")], what="a stored final metric")[0]
        assert json.loads(job["finalMetricData"][0]["data"]) == [0.1, 0.2]
        assert job["status"] == "SUCCEEDED"
    finally:
        nnictl("stop", eid)
