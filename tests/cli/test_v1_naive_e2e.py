"""NNI v2.5 material through ``nnictl create``, unmodified: the "naive" test (custom tuner and
assessor loaded from files, a search space in the tuner's own format, a v1 config with
``multiPhase: false``) and the docs' v1 local config (L17310-17337 form, with ``versionCheck``)."""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nni.server.testing import auth_headers, rest_get as _get, wait_until as _wait

pytestmark = pytest.mark.slow

NAIVE = Path(__file__).parent / "naive_test"


def _status(nnictl, eid: str) -> str:
    return json.loads(nnictl("experiment", "status", eid).stdout)["status"]


def _python3_is_this_python(nnictl) -> None:
    # The v2.5 files say ``python3``: put this interpreter's folder (the venv) first on PATH.
    nnictl.env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + nnictl.env.get("PATH", "")


def test_naive_custom_tuner_and_assessor_from_v1_config(nnictl, free_port, tmp_path):
    code = tmp_path / "naive_test"
    shutil.copytree(NAIVE, code)
    _python3_is_this_python(nnictl)
    written_space = json.loads((code / "search_space.json").read_text())

    created = nnictl("create", "--config", str(code / "local.yml"), "--port", str(free_port))
    out = created.stdout + created.stderr
    assert "Traceback" not in out
    warnings = [line for line in out.splitlines() if "multiPhase" in line]
    assert len(warnings) == 1 and "ignored" in warnings[0], out
    eid = re.search(r"The experiment id is (\w+)", out).group(1)
    _wait(lambda: _status(nnictl, eid) == "DONE", what="DONE")

    # The tuner received the space exactly as written (list-valued and custom-typed parameters).
    assert json.loads((code / "tuner_search_space.json").read_text()) == written_space
    profile = _get(free_port, "experiment")
    assert json.loads(profile["params"]["searchSpace"]) == written_space

    # Trials got plain ints 1..10; the assessor stopped the odd ones at their 2nd result.
    jobs = _get(free_port, "trial-jobs")
    assert len(jobs) == 10
    by_param = {}
    for job in jobs:
        record = json.loads(job["hyperParameters"][0])
        assert isinstance(record["parameters"], int)
        by_param[record["parameters"]] = job
    assert sorted(by_param) == list(range(1, 11))
    stopped = {line.split()[0]: int(line.split()[1]) for line in (code / "assessor_result.txt").read_text().splitlines()}
    assert sorted(stopped.values()) == [1, 3, 5, 7, 9]
    for x, job in by_param.items():
        if x % 2:
            assert job["status"] == "EARLY_STOPPED" and stopped[job["trialJobId"]] == x, job
            assert not job.get("finalMetricData")
        else:
            assert job["status"] == "SUCCEEDED", job
            assert float(json.loads(job["finalMetricData"][0]["data"])) == 10 * x

    # Final results reached the tuner (only the trials that finished) and are stored.
    results = sorted(tuple(map(int, line.split())) for line in (code / "tuner_result.txt").read_text().splitlines())
    assert results == [(x, 10 * x) for x in (2, 4, 6, 8, 10)]
    exported = tmp_path / "export.json"
    nnictl("experiment", "export", eid, "--filename", str(exported), "--type", "json")
    assert sorted(d["value"] for d in json.loads(exported.read_text())) == [20, 40, 60, 80, 100]

    # nnictl update searchspace follows the tuner too: a top-level list is its business.
    new_space = tmp_path / "space2.json"
    new_space.write_text(json.dumps([1, [2, 3], {"_type": "mine"}]))
    nnictl("update", "searchspace", eid, "--filename", str(new_space))
    _wait(lambda: json.loads((code / "tuner_search_space.json").read_text()) == [1, [2, 3], {"_type": "mine"}],
          timeout=30, what="the tuner to get the updated space")

    # ... and it travels as-is through the store and resume.
    nnictl("stop", eid)
    nnictl("resume", eid, "--port", str(free_port))
    assert json.loads(_get(free_port, "experiment")["params"]["searchSpace"]) == [1, [2, 3], {"_type": "mine"}]
    nnictl("stop", eid)


DOCS_V1_LOCAL = """\
authorName: test
experimentName: test_experiment
trialConcurrency: 3
maxExecDuration: 1h
maxTrialNum: 4
#choice: local, remote, pai, kubeflow
trainingServicePlatform: local
searchSpacePath: search_space.json
#choice: true, false
useAnnotation: false
multiPhase: false
multiThread: false
versionCheck: true
logCollection: none
tuner:
  #choice: TPE, Random, Anneal, Evolution
  builtinTunerName: TPE
  classArgs:
    #choice: maximize, minimize
    optimize_mode: maximize
  includeIntermediateResults: false
assessor:
  #choice: Medianstop
  builtinAssessorName: Medianstop
  classArgs:
    #choice: maximize, minimize
    optimize_mode: maximize
trial:
  command: python3 mnist.py
  codeDir: {code}
  gpuNum: 0
localConfig:
  useActiveGpu: false
  maxTrialNumPerGpu: 1
"""

