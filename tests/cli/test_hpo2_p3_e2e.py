"""Real experiments through ``nnictl create`` for the BOHB and Hyperband advisors: assessor-free
configs, trials that fail for some parameters and trials that report fewer intermediate results
than their budget; the experiment must reach DONE."""
from __future__ import annotations

import json

import pytest

from nni.server.testing import experiment_id_of, wait_until
from nni.testing.search_space_check import check_parameters

pytestmark = pytest.mark.slow

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "opt": {"_type": "choice", "_value": ["sgd", "adam"]}}

# fails for x > 0.7; runs TRIAL_BUDGET "epochs" but stops reporting after 2 of them
TRIAL = """\
import sys, nni
p = nni.get_next_parameter()
budget = p["TRIAL_BUDGET"]
assert isinstance(budget, int) and budget >= 1, budget
if p["x"] > 0.7:
    sys.exit(1)
score = 0
for epoch in range(min(budget, 2)):
    score = p["x"] * (epoch + 1) / budget + (p["opt"] == "adam") * 0.1
    nni.report_intermediate_result(score)
if budget <= 2:
    nni.report_final_result(score)
"""


def _run(nnictl, config, port):
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(port)).stdout)
    wait_until(lambda: json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "DONE",
               timeout=240, what="experiment DONE")
    trials = json.loads(nnictl("trial", "ls", eid).stdout)
    nnictl("stop", eid)
    out = []
    for t in sorted(trials, key=lambda t: t["sequenceId"]):
        params = json.loads(t["hyperParameters"][0])["parameters"]
        out.append({"status": t["status"], "params": params})
    return out


def _check(trials, budgets, n):
    assert len(trials) == n, trials
    for t in trials:
        params = dict(t["params"])
        assert params.pop("TRIAL_BUDGET") in budgets
        check_parameters(SPACE, params)
        assert t["status"] == ("FAILED" if params["x"] > 0.7 else "SUCCEEDED"), t


def test_bohb_experiment_with_failing_and_short_trials(nnictl, write_config, free_port):
    config = write_config(TRIAL, searchSpace=SPACE, trialConcurrency=2, maxTrialNumber=10, tuner=None,
                          advisor={"name": "BOHB", "classArgs": {"optimize_mode": "maximize", "min_budget": 1,
                                                                 "max_budget": 3, "eta": 3, "min_points_in_model": 2}})
    trials = _run(nnictl, config, free_port)
    _check(trials, {1, 3}, 10)
    assert any(t["params"]["TRIAL_BUDGET"] == 3 for t in trials)


def test_hyperband_experiment_with_failing_and_short_trials(nnictl, write_config, free_port):
    config = write_config(TRIAL, searchSpace=SPACE, trialConcurrency=2, maxTrialNumber=10, tuner=None,
                          advisor={"name": "Hyperband", "classArgs": {"optimize_mode": "maximize", "R": 9, "eta": 3}})
    trials = _run(nnictl, config, free_port)
    _check(trials, {1, 3, 9}, 10)


def test_bohb_config_space_file_replaces_the_search_space(nnictl, write_config, free_port, tmp_path):
    pcs = tmp_path / "space.pcs"
    pcs.write_text("x real [0.0, 1.0] [0.5]\nopt categorical {sgd, adam} [sgd]\n")
    config = write_config(TRIAL, searchSpace={"unused": {"_type": "choice", "_value": [1]}}, trialConcurrency=2,
                          maxTrialNumber=5, tuner=None,
                          advisor={"name": "BOHB", "classArgs": {"optimize_mode": "maximize", "config_space": str(pcs)}})
    trials = _run(nnictl, config, free_port)
    _check(trials, {1, 3}, 5)
