"""Limits of the budget fields, checked the same way on every path: config load, ``nnictl
update``, the REST update and the Python API (issue 11).

``trialConcurrency`` and ``maxTrialNumber`` are integers in ``[1, 2**31 - 1]`` (a large
concurrency is fine: the manager asks the tuner only for what the platform can start now);
durations are positive and at most 100 years. Each check raises :class:`ConfigError`, one line
naming the field and the limit.
"""
from __future__ import annotations

from typing import Any, Optional

from .base import MAX_DURATION_SECONDS, MAX_TRIAL_CONCURRENCY, MAX_TRIAL_NUMBER, ConfigError, check_int, parse_duration

__all__ = [
    "MAX_TRIAL_CONCURRENCY", "MAX_TRIAL_NUMBER", "MAX_DURATION_SECONDS",
    "check_trial_concurrency", "check_max_trial_number", "check_duration",
]


def check_trial_concurrency(value: Any, field: str = "trialConcurrency") -> int:
    """A valid ``trialConcurrency`` (int, 1 .. 2**31-1)."""
    return check_int(value, field, 1, MAX_TRIAL_CONCURRENCY)


def check_max_trial_number(value: Any, field: str = "maxTrialNumber") -> Optional[int]:
    """A valid ``maxTrialNumber`` (int, 1 .. 2**31-1) or None (no limit)."""
    return None if value is None else check_int(value, field, 1, MAX_TRIAL_NUMBER)


def check_duration(value: Any, field: str = "maxExperimentDuration") -> Optional[float]:
    """Seconds for a duration (``'2h'`` or a number of seconds, at most 100 years), or None."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as err:
        raise ConfigError(field, str(err)) from None
