"""Real experiments through ``nnictl create`` for PBTTuner (with the PBT example trial) and PPOTuner."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nni.server.testing import experiment_id_of, wait_until
from nni.testing.search_space_check import check_parameters

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "pbt"


def _run(nnictl, config, port):
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(port)).stdout)
    wait_until(lambda: json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "DONE",
               timeout=240, what="experiment DONE")
    trials = json.loads(nnictl("trial", "ls", eid).stdout)
    out = []
    for t in sorted(trials, key=lambda t: t["sequenceId"]):
        params = json.loads(t["hyperParameters"][0])
        out.append({"status": t["status"], "parameter_id": params["parameter_id"], "params": params["parameters"],
                    "final": json.loads(t["finalMetricData"][-1]["data"]) if t.get("finalMetricData") else None})
    return out


def test_pbt_experiment_runs_steps_over_checkpoints(nnictl, write_config, free_port, tmp_path):
    space = json.loads((EXAMPLE / "search_space.json").read_text())
    ckpt = tmp_path / "ckpt"
    config = write_config((EXAMPLE / "main.py").read_text(), searchSpace=space, trialConcurrency=2, maxTrialNumber=6,
                          tuner={"name": "PBTTuner", "classArgs": {"optimize_mode": "maximize", "population_size": 3,
                                                                   "fraction": 0.33, "all_checkpoint_dir": str(ckpt)}})
    trials = _run(nnictl, config, free_port)
    assert len(trials) == 6 and all(t["status"] == "SUCCEEDED" for t in trials), trials
    by_pid = sorted(trials, key=lambda t: t["parameter_id"])
    step0, step1 = by_pid[:3], by_pid[3:]
    for i, t in enumerate(step0):
        p = t["params"]
        assert p["save_checkpoint_dir"] == p["load_checkpoint_dir"] == str(ckpt / str(i) / "0")
    for i, t in enumerate(step1):
        p = t["params"]
        check_parameters(space, {k: v for k, v in p.items() if not k.endswith("_checkpoint_dir")})
        assert p["save_checkpoint_dir"] == str(ckpt / str(i) / "1")
        # the step-1 model continued a step-0 checkpoint: two epochs in it
        assert int(np.load(Path(p["save_checkpoint_dir"]) / "model.npz")["epochs"]) == 2
    finals = [t["final"] for t in step0]
    if len(set(finals)) == 3:  # ceil(0.33 * 3) = 1: the worst member exploits the best one
        best, worst = finals.index(max(finals)), finals.index(min(finals))
        assert step1[worst]["params"]["load_checkpoint_dir"] == str(ckpt / str(best) / "0")
        assert step1[best]["params"]["load_checkpoint_dir"] == str(ckpt / str(best) / "0")
    sources = [t["params"]["load_checkpoint_dir"] for t in step1]
    assert len(set(sources)) == 2  # one member's checkpoint was copied


PPO_TRIAL = """\
import nni
p = nni.get_next_parameter()
layer = p["block"]["mutable_layer_0"]
assert layer["chosen_layer"] in ("conv", "pool") and len(layer["chosen_inputs"]) == 1
nni.report_final_result(float(p["k"] == "b") + float(layer["chosen_layer"] == "pool"))
"""


def test_ppo_experiment(nnictl, write_config, free_port):
    space = {"k": {"_type": "choice", "_value": ["a", "b", "c"]},
             "block": {"_type": "mutable_layer", "_value": {"mutable_layer_0": {
                 "layer_choice": ["conv", "pool"], "optional_inputs": ["x", "y"], "optional_input_size": 1}}}}
    config = write_config(PPO_TRIAL, searchSpace=space, trialConcurrency=2, maxTrialNumber=6,
                          tuner={"name": "PPOTuner", "classArgs": {"optimize_mode": "maximize", "trials_per_update": 4,
                                                                   "minibatch_size": 2, "lr": 0.05}})
    trials = _run(nnictl, config, free_port)
    assert len(trials) == 6 and all(t["status"] == "SUCCEEDED" for t in trials), trials
    for t in trials:
        assert t["params"]["k"] in ("a", "b", "c")
        assert t["params"]["block"]["mutable_layer_0"]["chosen_inputs"][0] in ("x", "y")
