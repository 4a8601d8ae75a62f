"""The experiment's budget and status machine: what may run now, and when the run is over.

Part of the scheduler (:mod:`nni.server.scheduler` coordinates; :mod:`nni.server.routing`
talks to the dispatcher; the store persists; :mod:`nni.server.resume` replays). Nothing here
does I/O: :class:`Budget` keeps the trial table (counts in O(1)), the RUNNING clock and the
limits of the config, and answers the scheduler's questions.

Budgets follow the docs: ``maxTrialNumber`` counts created trials (trials re-queued after a
manager crash, a dispatcher death or the loss of their platform replace the interrupted ones and do not count twice);
``maxExperimentDuration`` counts time spent RUNNING (the clock pauses under NO_MORE_TRIAL).
Reaching either stops the creation of trials; running trials go on.

Experiment states: INITIALIZED -> RUNNING -> NO_MORE_TRIAL (budget reached or tuner exhausted,
running trials finish) -> DONE; STOPPING -> STOPPED on request; ERROR when the dispatcher or the
training service fails. Raising a budget of a NO_MORE_TRIAL / DONE experiment makes it RUNNING
again (:meth:`Budget.next_status`).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

from nni.runtime.states import ACTIVE_STATES, FINAL_STATES, ExperimentStatus


class TrialRecord:
    """What the scheduler remembers of one trial (the store has the rest)."""

    __slots__ = ("id", "sequence_id", "status", "parameter", "parameter_id", "counted", "final_reported")

    def __init__(self, tid: str, seq: int, status: str, parameter: str, parameter_id: Any, counted: bool = True) -> None:
        self.id = tid
        self.sequence_id = seq
        self.status = status
        self.parameter = parameter
        self.parameter_id = parameter_id
        self.counted = counted
        self.final_reported = False


class Budget:
    """Trial table, RUNNING clock and limits of one experiment.

    Args:
        config: returns the current canonical config (it changes with updates).
        exec_base: seconds already spent RUNNING (a resumed experiment's ``execDuration``).
    """

    def __init__(self, config: Callable[[], dict], exec_base: float = 0.0) -> None:
        self._config = config
        self.trials: dict[str, TrialRecord] = {}
        self._active_ids: set[str] = set()
        self._waiting_ids: set[str] = set()  # submitted, not started by the training service yet
        self._counted_n = 0
        self._run_started: Optional[float] = None  # monotonic time RUNNING began
        self.exec_base = exec_base  # seconds RUNNING before _run_started

    # ----- limits of the config -----

    @property
    def concurrency(self) -> int:
        return int(self._config().get("trialConcurrency") or 1)

    @property
    def max_trial_number(self) -> Optional[int]:
        v = self._config().get("maxTrialNumber")
        return None if v is None else int(v)

    @property
    def max_duration(self) -> Optional[float]:
        v = self._config().get("maxExperimentDuration")
        return None if v is None else float(v)

    # ----- the RUNNING clock -----

    def exec_duration(self) -> float:
        extra = time.monotonic() - self._run_started if self._run_started is not None else 0.0
        return self.exec_base + extra

    def status_changed(self, old: str, new: str) -> None:
        """Start or pause the clock: ``execDuration`` counts RUNNING time only."""
        if old == ExperimentStatus.RUNNING and new != ExperimentStatus.RUNNING and self._run_started is not None:
            self.exec_base += time.monotonic() - self._run_started
            self._run_started = None
        if new == ExperimentStatus.RUNNING and self._run_started is None:
            self._run_started = time.monotonic()

    # ----- the trial table -----

    def track(self, t: TrialRecord) -> None:
        """Add ``t``, keeping the active set and the counted total in step (O(1) checks)."""
        self.trials[t.id] = t
        if t.status in ACTIVE_STATES:
            self._active_ids.add(t.id)
        if t.status == "WAITING":
            self._waiting_ids.add(t.id)
        if t.counted:
            self._counted_n += 1

    def set_trial_status(self, t: TrialRecord, status: str) -> bool:
        """Record ``t``'s new status; True when it had been waiting for the platform until now."""
        t.status = status
        if status in FINAL_STATES:
            self._active_ids.discard(t.id)
        if t.id in self._waiting_ids:
            self._waiting_ids.discard(t.id)
            return True
        return False

    def uncount(self, t: TrialRecord) -> None:
        """``t`` no longer counts toward ``maxTrialNumber`` (interrupted, re-queued)."""
        if t.counted:
            t.counted = False
            self._counted_n -= 1

    def active(self) -> int:
        return len(self._active_ids)

    def waiting(self) -> int:
        return len(self._waiting_ids)

    # ----- questions -----

    def left(self) -> Optional[int]:
        """Trials that may still be created (``None``: no ``maxTrialNumber``)."""
        if self.max_trial_number is None:
            return None
        return self.max_trial_number - self._counted_n

    def duration_reached(self) -> bool:
        return self.max_duration is not None and self.exec_duration() >= self.max_duration

    def closed(self) -> bool:
        """No trial may be created any more (a budget is reached)."""
        left = self.left()
        return self.duration_reached() or (left is not None and left <= 0)

    def may_start(self) -> bool:
        """A ready trial may be created now (a free slot and budget left)."""
        return self.active() < self.concurrency and not self.closed()

    def to_request(self, in_flight: int, batch: int) -> int:
        """Trials to ask of the tuner now: free slots minus those already on their way, within
        ``maxTrialNumber``, and at most ``batch`` asked, queued or not started at once (so a
        huge ``trialConcurrency`` costs nothing)."""
        want = self.concurrency - self.active() - in_flight
        left = self.left()
        if left is not None:
            want = min(want, left - in_flight)
        return min(want, batch - in_flight - self.waiting())

    def next_status(self, status: str, budget_closed: bool, no_more_from_tuner: bool, custom_pending: bool) -> Optional[str]:
        """The status a scheduling experiment (RUNNING / NO_MORE_TRIAL / DONE) moves to, or None."""
        if not (budget_closed or no_more_from_tuner):
            return None if status == ExperimentStatus.RUNNING else ExperimentStatus.RUNNING
        if self.active() == 0 and not custom_pending:
            return None if status == ExperimentStatus.DONE else ExperimentStatus.DONE
        return None if status == ExperimentStatus.NO_MORE_TRIAL else ExperimentStatus.NO_MORE_TRIAL
