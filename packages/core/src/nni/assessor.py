"""Base class of assessors (``nni.assessor.Assessor``) and :class:`AssessResult`.

An assessor looks at the intermediate results of a running trial and says whether it is
worth continuing. ``Bad`` is a hint that the trial should be killed; the dispatcher then sends
``KillTrialJob`` and the trial ends as ``EARLY_STOPPED``.
"""
from __future__ import annotations

from enum import Enum
from typing import Any

from .recoverable import Recoverable

__all__ = ["AssessResult", "Assessor"]


class AssessResult(Enum):
    """``Good`` (keep running) or ``Bad`` (stop); ``bool(result)`` is its value."""

    Good = True
    Bad = False

    def __bool__(self) -> bool:
        return bool(self.value)


class Assessor(Recoverable):
    """Base class of assessors; override :meth:`assess_trial`.

    Guarantees about ``trial_history``: it is never empty and each call for a trial is longer
    than the previous one; it is not called for every update, and earlier values may change on
    a retry. Returning a plain ``bool`` is accepted (True = Good).
    """

    def assess_trial(self, trial_job_id: str, trial_history: list[Any]) -> AssessResult:
        """Judge trial ``trial_job_id`` from its intermediate results so far."""
        raise NotImplementedError("Assessor: override assess_trial()")

    def trial_end(self, trial_job_id: str, success: bool) -> None:
        """Trial ``trial_job_id`` ended; ``success`` only when it SUCCEEDED."""

    def _on_exit(self) -> None:
        """Called once when the dispatcher stops normally."""

    def _on_error(self) -> None:
        """Called once when the dispatcher stops because of an error."""
