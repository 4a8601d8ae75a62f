"""The protocol scenario of NNI's own integration test ("naive" tuner / assessor / trial).

* :class:`NaturalsTuner` gives the parameters ``{"x": 1}``, ``{"x": 2}``, ... in order and
  records every final result it receives (``results``: parameter id -> value).
* :class:`SumModAssessor` judges a trial ``Bad`` as soon as the sum of its intermediate results
  ``% 11 == 1`` (``modulus`` / ``remainder`` configurable).
* :data:`TRIAL_SCRIPT` is a trial that reports ``x, x**2, ..., x**steps`` as intermediate
  results and ``x**steps`` ... (see :func:`expected_kill_step`) as the final one.

Used by core's dispatcher tests and by the engine's end-to-end tests.
"""
from __future__ import annotations

from typing import Any

from ..assessor import AssessResult, Assessor
from ..tuner import Tuner
from ..utils import ClassArgsValidator, NoMoreTrialError, extract_scalar_reward


class NaturalsTuner(Tuner):
    """``{"x": 1}``, ``{"x": 2}``, ...; ``limit`` naturals at most (then NoMoreTrialError)."""

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self.next_x = 1
        self.results: dict[Any, Any] = {}
        self.ended: dict[Any, bool] = {}
        self.search_space: Any = None

    def update_search_space(self, search_space: Any) -> None:
        self.search_space = search_space

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict:
        if self.limit is not None and self.next_x > self.limit:
            raise NoMoreTrialError()
        x = self.next_x
        self.next_x += 1
        return {"x": x}

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        self.results[parameter_id] = value

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        self.ended[parameter_id] = success


class SumModAssessorValidator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(kwargs, optional={"modulus": self.range("modulus", int, 2, None),
                                     "remainder": self.range("remainder", int, 0, None)})


class SumModAssessor(Assessor):
    """``Bad`` when ``sum(history) % modulus == remainder`` (default 11 and 1)."""

    class_args_validator = SumModAssessorValidator

    def __init__(self, modulus: int = 11, remainder: int = 1):
        self.modulus = modulus
        self.remainder = remainder

    def assess_trial(self, trial_job_id: str, trial_history: list) -> AssessResult:
        total = sum(extract_scalar_reward(v) for v in trial_history)
        return AssessResult.Bad if total % self.modulus == self.remainder else AssessResult.Good


def trial_values(x: int, steps: int = 10) -> list[int]:
    """The intermediate results of the scenario trial with parameter ``x``."""
    return [x**i for i in range(1, steps + 1)]


def expected_kill_step(x: int, steps: int = 10, modulus: int = 11, remainder: int = 1) -> int | None:
    """How many intermediate results the trial ``x`` reports before the assessor says Bad
    (``None``: never)."""
    total = 0
    for i, v in enumerate(trial_values(x, steps), start=1):
        total += v
        if total % modulus == remainder:
            return i
    return None


TRIAL_SCRIPT = '''\
import time
import nni

params = nni.get_next_parameter()
x = params["x"]
for i in range(1, STEPS + 1):
    nni.report_intermediate_result(x ** i)
    time.sleep(DELAY)
nni.report_final_result(x ** STEPS)
'''


def trial_script(steps: int = 10, delay: float = 0.0) -> str:
    """Source of the scenario trial."""
    return TRIAL_SCRIPT.replace("STEPS", str(steps)).replace("DELAY", repr(delay))
