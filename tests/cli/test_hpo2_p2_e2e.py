"""Real experiments through ``nnictl create`` for the SMAC and DNGOTuner built-ins."""
from __future__ import annotations

import json

import pytest

from nni.server.testing import experiment_id_of, wait_until
from nni.testing.search_space_check import check_parameters

pytestmark = pytest.mark.slow

TRIAL = """\
import math
import nni
p = nni.get_next_parameter()
nni.report_final_result(-(math.log10(p["lr"]) + 2) ** 2 - (p["units"] - 64) ** 2 / 1000 - abs(p["drop"] - 0.3))
"""


def _run(nnictl, config, port):
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(port)).stdout)
    wait_until(lambda: json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "DONE",
               timeout=240, what="experiment DONE")
    trials = json.loads(nnictl("trial", "ls", eid).stdout)
    return [(t["status"], json.loads(t["hyperParameters"][0])["parameters"]) for t in trials]


@pytest.mark.parametrize("tuner, space", [
    ({"name": "SMAC", "classArgs": {"optimize_mode": "maximize", "config_dedup": True}},
     {"lr": {"_type": "loguniform", "_value": [0.0001, 0.1]}, "units": {"_type": "randint", "_value": [16, 129]},
      "drop": {"_type": "quniform", "_value": [0, 0.5, 0.1]}, "opt": {"_type": "choice", "_value": ["sgd", "adam"]}}),
    ({"name": "DNGOTuner", "classArgs": {"optimize_mode": "maximize", "sample_size": 200, "trials_per_update": 3,
                                         "num_epochs_per_training": 20}},
     {"lr": {"_type": "loguniform", "_value": [0.0001, 0.1]}, "units": {"_type": "choice", "_value": [16, 32, 64, 128]},
      "drop": {"_type": "uniform", "_value": [0, 0.5]}}),
])
def test_experiment_reaches_done(nnictl, write_config, free_port, tuner, space):
    config = write_config(TRIAL, searchSpace=space, trialConcurrency=2, maxTrialNumber=6, tuner=tuner)
    trials = _run(nnictl, config, free_port)
    assert len(trials) == 6 and all(status == "SUCCEEDED" for status, _ in trials), trials
    for _, params in trials:
        check_parameters(space, params)


def test_bad_class_args_and_space_rejected_in_one_line(nnictl, write_config, free_port):
    config = write_config(TRIAL, tuner={"name": "DNGOTuner", "classArgs": {"sample_size": 0}})
    proc = nnictl("create", "--config", str(config), "--port", str(free_port), ok=False)
    assert proc.returncode == 1 and "sample_size" in proc.stderr and "Traceback" not in proc.stderr
