"""GPTuner and MetisTuner in real experiments through ``nnictl create`` (issue 12, part P1)."""
from __future__ import annotations

import json

import pytest

from nni.server.testing import experiment_id_of as _id_of
from nni.server.testing import wait_until as _wait

pytestmark = pytest.mark.slow

TRIAL = """\
import nni
p = nni.get_next_parameter()
nni.report_final_result(-(p["x"] - 0.3) ** 2 - (p["k"] - 4) ** 2 / 100)
"""

SPACE = {"x": {"_type": "uniform", "_value": [0, 1]}, "k": {"_type": "choice", "_value": [1, 2, 4, 8]}}


@pytest.mark.parametrize("tuner", [
    {"name": "GPTuner", "classArgs": {"optimize_mode": "maximize", "cold_start_num": 3, "selection_num_warm_up": 2000}},
    {"name": "MetisTuner", "classArgs": {"optimize_mode": "maximize", "cold_start_num": 3, "no_resampling": False}},
])
def test_experiment_with_gp_tuners(nnictl, write_config, free_port, tmp_path, tuner):
    config = write_config(TRIAL, searchSpace=SPACE, maxTrialNumber=6, trialConcurrency=2, tuner=tuner)
    eid = _id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    _wait(lambda: json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "DONE", what="DONE", timeout=180)
    exported = tmp_path / "export.json"
    nnictl("experiment", "export", eid, "-f", str(exported), "--type", "json")
    data = json.loads(exported.read_text())
    assert len(data) == 6  # every trial succeeded and reported
    for record in data:
        p = record["parameter"]
        assert 0 <= p["x"] <= 1 and p["k"] in (1, 2, 4, 8)
        assert record["value"] == pytest.approx(-(p["x"] - 0.3) ** 2 - (p["k"] - 4) ** 2 / 100)
    nnictl("stop", eid)


def test_bad_class_args_rejected_before_start(nnictl, write_config, free_port):
    config = write_config(TRIAL, searchSpace=SPACE, tuner={"name": "GPTuner", "classArgs": {"utility": "pi"}})
    proc = nnictl("create", "--config", str(config), "--port", str(free_port), ok=False)
    assert proc.returncode == 1 and "classArgs.utility" in proc.stderr and "'ucb'" in proc.stderr
    config = write_config(None, name="bad_space.yml", searchSpace={"x": {"_type": "normal", "_value": [0, 1]}},
                          tuner={"name": "MetisTuner"})
    proc = nnictl("create", "--config", str(config), "--port", str(free_port), ok=False)
    assert proc.returncode == 1 and "not supported by MetisTuner" in proc.stderr + proc.stdout
