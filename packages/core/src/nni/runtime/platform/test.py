"""The in-memory trial platform for unit-testing trial code without a manager (NNI v2.5's
``nni.runtime.platform.test``).

Selected when ``NNI_PLATFORM=unittest``. The test gives the parameters with
:func:`init_params`; what the trial reports is kept in memory and read back with
:func:`get_last_metric`::

    # NNI_PLATFORM=unittest in the environment of the test process
    import nni
    import nni.runtime.platform.test as test_platform

    test_platform.init_params({'lr': 0.1})
    run_my_trial()                      # calls nni.get_next_parameter(), nni.report_final_result(0.9)
    assert test_platform.get_last_metric()['value'] == 0.9
"""
from __future__ import annotations

import copy
import json

from ..env_vars import TrialEnv, trial_env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "PLATFORM_NAME",
    "init_params",
    "get_next_parameter",
    "get_sequence_id",
    "send_metric",
    "get_last_metric",
    "get_metrics",
    "UnittestChannel",
]

PLATFORM_NAME = "unittest"

_params: dict | None = None  # the parameter record the trial gets
_metrics: list[str] = []  # every metric record sent, as JSON text, oldest first


def init_params(params: Any) -> None:
    """Set the parameters the trial's ``nni.get_next_parameter()`` returns, and forget the
    metrics and the trial state of earlier tests.

    ``params`` is the hyper-parameter dict, or a whole parameter record
    ``{'parameter_id': ..., 'parameters': {...}}`` (as v2.5 tests pass it).
    """
    global _params
    if isinstance(params, dict) and "parameter_id" in params and "parameters" in params:
        record = copy.deepcopy(params)
    else:
        record = {"parameter_id": 0, "parameters": copy.deepcopy(params)}
    record.setdefault("parameter_source", "algorithm")
    record.setdefault("parameter_index", 0)
    _params = record
    _metrics.clear()
    from ... import trial  # late: nni.trial imports this package

    trial._reset()


def get_next_parameter() -> dict | None:
    """The parameter record given to :func:`init_params` (``None`` before it)."""
    return copy.deepcopy(_params)


def get_sequence_id() -> int:
    """The trial's sequence id: ``NNI_TRIAL_SEQ_ID`` if set, else 0."""
    seq = trial_env().sequence_id
    return int(seq) if seq else 0


def send_metric(string: str) -> None:
    """Keep a metric record (JSON text, as the trial API sends it)."""
    _metrics.append(string)


def get_last_metric() -> dict | None:
    """The last metric record sent, its ``value`` decoded: e.g. ``{'parameter_id': 0,
    'trial_job_id': ..., 'type': 'FINAL', 'sequence': 0, 'value': 0.9}`` (``None`` if none)."""
    if not _metrics:
        return None
    return _decode(_metrics[-1])


def get_metrics() -> list[dict]:
    """Every metric record sent since :func:`init_params`, oldest first, values decoded."""
    return [_decode(text) for text in _metrics]


def _decode(text: str) -> dict:
    record = json.loads(text)
    if isinstance(record.get("value"), str) and record.get("type") != "REQUEST_PARAMETER":
        record["value"] = json.loads(record["value"])
    return record


class UnittestChannel:
    """The trial channel of the ``unittest`` platform (see :mod:`nni.runtime.platform`)."""

    parameter_path = "the unittest platform (call nni.runtime.platform.test.init_params() first)"

    def __init__(self, env: TrialEnv):
        self.env = env

    def get_parameter(self, index: int, wait: bool = False) -> dict | None:
        if index != 0:
            return None  # one set of parameters: a multi-phase trial gets nothing more
        return get_next_parameter()

    def request_parameter(self, index: int) -> None:
        """Nothing to ask: the parameters are in memory."""

    def send_metric(self, record: dict) -> None:
        send_metric(json.dumps(record))
