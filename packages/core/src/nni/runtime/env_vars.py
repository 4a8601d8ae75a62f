"""Environment variables that tell a trial where it runs (read when asked, never at import).

Trial side (set by the training service):

* ``NNI_PLATFORM`` -- ``local``, ``remote``, ... ; unset means *standalone* (no experiment).
* ``NNI_EXP_ID``, ``NNI_TRIAL_JOB_ID``, ``NNI_TRIAL_SEQ_ID`` -- ids of the experiment / trial.
* ``NNI_SYS_DIR`` -- trial folder holding ``parameter.cfg``.
* ``NNI_OUTPUT_DIR`` -- trial output folder; metrics go to ``$NNI_OUTPUT_DIR/.nni/metrics``.
* ``MULTI_PHASE`` -- ``true`` for a multi-phase trial.
* ``NNI_MANAGER_URL`` -- when set, the trial talks HTTP to the manager
  (:mod:`nni.runtime.platform.http`) instead of using files; ``NNI_MANAGER_TOKEN`` optional.

Dispatcher side: ``NNI_LOG_DIRECTORY``, ``NNI_CHECKPOINT_DIRECTORY``,
``NNI_INCLUDE_INTERMEDIATE_RESULTS``.
"""
from __future__ import annotations

import os

_FIELDS = ("platform", "exp_id", "trial_job_id", "sequence_id", "sys_dir", "output_dir",
           "multi_phase", "manager_url", "manager_token")


class TrialEnv:
    """The trial's environment variables, read once (immutable, compared by value).

    A plain class rather than a dataclass: ``dataclasses`` (and ``inspect`` under it) cost
    more than the rest of the trial API's imports, paid by every trial process.
    """

    __slots__ = _FIELDS

    def __init__(self, platform: str | None, exp_id: str | None, trial_job_id: str | None,
                 sequence_id: str | None, sys_dir: str | None, output_dir: str | None,
                 multi_phase: bool, manager_url: str | None, manager_token: str | None):
        values = (platform, exp_id, trial_job_id, sequence_id, sys_dir, output_dir, multi_phase,
                  manager_url, manager_token)
        for name, value in zip(_FIELDS, values):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("TrialEnv is immutable")

    def _astuple(self) -> tuple:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other) -> bool:
        return isinstance(other, TrialEnv) and self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        return "TrialEnv(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in _FIELDS) + ")"


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def trial_env() -> TrialEnv:
    env = os.environ
    return TrialEnv(
        platform=env.get("NNI_PLATFORM") or None,
        exp_id=env.get("NNI_EXP_ID"),
        trial_job_id=env.get("NNI_TRIAL_JOB_ID"),
        sequence_id=env.get("NNI_TRIAL_SEQ_ID"),
        sys_dir=env.get("NNI_SYS_DIR"),
        output_dir=env.get("NNI_OUTPUT_DIR") or env.get("NNI_SYS_DIR"),
        multi_phase=_flag(env.get("MULTI_PHASE")),
        manager_url=env.get("NNI_MANAGER_URL") or None,
        manager_token=env.get("NNI_MANAGER_TOKEN") or None,
    )


def flag(name: str) -> bool:
    """A boolean environment variable (``1``/``true``/``yes``/``on``)."""
    return _flag(os.environ.get(name))
