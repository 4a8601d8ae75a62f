import statistics

import pytest

from nni.assessor import AssessResult, Assessor
from nni.testing import AssessorContract, ReferenceRandomTuner, SearchSpaceMismatch, TunerContract, check_value
from nni.testing.scenario import SumModAssessor
from nni.utils import extract_scalar_history


class TestReferenceRandomTuner(TunerContract):
    supports_nested_choice = True
    exhausts_finite_spaces = True

    def make_tuner(self):
        return ReferenceRandomTuner(seed=0)


class ChoiceOnlyTuner(ReferenceRandomTuner):
    def update_search_space(self, search_space):
        for key, spec in search_space.items():
            if spec["_type"] != "choice":
                raise ValueError(f"search_space.{key}: only choice is supported")
        super().update_search_space(search_space)


class TestChoiceOnlyClaims(TunerContract):
    supported_types = {"choice"}

    def make_tuner(self):
        return ChoiceOnlyTuner(seed=1)


class MedianAssessor(Assessor):
    """Stops a trial whose best value so far is below the median of finished trials' final values."""

    def __init__(self, start_step=3):
        self.start_step = start_step
        self.finished = []
        self.last = {}

    def assess_trial(self, trial_job_id, trial_history):
        values = extract_scalar_history(trial_history)
        self.last[trial_job_id] = values[-1]
        if len(values) < self.start_step or not self.finished:
            return AssessResult.Good
        return AssessResult.Good if max(values) >= statistics.median(self.finished) else AssessResult.Bad

    def trial_end(self, trial_job_id, success):
        if success and trial_job_id in self.last:
            self.finished.append(self.last[trial_job_id])


class TestMedianAssessorContract(AssessorContract):
    kills_clearly_bad_trials = True

    def make_assessor(self):
        return MedianAssessor()


class TestSumModAssessorContract(AssessorContract):
    def make_assessor(self):
        return SumModAssessor()


# --- the suite catches wrong tuners --------------------------------------------------------------

class OutOfRangeTuner(ReferenceRandomTuner):
    def generate_parameters(self, parameter_id, **kwargs):
        params = super().generate_parameters(parameter_id, **kwargs)
        return {k: (v + 100 if isinstance(v, float) else v) for k, v in params.items()}


class FloatRandintTuner(ReferenceRandomTuner):
    def generate_parameters(self, parameter_id, **kwargs):
        return {k: float(v) if isinstance(v, int) else v for k, v in super().generate_parameters(parameter_id, **kwargs).items()}


@pytest.mark.parametrize("tuner_cls,type_name", [(OutOfRangeTuner, "uniform"), (FloatRandintTuner, "randint")])
def test_suite_detects_wrong_values(tuner_cls, type_name):
    class Suite(TunerContract):
        def make_tuner(self):
            return tuner_cls(seed=0)

    with pytest.raises(SearchSpaceMismatch):
        Suite().test_single_type_values_in_range(type_name)


def test_suite_detects_missing_exhaustion():
    class Suite(TunerContract):
        exhausts_finite_spaces = True

        def make_tuner(self):
            return ReferenceRandomTuner(seed=0, max_enumerate=1)  # never enumerates

    with pytest.raises(AssertionError):
        Suite().test_exhausts_finite_space()


@pytest.mark.parametrize("spec,value,ok", [
    ({"_type": "quniform", "_value": [2, 10, 5]}, 2, True),
    ({"_type": "quniform", "_value": [2, 10, 5]}, 5.0, True),
    ({"_type": "quniform", "_value": [2, 10, 5]}, 7, False),
    ({"_type": "randint", "_value": [1, 6]}, 6, False),
    ({"_type": "choice", "_value": [16, 32]}, 16.0, False),
    ({"_type": "choice", "_value": [0.5, 1]}, 0.5, True),
    ({"_type": "loguniform", "_value": [0.001, 0.1]}, 0.0001, False),
    ({"_type": "qnormal", "_value": [0, 1, 0.5]}, -1.5, True),
    ({"_type": "choice", "_value": [{"_name": "a", "k": {"_type": "choice", "_value": [1]}}]}, {"_name": "a", "k": 1}, True),
    ({"_type": "choice", "_value": [{"_name": "a", "k": {"_type": "choice", "_value": [1]}}]}, {"_name": "a"}, False),
])
def test_check_value(spec, value, ok):
    if ok:
        check_value(spec, value, "p")
    else:
        with pytest.raises(SearchSpaceMismatch):
            check_value(spec, value, "p")
