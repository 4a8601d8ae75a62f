"""Records returned by :class:`nni.experiment.Experiment` (NNI's ``nni.experiment`` data classes).

They decode the REST shapes of :mod:`nni.runtime.rest_api`: metric ``data`` and export
``value`` travel as JSON strings and are decoded here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

__all__ = ["TrialResult", "TrialMetricData", "TrialHyperParameters", "TrialJob"]


def _decode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@dataclass
class TrialResult:
    """One line of ``export_data()``: the parameters of a trial and its final result."""

    parameter: Any
    value: Any
    trialJobId: str

    @classmethod
    def from_json(cls, d: dict) -> "TrialResult":
        return cls(d.get("parameter"), _decode(d.get("value")), d.get("trialJobId"))


@dataclass
class TrialMetricData:
    """One reported metric (``type`` FINAL or PERIODICAL; ``parameterId`` is a string)."""

    timestamp: int
    trialJobId: str
    parameterId: Optional[str]
    type: str
    sequence: int
    data: Any

    @classmethod
    def from_json(cls, d: dict) -> "TrialMetricData":
        return cls(d.get("timestamp"), d.get("trialJobId"), d.get("parameterId"), d.get("type"), d.get("sequence"), _decode(d.get("data")))


@dataclass
class TrialHyperParameters:
    parameter_id: Any
    parameter_source: Optional[str]
    parameters: Any
    parameter_index: int = 0

    @classmethod
    def from_json(cls, text: Any) -> "TrialHyperParameters":
        d = _decode(text)
        if not isinstance(d, dict):
            return cls(None, None, d, 0)
        return cls(d.get("parameter_id"), d.get("parameter_source"), d.get("parameters"), d.get("parameter_index", 0))


@dataclass
class TrialJob:
    """A trial as ``list_trial_jobs()`` / ``get_trial_job()`` return it."""

    trialJobId: str
    status: str
    sequenceId: Optional[int] = None
    hyperParameters: list = field(default_factory=list)
    logPath: Optional[str] = None
    startTime: Optional[int] = None
    endTime: Optional[int] = None
    finalMetricData: list = field(default_factory=list)
    stderrPath: Optional[str] = None
    message: Optional[str] = None
    platform: Optional[str] = None  # the platform that ran it (hybrid experiments have several)

    @classmethod
    def from_json(cls, d: dict) -> "TrialJob":
        return cls(
            trialJobId=d.get("trialJobId"),
            status=d.get("status"),
            sequenceId=d.get("sequenceId"),
            hyperParameters=[TrialHyperParameters.from_json(h) for h in d.get("hyperParameters") or []],
            logPath=d.get("logPath"),
            startTime=d.get("startTime"),
            endTime=d.get("endTime"),
            finalMetricData=[TrialMetricData.from_json(m) for m in d.get("finalMetricData") or []],
            stderrPath=d.get("stderrPath"),
            message=d.get("message"),
            platform=d.get("platform"),
        )
