"""EvolutionTuner: contract, improvement, nested spaces, population handling."""
from __future__ import annotations

import numpy as np
import pytest

from nni.algorithms.hpo.evolution_tuner import EvolutionClassArgsValidator, EvolutionTuner
from nni.algorithms.hpo.random_tuner import RandomTuner
from nni.testing import TunerContract
from nni.utils import check_class_args

SPACE = {f"x{i}": {"_type": "uniform", "_value": [-5, 5]} for i in range(4)}


def sphere(p):
    return sum(v * v for v in p.values())


class TestEvolutionContract(TunerContract):
    supported_types = TunerContract.ALL_TYPES
    supports_nested_choice = True

    def make_tuner(self):
        return EvolutionTuner(optimize_mode="maximize", population_size=8, seed=0)


def _run(tuner, n=200):
    tuner.update_search_space(SPACE)
    ys = []
    for i in range(n):
        p = tuner.generate_parameters(i)
        ys.append(sphere(p))
        tuner.receive_trial_result(i, p, -ys[-1])  # maximize -sphere
    return ys


def test_improves_over_random():
    evo = [min(_run(EvolutionTuner(population_size=16, seed=s))) for s in range(3)]
    rnd = [min(_run(RandomTuner(seed=s))) for s in range(3)]
    assert np.median(evo) < np.median(rnd)
    ys = _run(EvolutionTuner(population_size=16, seed=0))
    assert np.mean(ys[-50:]) < np.mean(ys[:16])


def test_mutation_changes_one_parameter():
    tuner = EvolutionTuner(population_size=4, seed=0, optimize_mode="minimize")
    tuner.update_search_space(SPACE)
    params = {}
    for i in range(4):
        params[i] = tuner.generate_parameters(i)
        tuner.receive_trial_result(i, params[i], sphere(params[i]))
    child = tuner.generate_parameters(4)
    diffs = [min(sum(child[k] != p[k] for k in SPACE) for p in params.values())]
    assert diffs[0] == 1
    assert len(tuner.population) == 3  # the loser of the tournament is removed


def test_busy_population_falls_back_to_random():
    tuner = EvolutionTuner(population_size=2, seed=0)
    tuner.update_search_space(SPACE)
    got = tuner.generate_multiple_parameters([0, 1, 2, 3])
    assert len(got) == 4


def test_failed_trial_is_replaced():
    tuner = EvolutionTuner(population_size=3, seed=0)
    tuner.update_search_space(SPACE)
    for i in range(3):
        tuner.generate_parameters(i)
    tuner.trial_end(0, False)
    assert len(tuner._running) == 2
    tuner.generate_parameters(3)  # refills the population with a random individual
    assert len(tuner._running) == 3


def test_nested_mutation_keeps_branch_consistent():
    space = {"m": {"_type": "choice", "_value": [
        {"_name": "a", "lr": {"_type": "loguniform", "_value": [1e-4, 1]}},
        {"_name": "b", "k": {"_type": "randint", "_value": [1, 4]}}]}}
    tuner = EvolutionTuner(population_size=4, seed=2)
    tuner.update_search_space(space)
    for i in range(40):
        p = tuner.generate_parameters(i)
        assert set(p["m"]) == ({"_name", "lr"} if p["m"]["_name"] == "a" else {"_name", "k"})
        tuner.receive_trial_result(i, p, float(i % 5))


def test_import_data():
    tuner = EvolutionTuner(population_size=4, seed=0)
    tuner.update_search_space(SPACE)
    tuner.import_data([{"parameter": {k: float(i) for k in SPACE}, "value": float(i)} for i in range(6)])
    assert len(tuner.population) == 4
    tuner.generate_parameters(0)


def test_class_args():
    check_class_args(EvolutionClassArgsValidator, {"optimize_mode": "minimize", "population_size": 100})
    with pytest.raises(ValueError, match="population_size"):
        check_class_args(EvolutionClassArgsValidator, {"population_size": 0})
    with pytest.raises(ValueError, match="optimize_mode"):
        check_class_args(EvolutionClassArgsValidator, {"optimize_mode": "up"})
