"""Median Stop Assessor (builtin ``Medianstop``).

The median stopping rule of Google Vizier (Golovin et al., 2017): stop a pending trial X at
step S if X's best objective value by step S is strictly worse than the median value of the
running averages of all completed trials' objectives reported up to step S.

Example config::

    assessor:
      name: Medianstop
      classArgs:
        optimize_mode: maximize
        start_step: 5
"""
from __future__ import annotations

import logging
import math
import statistics
from typing import Any

from nni.assessor import AssessResult, Assessor
from nni.utils import ClassArgsValidator, OptimizeMode, extract_scalar_history

__all__ = ["MedianstopAssessor", "MedianstopClassArgsValidator"]

_logger = logging.getLogger(__name__)


class MedianstopClassArgsValidator(ClassArgsValidator):
    """``optimize_mode`` (maximize | minimize) and ``start_step`` (int 0..9999), both optional."""

    def validate_class_args(self, **kwargs: Any) -> None:
        self.check(
            kwargs,
            optional={
                "optimize_mode": self.choices("optimize_mode", "maximize", "minimize"),
                "start_step": self.range("start_step", int, 0, 9999),
            },
        )


class MedianstopAssessor(Assessor):
    """Stop a trial whose best result so far is strictly worse than the completed trials' median.

    At step ``S`` (the trial has reported ``S`` intermediate results, ``S >= start_step``):

    * ``best`` = the trial's best value among its ``S`` results (largest when maximizing,
      smallest when minimizing);
    * for every trial that ended successfully with at least ``S`` results, its running
      average at step ``S`` = the mean of its first ``S`` results;
    * Bad when ``best`` is strictly worse than the median of those running averages
      (``statistics.median``: the mean of the two middle values for an even count), else Good.

    Good when ``S < start_step`` or no completed trial has ``S`` results. Trials that failed,
    were killed or were early-stopped are not "completed" and do not count. NaN results are
    ignored (a running average skips them).

    Args:
        optimize_mode: ``'maximize'`` stops trials with smaller values, ``'minimize'`` trials
            with larger values.
        start_step: A trial is judged only after it reported this many intermediate results.
    """

    class_args_validator = MedianstopClassArgsValidator

    def __init__(self, optimize_mode: str = "maximize", start_step: int = 0):
        MedianstopClassArgsValidator().validate_class_args(optimize_mode=optimize_mode, start_step=start_step)
        self.optimize_mode = OptimizeMode(optimize_mode)
        self.start_step = start_step
        self._running_history: dict[str, list[float]] = {}
        self._completed_avg_history: dict[str, list[float]] = {}

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """Keep the running averages of a successfully completed trial; forget the others."""
        history = self._running_history.pop(trial_job_id, None)
        if not success or not history:
            return
        averages, total, count = [], 0.0, 0
        for value in history:
            if not math.isnan(value):
                total += value
                count += 1
            averages.append(total / count if count else math.nan)
        self._completed_avg_history[trial_job_id] = averages

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        """Good or Bad for ``trial_job_id`` given all its intermediate results so far."""
        history = extract_scalar_history(trial_history)
        self._running_history[trial_job_id] = history
        step = len(history)
        values = [v for v in history if not math.isnan(v)]
        if step < self.start_step or not values:
            return AssessResult.Good
        averages = [avg[step - 1] for avg in self._completed_avg_history.values() if len(avg) >= step]
        averages = [a for a in averages if not math.isnan(a)]
        if not averages:
            return AssessResult.Good
        median = statistics.median(averages)
        if self.optimize_mode is OptimizeMode.Maximize:
            best = max(values)
            worse = best < median
        else:
            best = min(values)
            worse = best > median
        _logger.debug(
            "trial %s step %d: best %s, median of %d completed %s", trial_job_id, step, best, len(averages), median
        )
        return AssessResult.Bad if worse else AssessResult.Good
