"""MetisTuner: the core contract, classArgs errors, exploration/exploitation and re-sampling."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nni.algorithms.hpo.metis_tuner import MetisClassArgsValidator, MetisTuner
from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.testing import BRANIN_SPACE, TunerContract, branin
from nni.utils import check_class_args

class TestMetisContract(TunerContract):
    supported_types = frozenset({"choice", "randint", "uniform", "quniform"})
    numeric_choice_only = True
    n_trials = 14

    def make_tuner(self):
        return MetisTuner(optimize_mode="maximize", cold_start_num=4, selection_num_starting_points=100, seed=0)


def _run(tuner, space, f, n):
    tuner.update_search_space(space)
    best, choices = math.inf, []
    for i in range(n):
        p = tuner.generate_parameters(i)
        choices.append(getattr(tuner, "last_choice", "random"))
        y = f(p)
        best = min(best, y)
        tuner.receive_trial_result(i, p, y)
        tuner.trial_end(i, True)
    return best, choices


def test_beats_random_on_branin():
    metis = [_run(MetisTuner("minimize", selection_num_starting_points=200, seed=s), BRANIN_SPACE, branin, 30)[0]
             for s in range(2)]
    rnd = [_run(RandomTuner(seed=s), BRANIN_SPACE, branin, 30)[0] for s in range(2)]
    assert np.median(metis) < np.median(rnd)
    assert np.median(metis) < 1.0


def test_exploration_probability_and_no_candidates():
    _, choices = _run(MetisTuner("minimize", cold_start_num=4, exploration_probability=0.0,
                                 selection_num_starting_points=100, seed=0),
                      {"x": {"_type": "uniform", "_value": [0, 1]}}, lambda p: (p["x"] - 0.6) ** 2, 10)
    assert choices[:4] == ["random"] * 4 and set(choices[4:]) <= {"exploit", "random"}
    assert "exploit" in choices[4:]
    _, choices = _run(MetisTuner("minimize", cold_start_num=4, exploration_probability=1.0,
                                 selection_num_starting_points=100, seed=0),
                      {"x": {"_type": "uniform", "_value": [0, 1]}}, lambda p: (p["x"] - 0.6) ** 2, 10)
    assert "explore" in choices[4:] and "exploit" not in choices[4:]
    _, choices = _run(MetisTuner("minimize", cold_start_num=4, no_candidates=True, exploration_probability=1.0,
                                 selection_num_starting_points=100, seed=0),
                      {"x": {"_type": "uniform", "_value": [0, 1]}}, lambda p: (p["x"] - 0.6) ** 2, 10)
    assert "explore" not in choices


def _noisy_history(tuner):
    """A smooth 1-D bowl with one spurious excellent result at x = 0.9."""
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    xs = list(np.linspace(0, 1, 12))
    for i, x in enumerate(xs):
        y = (x - 0.4) ** 2
        if abs(x - 0.9) < 0.05:
            x, y = 0.9, -1.0  # far better than its neighbours: noise
        tuner.receive_trial_result(i, {"x": float(x)}, y)


def test_resampling_resends_a_noisy_good_point_once():
    tuner = MetisTuner("minimize", no_resampling=False, cold_start_num=4, selection_num_starting_points=100, seed=0)
    _noisy_history(tuner)
    p = tuner.generate_parameters(100)
    assert tuner.last_choice == "resample" and p["x"] == pytest.approx(0.9)
    tuner.receive_trial_result(100, p, (0.9 - 0.4) ** 2)  # the re-run shows the real value
    tuner.generate_parameters(101)
    assert tuner.last_choice != "resample"


def test_no_resampling_by_default():
    tuner = MetisTuner("minimize", cold_start_num=4, selection_num_starting_points=100, seed=0)
    _noisy_history(tuner)
    tuner.generate_parameters(100)
    assert tuner.last_choice != "resample"


def test_unsupported_types_rejected():
    tuner = MetisTuner()
    with pytest.raises(ValueError, match=r"'x'.*'loguniform' is not supported by MetisTuner"):
        tuner.update_search_space({"x": {"_type": "loguniform", "_value": [0.001, 1]}})
    with pytest.raises(ValueError, match=r"'k'.*not a number"):
        tuner.update_search_space({"k": {"_type": "choice", "_value": ["relu", "tanh"]}})


@pytest.mark.parametrize("args, message", [
    ({"no_resampling": "yes"}, r"classArgs\.no_resampling"),
    ({"exploration_probability": 1.5}, r"classArgs\.exploration_probability.*\[0, 1\]"),
    ({"selection_num_starting_points": 0}, r"classArgs\.selection_num_starting_points"),
    ({"cold_start_num": -1}, r"classArgs\.cold_start_num"),
    ({"utility": "ei"}, r"classArgs\.utility is not a known argument"),
])
def test_class_args_errors(args, message):
    with pytest.raises(ValueError, match=message):
        check_class_args(MetisClassArgsValidator, args)
    check_class_args(MetisClassArgsValidator, {"optimize_mode": "minimize", "no_resampling": True, "no_candidates": False,
                                               "selection_num_starting_points": 600, "cold_start_num": 10,
                                               "exploration_probability": 0.9})