MNIST_STANDIN = """\
import nni
params = nni.get_next_parameter()
assert nni.get_next_parameter() is None  # not multi-phase: one set of parameters per trial
for step in range(3):
    nni.report_intermediate_result(params["lr"] * step)
nni.report_final_result(params["lr"] * 10)
"""


def test_docs_v1_local_config_with_legacy_fields_runs(nnictl, free_port, tmp_path):
    code = tmp_path / "mnist"
    code.mkdir()
    (code / "mnist.py").write_text(MNIST_STANDIN)
    (tmp_path / "search_space.json").write_text(json.dumps({"lr": {"_type": "uniform", "_value": [0.1, 1]}}))
    config = tmp_path / "config.yml"
    config.write_text(DOCS_V1_LOCAL.format(code=code))
    _python3_is_this_python(nnictl)

    created = nnictl("create", "--config", str(config), "--port", str(free_port))
    out = created.stdout + created.stderr
    assert "Traceback" not in out
    for field in ("multiPhase", "multiThread", "versionCheck", "logCollection", "tuner.includeIntermediateResults"):
        assert len([line for line in out.splitlines() if f"v1 field {field} " in line]) == 1, (field, out)
    eid = re.search(r"The experiment id is (\w+)", out).group(1)
    _wait(lambda: _status(nnictl, eid) == "DONE", what="DONE")
    jobs = _get(free_port, "trial-jobs")
    # Medianstop may legitimately stop a trial whose intermediate results trail the median
    assert len(jobs) == 4 and all(j["status"] in ("SUCCEEDED", "EARLY_STOPPED") for j in jobs), jobs
    assert any(j["status"] == "SUCCEEDED" for j in jobs), jobs
    params = json.loads(nnictl("experiment", "show", eid).stdout)["params"]
    assert params["tuner"]["builtinTunerName"] == "TPE" and params["assessor"]["builtinAssessorName"] == "Medianstop"
    assert params["maxExecDuration"] == 3600 and params["maxTrialNum"] == 4

    # TPE is built in: a space in another format is refused, by nnictl and by the REST API.
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"lr": [0.1, 1]}))
    refused = nnictl("update", "searchspace", eid, "--filename", str(odd), ok=False)
    assert refused.returncode == 1 and refused.stderr.startswith("ERROR: --filename: parameter 'lr': ") and refused.stderr.count("\n") == 1
    body = json.dumps({"params": {"searchSpace": json.dumps([1, 2])}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{free_port}/api/v1/nni/experiment?update_type=SEARCH_SPACE", data=body,
                                     method="PUT", headers={"Content-Type": "application/json", **auth_headers(free_port)})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400 and "searchSpace: the search space must be a JSON object" in info.value.read().decode()
    assert json.loads(_get(free_port, "experiment")["params"]["searchSpace"]) == {"lr": {"_type": "uniform", "_value": [0.1, 1]}}
    nnictl("stop", eid)


MULTI_PHASE_TRIAL = """\
import nni
got = [nni.get_next_parameter() for _ in range(3)]
assert all(isinstance(g, dict) for g in got), got
assert nni.get_current_parameter() == got[-1]
nni.report_final_result(len({g["x"] for g in got}))
"""


def test_v1_multi_phase_true_gives_new_parameters_on_each_call(nnictl, free_port, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "trial.py").write_text(MULTI_PHASE_TRIAL)
    (tmp_path / "search_space.json").write_text(json.dumps({"x": {"_type": "uniform", "_value": [0, 1]}}))
    config = tmp_path / "config.yml"
    config.write_text(f"""\
authorName: test
experimentName: multi_phase
trialConcurrency: 2
maxTrialNum: 2
trainingServicePlatform: local
searchSpacePath: search_space.json
multiPhase: true
tuner:
  builtinTunerName: Random
trial:
  command: python3 trial.py
  codeDir: {code}
  gpuNum: 0
""")
    _python3_is_this_python(nnictl)
    created = nnictl("create", "--config", str(config), "--port", str(free_port))
    assert "multiPhase" not in created.stdout + created.stderr  # converted, not dropped
    eid = re.search(r"The experiment id is (\w+)", created.stdout).group(1)
    _wait(lambda: _status(nnictl, eid) == "DONE", what="DONE")
    jobs = _get(free_port, "trial-jobs")
    assert len(jobs) == 2
    for job in jobs:
        assert job["status"] == "SUCCEEDED", job
        assert float(json.loads(job["finalMetricData"][0]["data"])) == 3  # three different sets
    nnictl("stop", eid)
