"""Trial and experiment states, defined once.

Every other module (the REST schema, the training-service contract, the manager's scheduler and
store, ``nnictl``, and the web UI through its served ``static/js/constants.js``) takes its status
names and status sets from here, so they cannot drift apart. The names are NNI's
(``TrialJobStatus`` and ``ExperimentStatus`` in nni_manager). Both enums are ``str`` subclasses:
a member compares equal to its name (``TrialJobStatus.RUNNING == "RUNNING"``), is stored as
that string in SQLite and is written as it in JSON.

Only the standard library is used here: ``import nni`` must stay light.
"""
from __future__ import annotations

from enum import Enum


class _Status(str, Enum):
    # str() and format() give the bare name ("RUNNING"), as strings read from REST/SQLite do.
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class TrialJobStatus(_Status):
    """Trial states."""

    UNKNOWN = "UNKNOWN"
    WAITING = "WAITING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    USER_CANCELED = "USER_CANCELED"
    SYS_CANCELED = "SYS_CANCELED"
    EARLY_STOPPED = "EARLY_STOPPED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


#: States a trial never leaves.
FINAL_STATES = frozenset(
    {
        TrialJobStatus.SUCCEEDED,
        TrialJobStatus.FAILED,
        TrialJobStatus.USER_CANCELED,
        TrialJobStatus.SYS_CANCELED,
        TrialJobStatus.EARLY_STOPPED,
    }
)
#: States of a trial that holds (or waits for) a slot of the training service.
ACTIVE_STATES = frozenset({TrialJobStatus.WAITING, TrialJobStatus.RUNNING})
#: States in which a trial may still be running somewhere (UNKNOWN: its platform lost track of it).
UNFINISHED_STATES = frozenset({TrialJobStatus.WAITING, TrialJobStatus.RUNNING, TrialJobStatus.UNKNOWN})


class ExperimentStatus(_Status):
    """Experiment states (``GET /check-status``).

    INITIALIZED -> RUNNING -> NO_MORE_TRIAL (budget reached or tuner exhausted, running trials
    finish) -> DONE; STOPPING -> STOPPED on request; ERROR when the dispatcher or the training
    service fails; VIEWED while ``nnictl view`` serves a stopped experiment read-only.
    """

    INITIALIZED = "INITIALIZED"
    RUNNING = "RUNNING"
    NO_MORE_TRIAL = "NO_MORE_TRIAL"
    DONE = "DONE"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ERROR = "ERROR"
    VIEWED = "VIEWED"


#: States in which the manager schedules or still supervises trials (its budget may be raised).
SCHEDULING_STATES = frozenset({ExperimentStatus.RUNNING, ExperimentStatus.NO_MORE_TRIAL, ExperimentStatus.DONE})
#: States of an experiment whose manager process is meant to be alive and working on it.
LIVE_STATES = frozenset(
    {ExperimentStatus.INITIALIZED, ExperimentStatus.RUNNING, ExperimentStatus.NO_MORE_TRIAL, ExperimentStatus.STOPPING}
)
#: States recorded when no manager works on the experiment any more.
ENDED_STATES = frozenset({ExperimentStatus.DONE, ExperimentStatus.STOPPED, ExperimentStatus.ERROR})
#: States in which the manager refuses to start new trials.
HALTED_STATES = frozenset({ExperimentStatus.STOPPING, ExperimentStatus.STOPPED, ExperimentStatus.ERROR})


class TensorboardStatus(_Status):
    """States of a TensorBoard task (``/tensorboard``)."""

    DOWNLOADING_DATA = "DOWNLOADING_DATA"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    ERROR = "ERROR"
    FAIL_DOWNLOAD_DATA = "FAIL_DOWNLOAD_DATA"


def names(enum: type[Enum]) -> list[str]:
    """The plain status names of ``enum``, in declaration order (for schemas and JSON)."""
    return [m.value for m in enum]
