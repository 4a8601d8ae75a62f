"""HyperoptTuner / AnnealTuner: contract, the three algorithms, helpers, import."""
from __future__ import annotations

import math

import pytest

from nni.algorithms.hpo.hyperopt_tuner import (AnnealClassArgsValidator, AnnealTuner, HyperoptClassArgsValidator,
                                               HyperoptTuner, json2parameter, json2space)
from nni.testing import TunerContract
from nni.utils import check_class_args


class TestAnnealContract(TunerContract):
    supported_types = TunerContract.ALL_TYPES
    supports_nested_choice = True
    n_trials = 25

    def make_tuner(self):
        return AnnealTuner(seed=0)


class TestHyperoptTpeContract(TunerContract):
    supported_types = TunerContract.ALL_TYPES
    supports_nested_choice = True
    n_trials = 25

    def make_tuner(self):
        return HyperoptTuner("tpe", optimize_mode="maximize", parallel_optimize=True, seed=0)


@pytest.mark.parametrize("algorithm", ["tpe", "random_search", "anneal"])
def test_algorithms_run_and_minimize(algorithm):
    tuner = HyperoptTuner(algorithm, optimize_mode="minimize", seed=1)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [-3, 3]}, "c": {"_type": "choice", "_value": ["a", "b"]}})
    best = math.inf
    for i in range(40):
        p = tuner.generate_parameters(i)
        y = p["x"] ** 2 + (0 if p["c"] == "a" else 1)
        best = min(best, y)
        tuner.receive_trial_result(i, p, y)
    assert best < 0.5


def test_json2space_and_json2parameter_roundtrip():
    space = {"m": {"_type": "choice", "_value": [{"_name": "a", "q": {"_type": "quniform", "_value": [2, 10, 5]}}, "plain"]},
             "r": {"_type": "randint", "_value": [3, 7]}, "l": {"_type": "loguniform", "_value": [1e-3, 1]}}
    expr = json2space(space)
    assert set(expr) == {"m", "r", "l"}
    params = json2parameter(space, {"m": [0], "m[0].q": [11.7], "r": [5], "l": [0.01]})
    assert params == {"m": {"_name": "a", "q": 10.0}, "r": 5, "l": pytest.approx(0.01)}  # q clipped to high
    assert isinstance(params["r"], int)


def test_import_data_and_liar():
    tuner = HyperoptTuner("tpe", optimize_mode="maximize", parallel_optimize=True, constant_liar_type="mean", seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    tuner.import_data([{"parameter": {"x": 0.1 * i}, "value": {"default": float(i)}} for i in range(10)])
    assert len(tuner.trials.trials) == 10
    got = tuner.generate_multiple_parameters([0, 1, 2])
    assert len(got) == 3
    tuner.trial_end(0, False)
    tuner.receive_trial_result(1, got[1], 1.0)


def test_class_args():
    check_class_args(HyperoptClassArgsValidator, {"algorithm_name": "anneal", "optimize_mode": "maximize"})
    with pytest.raises(ValueError, match="algorithm_name"):
        check_class_args(HyperoptClassArgsValidator, {"algorithm_name": "smac"})
    with pytest.raises(ValueError, match="parallel_optimize"):
        check_class_args(AnnealClassArgsValidator, {"parallel_optimize": True})
    assert AnnealTuner().optimize_mode.value == "maximize"
    assert HyperoptTuner("tpe").optimize_mode.value == "minimize"
