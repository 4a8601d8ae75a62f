"""PPOTuner: the core contract on choice spaces, learning, mutable_layer spaces, classArgs."""
from __future__ import annotations

import json
import time

import pytest

from nni.algorithms.hpo.ppo_tuner import PPOClassArgsValidator, PPOTuner
from nni.testing import TunerContract
from nni.utils import check_class_args


class TestPpoContract(TunerContract):
    supported_types = frozenset({"choice"})

    def make_tuner(self):
        return PPOTuner(optimize_mode="maximize", trials_per_update=8, minibatch_size=4, lr=0.05, seed=0)


SPACE = {f"p{i}": {"_type": "choice", "_value": [0, 1, 2, 3]} for i in range(3)}
BEST = {"p0": 2, "p1": 0, "p2": 3}


def test_ppo_learns_a_one_hot_optimum():
    tuner = PPOTuner(optimize_mode="maximize", lr=0.1, seed=1)
    tuner.update_search_space(SPACE)
    assert tuner.best_probability(BEST) == pytest.approx(1 / 64)
    hits = []
    for pid in range(400):
        params = tuner.generate_parameters(pid)
        hits.append(params == BEST)
        tuner.receive_trial_result(pid, params, 1.0 if params == BEST else 0.0)
    assert tuner.updates == 20
    assert tuner.best_probability(BEST) > 0.9
    assert sum(hits[-50:]) >= 40  # it now proposes the optimum almost always


def test_minimize_prefers_low_metric():
    tuner = PPOTuner(optimize_mode="minimize", lr=0.1, seed=0)
    tuner.update_search_space({"k": {"_type": "choice", "_value": ["a", "b", "c"]}})
    for pid in range(200):
        params = tuner.generate_parameters(pid)
        tuner.receive_trial_result(pid, params, {"default": 0.0 if params["k"] == "b" else 1.0})
    assert tuner.best_probability({"k": "b"}) > 0.9


LAYER_SPACE = {"main/mutable_block_3": {"_type": "mutable_layer", "_value": {
    "mutable_layer_0": {"layer_choice": ["conv(3)", "conv(5)", "pool()"], "optional_inputs": ["x", "y", "z"],
                        "optional_input_size": [1, 2]},
    "mutable_layer_1": {"layer_choice": ["relu()", "tanh()"], "optional_inputs": [], "optional_input_size": 0},
}}, "lr": {"_type": "choice", "_value": [0.1, 0.01]}}


def test_mutable_layer_format_and_learning():
    tuner = PPOTuner(lr=0.1, trials_per_update=10, seed=2)
    tuner.update_search_space(LAYER_SPACE)
    target = {"chosen_layer": "pool()", "chosen_inputs": ["z", "x"]}
    for pid in range(600):
        params = json.loads(json.dumps(tuner.generate_parameters(pid)))
        block = params["main/mutable_block_3"]
        assert set(block) == {"mutable_layer_0", "mutable_layer_1"}
        first = block["mutable_layer_0"]
        assert first["chosen_layer"] in ("conv(3)", "conv(5)", "pool()")
        assert 1 <= len(first["chosen_inputs"]) <= 2 and len(set(first["chosen_inputs"])) == len(first["chosen_inputs"])
        assert set(first["chosen_inputs"]) <= {"x", "y", "z"}
        assert block["mutable_layer_1"]["chosen_inputs"] == [] and block["mutable_layer_1"]["chosen_layer"] in ("relu()", "tanh()")
        assert params["lr"] in (0.1, 0.01)
        tuner.receive_trial_result(pid, params, float(first["chosen_layer"] == "pool()") + float(sorted(first["chosen_inputs"]) == ["x", "z"]))
    last = [tuner.generate_parameters(1000 + i)["main/mutable_block_3"]["mutable_layer_0"] for i in range(40)]
    good = [b for b in last if b["chosen_layer"] == target["chosen_layer"] and sorted(b["chosen_inputs"]) == ["x", "z"]]
    assert len(good) >= 30


def test_import_data_feeds_updates():
    tuner = PPOTuner(trials_per_update=4, minibatch_size=2, lr=0.1, seed=0)
    tuner.update_search_space(SPACE)
    data = [{"parameter": dict(BEST), "value": 1.0}] * 4 + [{"parameter": {"p0": 9, "p1": 0, "p2": 0}, "value": 1.0}]
    assert tuner.import_data(data) == 4
    assert tuner.updates == 1


def test_suggestion_latency():
    tuner = PPOTuner(seed=0)
    tuner.update_search_space(SPACE)
    for pid in range(100):
        params = tuner.generate_parameters(pid)
        tuner.receive_trial_result(pid, params, 0.5)
    start = time.perf_counter()
    for pid in range(100, 120):
        tuner.generate_parameters(pid)
    assert (time.perf_counter() - start) / 20 < 0.05


@pytest.mark.parametrize("space,match", [
    ({"x": {"_type": "uniform", "_value": [0, 1]}}, r"'x'.*uniform.*choice and mutable_layer only"),
    ({"x": {"_type": "choice", "_value": [{"_name": "a", "y": {"_type": "choice", "_value": [1]}}]}}, r"x"),
    ({"b": {"_type": "mutable_layer", "_value": {"l0": {"layer_choice": [], "optional_inputs": []}}}},
     r"'b'/l0: layer_choice must be a non-empty list"),
    ({"b": {"_type": "mutable_layer", "_value": {"l0": {"layer_choice": ["a"], "optional_inputs": ["x"],
                                                       "optional_input_size": [2, 3]}}}},
     r"'b'/l0: optional_input_size must satisfy"),
])
def test_bad_spaces_rejected(space, match):
    with pytest.raises(ValueError, match=match) as info:
        PPOTuner().update_search_space(space)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("args,match", [
    ({"optimize_mode": "up"}, r"classArgs\.optimize_mode must be one of"),
    ({"trials_per_update": 0}, r"classArgs\.trials_per_update must be an int in \[1, 99999\]"),
    ({"lr": -1}, r"classArgs\.lr must be a float"),
    ({"gamma": 1.5}, r"classArgs\.gamma must be a float in \[0.0, 1.0\]"),
    ({"cliprange": "0.2"}, r"classArgs\.cliprange must be a float"),
    ({"trials_per_update": 4, "minibatch_size": 8}, r"classArgs\.minibatch_size must be at most trials_per_update \(4\)"),
    ({"learning_rate": 0.1}, r"classArgs\.learning_rate is not a known argument"),
])
def test_class_args_errors(args, match):
    with pytest.raises(ValueError, match=match) as info:
        check_class_args(PPOClassArgsValidator, args)
    assert "\n" not in str(info.value)


def test_config_check_accepts_mutable_layer_for_ppo_only():
    from nni.experiment.config.search_space import check_search_space

    check_search_space({"tuner": {"name": "PPOTuner"}}, LAYER_SPACE)
    with pytest.raises(ValueError, match=r"unknown _type 'mutable_layer'"):
        check_search_space({"tuner": {"name": "TPE"}}, LAYER_SPACE)
    with pytest.raises(ValueError, match=r"rejected by tuner PPOTuner: .*'x'.*uniform") as info:
        check_search_space({"tuner": {"name": "PPOTuner"}}, {"x": {"_type": "uniform", "_value": [0, 1]}, **LAYER_SPACE})
    assert "\n" not in str(info.value)
