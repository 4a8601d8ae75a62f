"""A real NetworkMorphism experiment through ``nnictl create`` with the example trial (8x8
digits, one epoch on the CPU): each trial receives a network graph, builds it with torch and
reports its accuracy; the tuner's models land in the experiment's ``log/model_path``."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from nni.algorithms.hpo.networkmorphism_tuner import json_to_graph
from nni.server.testing import experiment_id_of, wait_until

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "trials" / "network_morphism"


def test_network_morphism_experiment(nnictl, write_config, free_port, tmp_path):
    pytest.importorskip("torch")
    example = yaml.safe_load((EXAMPLE / "config.yml").read_text())
    config = write_config((EXAMPLE / "digits.py").read_text(), searchSpace=example["searchSpace"],
                          trialCommand=f"{sys.executable} trial.py", trialConcurrency=2, maxTrialNumber=4,
                          tuner={**example["tuner"], "classArgs": {**example["tuner"]["classArgs"], "default_model_width": 8}})
    eid = experiment_id_of(nnictl("create", "--config", str(config), "--port", str(free_port)).stdout)
    wait_until(lambda: json.loads(nnictl("experiment", "status", eid).stdout)["status"] == "DONE",
               timeout=240, what="experiment DONE")
    trials = json.loads(nnictl("trial", "ls", eid).stdout)
    assert len(trials) == 4 and all(t["status"] == "SUCCEEDED" for t in trials), trials
    signatures = set()
    for t in trials:
        params = json.loads(t["hyperParameters"][0])["parameters"]
        graph = json_to_graph(params)  # a network in the docs' JSON format
        assert params["input_shape"] == [8, 8, 1] and graph.node_list[graph.output_node()] == [10]
        signatures.add(graph.signature())
        accuracy = json.loads(t["finalMetricData"][-1]["data"])
        assert 0.0 <= accuracy <= 1.0
    assert len(signatures) == 4  # no network trained twice
    model_path = nnictl.root / eid / "log" / "model_path"
    assert sorted(p.name for p in model_path.glob("*.json")) == ["0.json", "1.json", "2.json", "3.json"]
    assert (model_path / "best_model.txt").read_text().startswith("best model: ")
