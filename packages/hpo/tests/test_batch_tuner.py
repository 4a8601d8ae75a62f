"""BatchTuner: contract (choice only), order, exhaustion, shape checks."""
from __future__ import annotations

import pytest

from nni.algorithms.hpo.batch_tuner import BatchClassArgsValidator, BatchTuner
from nni.utils import NoMoreTrialError, check_class_args

SPACE = {"combine_params": {"_type": "choice", "_value": [
    {"optimizer": "Adam", "learning_rate": 0.00001},
    {"optimizer": "Adam", "learning_rate": 0.0001},
    {"optimizer": "SGD", "learning_rate": 0.01}]}}


def test_yields_in_order_then_no_more():
    tuner = BatchTuner()
    tuner.update_search_space(SPACE)
    got = tuner.generate_multiple_parameters([0, 1, 2, 3])
    assert got == SPACE["combine_params"]["_value"]
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(4)
    tuner.receive_trial_result(0, got[0], 0.5)
    tuner.receive_trial_result(1, got[1], {"default": 0.5})
    tuner.trial_end(2, False)


def test_returned_configs_are_copies():
    tuner = BatchTuner()
    tuner.update_search_space(SPACE)
    p = tuner.generate_parameters(0)
    p["optimizer"] = "changed"
    assert SPACE["combine_params"]["_value"][0]["optimizer"] == "Adam"


def test_import_skips_done():
    tuner = BatchTuner()
    tuner.update_search_space(SPACE)
    tuner.import_data([{"parameter": {"optimizer": "Adam", "learning_rate": 0.0001}, "value": 1}])
    assert [p["learning_rate"] for p in tuner.generate_multiple_parameters([0, 1, 2])] == [0.00001, 0.01]


@pytest.mark.parametrize("space, words", [
    ({"x": {"_type": "choice", "_value": [1]}}, "combine_params"),
    ({"combine_params": {"_type": "uniform", "_value": [0, 1]}}, "uniform"),
    ({"combine_params": {"_type": "choice", "_value": []}}, "non-empty"),
])
def test_bad_space(space, words):
    with pytest.raises(ValueError, match=words):
        BatchTuner().update_search_space(space)
    assert BatchTuner().is_valid(space) is None
    assert BatchTuner().is_valid(SPACE) == SPACE["combine_params"]["_value"]


def test_class_args():
    check_class_args(BatchClassArgsValidator, {})
    with pytest.raises(ValueError, match="seed"):
        check_class_args(BatchClassArgsValidator, {"seed": 1})
