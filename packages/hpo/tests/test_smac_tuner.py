"""SMACTuner: the core contract, the support table, config_dedup, and that it optimizes."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.algorithms.hpo.smac_tuner import SMAC_TYPES, SMACClassArgsValidator, SMACTuner, _log_ei, _log_scaled
from nni.testing import BRANIN_SPACE, TunerContract, branin, minimize_with
from nni.utils import NoMoreTrialError, check_class_args

class TestSmacContract(TunerContract):
    supported_types = frozenset(SMAC_TYPES)
    n_trials = 20

    def make_tuner(self):
        return SMACTuner(optimize_mode="maximize", seed=0)


@pytest.mark.parametrize("spec, reason", [
    ({"_type": "normal", "_value": [0, 1]}, "normal"),
    ({"_type": "qloguniform", "_value": [1, 100, 1]}, "qloguniform"),
    ({"_type": "choice", "_value": [{"_name": "a", "k": {"_type": "choice", "_value": [1, 2]}}, {"_name": "b"}]}, "nested"),
])
def test_support_table_rejections_are_one_line(spec, reason):
    with pytest.raises(ValueError) as err:
        SMACTuner().update_search_space({"x": spec})
    message = str(err.value)
    assert "\n" not in message and "'x" in message and reason in message and "SMAC" in message


def test_first_suggestion_is_the_default_configuration():
    tuner = SMACTuner(seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 4]}, "k": {"_type": "randint", "_value": [1, 4]},
                               "c": {"_type": "choice", "_value": ["a", "b", "c"]}})
    assert tuner.generate_parameters(0) == {"x": 2.0, "k": 2, "c": "a"}


def test_config_dedup_never_repeats_then_exhausts():
    space = {"a": {"_type": "choice", "_value": [1, 2, 3]}, "k": {"_type": "randint", "_value": [0, 3]},
             "q": {"_type": "quniform", "_value": [0, 1, 0.5]}}
    tuner = SMACTuner(optimize_mode="minimize", config_dedup=True, seed=2)
    _, params = minimize_with(tuner, space, lambda p: p["a"] + p["k"] + p["q"], 27)
    assert len({json.dumps(p, sort_keys=True) for p in params}) == 27  # 3 * 3 * 3, each once
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(27)


def test_without_dedup_repeats_happen_on_a_tiny_space():
    space = {"a": {"_type": "choice", "_value": [1, 2]}}
    _, params = minimize_with(SMACTuner(optimize_mode="minimize", seed=0), space, lambda p: p["a"], 12)
    assert len(params) == 12 and [p["a"] for p in params[-4:]].count(1) >= 2


def test_randint_is_ordered_and_optimized():
    # an ordered integer optimum in the middle of a wide range: found without trying every value
    space = {"n": {"_type": "randint", "_value": [0, 200]}, "x": {"_type": "uniform", "_value": [0, 1]}}
    best, _ = minimize_with(SMACTuner(optimize_mode="minimize", seed=1), space, lambda p: abs(p["n"] - 137) + p["x"], 40)
    assert best < 6


def test_log_scaled_costs_and_log_ei():
    y = _log_scaled(np.array([3.0, 1.0, 2.0, math.inf]))
    assert np.all(np.isfinite(y)) and np.argmin(y) == 1 and y[3] == y[0]  # a failed trial = the worst seen
    mean = np.array([0.0, 0.0, -1.0])
    ei = _log_ei(mean, np.array([0.01, 1.0, 0.01]), best=-0.5)
    assert ei[2] > ei[0] and ei[1] > ei[0] and np.all(ei >= 0)  # better mean or more spread: more EI


def test_maximize_reverses_direction():
    tuner = SMACTuner(optimize_mode="maximize", seed=3)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [-1, 1]}})
    xs = []
    for i in range(25):
        p = tuner.generate_parameters(i)
        xs.append(p["x"])
        tuner.receive_trial_result(i, p, {"default": p["x"], "other": 0})
    assert max(xs[-10:]) > 0.9


def test_import_data_is_used_by_the_model():
    tuner = SMACTuner(optimize_mode="minimize", seed=0)
    tuner.update_search_space(BRANIN_SPACE)
    rng = np.random.default_rng(0)
    data = [{"parameter": {"x1": float(rng.uniform(-5, 10)), "x2": float(rng.uniform(0, 15))}} for _ in range(20)]
    for d in data:
        d["value"] = branin(d["parameter"])
    data.append({"parameter": {"x1": 1.0}, "value": 1.0})  # missing a key: skipped
    assert tuner.import_data(data) == 20
    best, _ = minimize_with(tuner, BRANIN_SPACE, branin, 15)
    assert best < min(d["value"] for d in data[:20])


@pytest.mark.parametrize("args, key", [({"optimize_mode": "max"}, "optimize_mode"), ({"config_dedup": "yes"}, "config_dedup"),
                                       ({"seed": -1}, "seed"), ({"bogus": 1}, "bogus")])
def test_bad_class_args_name_the_key(args, key):
    with pytest.raises(ValueError, match=key) as err:
        check_class_args(SMACClassArgsValidator, args)
    assert "\n" not in str(err.value)
    check_class_args(SMACClassArgsValidator, {"optimize_mode": "minimize", "config_dedup": True})


@pytest.mark.slow
def test_beats_random_on_branin():
    smac = [minimize_with(SMACTuner(optimize_mode="minimize", seed=s), BRANIN_SPACE, branin, 40)[0] for s in range(3)]
    rnd = [minimize_with(RandomTuner(seed=s), BRANIN_SPACE, branin, 40)[0] for s in range(3)]
    assert np.median(smac) < np.median(rnd)
    assert np.median(smac) < 1.0  # the optimum is 0.3979
