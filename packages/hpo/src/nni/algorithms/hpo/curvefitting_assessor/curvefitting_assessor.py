"""Curve Fitting Assessor: stop trials whose extrapolated learning curve falls short.

Builtin name ``Curvefitting``. An LPA (learning, predicting, assessing) algorithm: the
trial's intermediate results are extrapolated to epoch ``epoch_num`` with the ensemble of
:mod:`.modelfactory`, and the trial is stopped when the prediction is not strictly greater
than ``threshold`` times the best final performance seen so far.

Only for metrics that increase while training goes well (accuracy, not loss): the curve
families are increasing, saturating functions (Domhan et al., 2015).

Example config::

    assessor:
      name: Curvefitting
      classArgs:
        epoch_num: 20
        start_step: 6
        threshold: 0.95
        gap: 1
"""
from __future__ import annotations

import logging
from typing import Any

from nni.assessor import AssessResult, Assessor
from nni.utils import ClassArgsValidator, extract_scalar_history

from .modelfactory import CurveModelEnsemble

__all__ = ["CurvefittingAssessor", "CurvefittingClassArgsValidator"]

_logger = logging.getLogger(__name__)


class CurvefittingClassArgsValidator(ClassArgsValidator):
    """``epoch_num`` (required int 1..9999), ``start_step`` (int 0..9999), ``threshold``
    (number 0..9999), ``gap`` (int 1..9999)."""

    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(
            kwargs,
            required={"epoch_num": self.range("epoch_num", int, 1, 9999)},
            optional={
                "start_step": self.range("start_step", int, 0, 9999),
                "threshold": self.range("threshold", float, 0, 9999),
                "gap": self.range("gap", int, 1, 9999),
            },
        )


class CurvefittingAssessor(Assessor):
    """Predict the learning curve at ``epoch_num`` and stop trials that will not reach the best.

    Rule, as the docs state it: a trial is assessed when it has reported ``start_step``,
    ``start_step + gap``, ``start_step + 2 * gap``, ... intermediate results (Good at every other
    length). The assessor then predicts the value at epoch ``epoch_num`` (the first reported
    result is epoch 1); it returns Good when no prediction is possible (too few points, the
    fit did not converge) or when no trial has completed yet, Good when the prediction is
    strictly greater than ``threshold * best``, and Bad otherwise.

    ``best`` is the best final performance in history: the largest last intermediate result of
    the trials that ended successfully (the assessor sees intermediate results only). Once a
    trial has reported ``epoch_num`` results or more, its observed value at ``epoch_num``
    takes the place of the prediction.

    Args:
        epoch_num: Total number of epochs, the position predicted. Required in the docs'
            classArgs table; 20 when built in Python without it, as in the API reference.
        start_step: Assess only after this many intermediate results.
        threshold: Stop when the prediction is at most ``threshold`` times the best result
            (``threshold = 0.95`` and best 0.9: stop below or at 0.855).
        gap: Interval, in intermediate results, between two assessments.
    """

    class_args_validator = CurvefittingClassArgsValidator

    def __init__(self, epoch_num: int = 20, start_step: int = 6, threshold: float = 0.95, gap: int = 1):
        CurvefittingClassArgsValidator().validate_class_args(
            epoch_num=epoch_num, start_step=start_step, threshold=threshold, gap=gap
        )
        self.epoch_num = epoch_num
        self.start_step = start_step
        self.threshold = float(threshold)
        self.gap = gap
        self.completed_best_performance: float | None = None
        self.model = CurveModelEnsemble(target_pos=epoch_num)
        self._last_history: dict[str, list[float]] = {}

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """Update the best final performance with a successfully completed trial's last result."""
        history = self._last_history.pop(trial_job_id, None)
        if not success or not history:
            return
        final = history[-1]
        if final != final:  # NaN never becomes the best
            return
        if self.completed_best_performance is None or final > self.completed_best_performance:
            self.completed_best_performance = final
            _logger.debug("best final performance so far: %s (trial %s)", final, trial_job_id)

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        """Good or Bad for ``trial_job_id`` given all its intermediate results so far."""
        history = extract_scalar_history(trial_history)
        self._last_history[trial_job_id] = history
        steps = len(history)
        if steps < self.start_step or (steps - self.start_step) % self.gap != 0:
            return AssessResult.Good
        if self.completed_best_performance is None:
            return AssessResult.Good
        if steps >= self.epoch_num:
            predicted: float | None = history[self.epoch_num - 1]
        else:
            predicted = self.model.predict(history)
        if predicted is None:
            return AssessResult.Good
        limit = self.threshold * self.completed_best_performance
        _logger.debug("trial %s: predicted %s at epoch %s, limit %s", trial_job_id, predicted, self.epoch_num, limit)
        return AssessResult.Good if predicted > limit else AssessResult.Bad

    def predict(self, trial_history: list[Any]) -> float | None:
        """The predicted value at ``epoch_num`` for a history (``None``: no prediction)."""
        return self.model.predict(extract_scalar_history(trial_history))
