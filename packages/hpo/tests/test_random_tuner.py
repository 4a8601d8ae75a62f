"""RandomTuner: contract, distributions, dedup and exhaustion of finite spaces."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nni.algorithms.hpo.random_tuner import RandomClassArgsValidator, RandomTuner
from nni.testing import TunerContract
from nni.utils import NoMoreTrialError, check_class_args


class TestRandomContract(TunerContract):
    supported_types = TunerContract.ALL_TYPES
    supports_nested_choice = True
    exhausts_finite_spaces = True

    def make_tuner(self):
        return RandomTuner(seed=0)


def test_finite_space_dedup_then_exhausted():
    space = {"a": {"_type": "choice", "_value": [{"_name": "x", "k": {"_type": "randint", "_value": [0, 3]}}, {"_name": "y"}]},
             "q": {"_type": "quniform", "_value": [2, 10, 5]}}
    tuner = RandomTuner(seed=3)
    tuner.update_search_space(space)
    seen = {json.dumps(tuner.generate_parameters(i), sort_keys=True) for i in range(12)}
    assert len(seen) == 12  # (3 + 1) * 3
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(12)


def test_import_counts_as_sent():
    tuner = RandomTuner(seed=0)
    tuner.update_search_space({"a": {"_type": "choice", "_value": [1, 2, 3]}})
    tuner.import_data([{"parameter": {"a": 2}, "value": 0.1}])
    got = sorted(tuner.generate_parameters(i)["a"] for i in range(2))
    assert got == [1, 3]
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(3)


def test_distributions():
    space = {"lu": {"_type": "loguniform", "_value": [1e-4, 1]}, "n": {"_type": "normal", "_value": [5, 2]},
             "u": {"_type": "uniform", "_value": [0, 1]}}
    tuner = RandomTuner(seed=1)
    tuner.update_search_space(space)
    ps = [tuner.generate_parameters(i) for i in range(2000)]
    logs = np.log10([p["lu"] for p in ps])
    assert abs(np.mean(logs) + 2) < 0.1  # log-uniform: mean of log10 in the middle
    n = np.array([p["n"] for p in ps])
    assert abs(n.mean() - 5) < 0.2 and abs(n.std() - 2) < 0.2
    assert all(0 <= p["u"] <= 1 for p in ps)


def test_infinite_space_never_exhausts():
    tuner = RandomTuner(seed=0)
    tuner.update_search_space({"x": {"_type": "uniform", "_value": [0, 1]}})
    assert len({tuner.generate_parameters(i)["x"] for i in range(50)}) == 50


def test_bad_class_args():
    with pytest.raises(ValueError, match="seed"):
        check_class_args(RandomClassArgsValidator, {"seed": -1})
    check_class_args(RandomClassArgsValidator, {"optimize_mode": "maximize", "seed": 3})
    assert math.isfinite(1.0)
