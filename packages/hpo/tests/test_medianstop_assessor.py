"""Median Stop assessor: the median stopping rule on running averages of completed trials."""
from __future__ import annotations

import pytest

from nni.assessor import AssessResult
from nni.utils import check_class_args

from nni.algorithms.hpo.medianstop_assessor import MedianstopAssessor, MedianstopClassArgsValidator


def _complete(assessor, trial_id, history, success=True):
    assessor.assess_trial(trial_id, history)
    assessor.trial_end(trial_id, success)


def _three_completed(assessor):
    # running averages at step 2: 1.5, 2.5, 0.75 -> median 1.5
    _complete(assessor, "A", [1, 2, 3, 4])
    _complete(assessor, "B", [2, 3, 4, 5])
    _complete(assessor, "C", [0.5, 1, 1.5, 2])


def test_stops_a_trial_below_the_median_and_keeps_one_above():
    assessor = MedianstopAssessor()
    _three_completed(assessor)
    assert assessor.assess_trial("X", [0.2, 1.0]) is AssessResult.Bad  # best 1.0 < 1.5
    assert assessor.assess_trial("Y", [0.1, 1.6]) is AssessResult.Good  # best 1.6 > 1.5
    assert assessor.assess_trial("Z", [1.5, 0.0]) is AssessResult.Good  # equal is not strictly worse
    # step 3: running averages 2, 3, 1 -> median 2; the best value so far counts, not the last
    assert assessor.assess_trial("Y", [0.1, 2.5, 0.3]) is AssessResult.Good
    assert assessor.assess_trial("X", [0.2, 1.0, 1.9]) is AssessResult.Bad


def test_minimize_mirrors_the_rule():
    assessor = MedianstopAssessor(optimize_mode="minimize")
    _three_completed(assessor)
    assert assessor.assess_trial("X", [3.0, 1.6]) is AssessResult.Bad  # best (smallest) 1.6 > 1.5
    assert assessor.assess_trial("Y", [3.0, 1.4]) is AssessResult.Good


def test_even_number_of_completed_trials_uses_the_mean_of_the_middle_two():
    assessor = MedianstopAssessor()
    _complete(assessor, "A", [1.0])
    _complete(assessor, "B", [2.0])
    assert assessor.assess_trial("X", [1.4]) is AssessResult.Bad  # median 1.5
    assert assessor.assess_trial("Y", [1.6]) is AssessResult.Good


def test_good_before_start_step_and_without_comparable_completed_trials():
    assessor = MedianstopAssessor(start_step=3)
    _three_completed(assessor)
    assert assessor.assess_trial("X", [0.0]) is AssessResult.Good
    assert assessor.assess_trial("X", [0.0, 0.0]) is AssessResult.Good
    assert assessor.assess_trial("X", [0.0, 0.0, 0.0]) is AssessResult.Bad
    # no completed trial reported 5 results: nothing to compare with
    assert assessor.assess_trial("X", [0.0] * 5) is AssessResult.Good
    assert MedianstopAssessor().assess_trial("first", [0.0, 0.0]) is AssessResult.Good


def test_only_successfully_completed_trials_count():
    assessor = MedianstopAssessor()
    _complete(assessor, "good", [0.1, 0.1])
    _complete(assessor, "failed", [10, 10], success=False)
    _complete(assessor, "stopped", [10, 10], success=False)
    assert assessor.assess_trial("X", [0.2, 0.2]) is AssessResult.Good


def test_dict_metrics_and_nan():
    assessor = MedianstopAssessor()
    _complete(assessor, "A", [{"default": 1.0, "loss": 3}, {"default": float("nan")}, {"default": 3.0}])
    # running averages of A skip NaN: 1, 1, 2
    assert assessor.assess_trial("X", [{"default": 0.5}, {"default": 0.9}]) is AssessResult.Bad
    assert assessor.assess_trial("Y", [{"default": float("nan")}, {"default": 1.2}]) is AssessResult.Good
    assert assessor.assess_trial("Z", [float("nan")]) is AssessResult.Good
    with pytest.raises(ValueError, match="default"):
        assessor.assess_trial("W", [{"acc": 1}])


def test_class_args_validator():
    assert MedianstopAssessor.class_args_validator is MedianstopClassArgsValidator
    check_class_args(MedianstopClassArgsValidator, {"optimize_mode": "maximize", "start_step": 5})
    check_class_args(MedianstopClassArgsValidator, {})
    for args, key in [({"optimize_mode": "up"}, "optimize_mode"), ({"start_step": -1}, "start_step"),
                      ({"start_step": 1.5}, "start_step"), ({"gap": 1}, "gap")]:
        with pytest.raises(ValueError, match=rf"assessor\.classArgs\.{key}"):
            check_class_args(MedianstopClassArgsValidator, args, "assessor.classArgs")
    with pytest.raises(ValueError, match="start_step"):
        MedianstopAssessor(start_step=-2)


def test_registered_as_builtin_assessor():
    from nni.runtime import registry

    assert registry.load_class("assessor", "Medianstop") is MedianstopAssessor
    assert registry.load_validator("assessor", "Medianstop") is MedianstopClassArgsValidator


from nni.testing import AssessorContract  # noqa: E402


class TestMedianstopContract(AssessorContract):
    kills_clearly_bad_trials = True

    def make_assessor(self):
        return MedianstopAssessor(optimize_mode="maximize", start_step=2)


class TestMedianstopMinimizeContract(AssessorContract):
    maximize = False
    kills_clearly_bad_trials = True

    def make_assessor(self):
        return MedianstopAssessor(optimize_mode="minimize")
