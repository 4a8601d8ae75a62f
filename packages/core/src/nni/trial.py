"""The trial API (``nni.get_next_parameter``, ``nni.report_final_result``, ...).

Each function talks to the trial channel chosen from the environment
(:mod:`nni.runtime.platform`): standalone when ``NNI_PLATFORM`` is unset, the parameter and
metrics files in local mode, HTTP when ``NNI_MANAGER_URL`` is set.

Metrics: any JSON-serializable value, as in NNI v2.5 -- numbers, dicts, lists, numpy scalars
and arrays (sent as numbers / lists). NaN and infinities are sent as JSON ``NaN`` / ``Infinity``
(a diverging trial should still report). Built-in tuners and assessors need a number or a dict
with a numeric ``'default'`` key (extra keys are shown in the web UI); a custom tuner receives
the metric as reported. Something that is not JSON serializable raises ``TypeError`` at the call.
"""
from __future__ import annotations

import _thread

TYPE_CHECKING = False  # typing and threading are left out: every trial process imports this module
if TYPE_CHECKING:
    from typing import Any

from .runtime.platform import get_channel
from .runtime.trial_metrics import dump_metric_value, make_metric_record

__all__ = [
    "get_next_parameter",
    "get_current_parameter",
    "report_intermediate_result",
    "report_final_result",
    "get_experiment_id",
    "get_trial_id",
    "get_sequence_id",
]

_lock = _thread.allocate_lock()


class TrialState:
    """What the trial API remembers of one trial: its current parameter record, that record's
    index (-1 before the first :func:`get_next_parameter`) and the next intermediate sequence.

    One per process; a channel that serves several trials in one process (the NAS in-process
    engine's worker threads) carries its own as ``channel.trial_state``."""

    __slots__ = ("params", "param_index", "intermediate_seq")

    def __init__(self) -> None:
        self.params: dict | None = None
        self.param_index = -1
        self.intermediate_seq = 0


_process_state = TrialState()


def _state(channel: Any) -> TrialState:
    return getattr(channel, "trial_state", None) or _process_state


def _reset() -> None:
    """Forget the state of this process's trial (for tests that run several trials in one process)."""
    with _lock:
        _process_state.__init__()


def get_next_parameter() -> Any:
    """The hyper-parameters chosen by the tuner for this trial (a dict keyed by search-space names).

    Not multi-phase: the parameters on the first call, ``None`` on later calls. Multi-phase
    (``MULTI_PHASE=true``): a new set on each call, ``None`` when the tuner has no more.
    Standalone (no experiment): ``{}`` on the first call.
    """
    channel = get_channel()
    state = _state(channel)
    with _lock:
        index = state.param_index + 1
        if index > 0 and not channel.env.multi_phase:
            return None
        if index > 0:
            channel.request_parameter(index)
            record = channel.get_parameter(index, wait=True)
        else:
            record = channel.get_parameter(0)
            if record is None:
                where = getattr(channel, "parameter_path", None) or getattr(channel, "root", "the manager")
                raise RuntimeError(f"no parameters for trial {channel.env.trial_job_id!r} in {where}")
        state.param_index = index
        if record is None or record.get("parameters") is None:
            return None
        state.params = record
        return record["parameters"]


def get_current_parameter(tag: str | None = None) -> Any:
    """The parameters of the last :func:`get_next_parameter` call (``None`` before it); with
    ``tag``, only the value of that hyper-parameter key."""
    record = _state(get_channel()).params
    if record is None:
        return None
    params = record["parameters"]
    if tag is None:
        return params
    if not isinstance(params, dict) or tag not in params:
        raise KeyError(f"hyper-parameter {tag!r} is not in the current parameters")
    return params[tag]


def _parameter_id(channel: Any) -> Any:
    params = _state(channel).params
    if params is not None:
        return params.get("parameter_id")
    record = channel.get_parameter(0)
    return record.get("parameter_id") if record else None


def report_intermediate_result(metric: Any) -> None:
    """Report an intermediate result (e.g. per-epoch accuracy); it goes to the assessor.

    Args:
        metric: any JSON-serializable value; built-in algorithms need a number or a dict
            with a numeric ``'default'`` key.
    """
    value = dump_metric_value(metric)
    channel = get_channel()
    state = _state(channel)
    with _lock:
        record = make_metric_record(_parameter_id(channel), get_trial_id(), "PERIODICAL", state.intermediate_seq, value)
        state.intermediate_seq += 1
    channel.send_metric(record)


def report_final_result(metric: Any) -> None:
    """Report the final result of the trial; it goes to the tuner.

    Args:
        metric: any JSON-serializable value; built-in algorithms need a number or a dict
            with a numeric ``'default'`` key.
    """
    value = dump_metric_value(metric)
    channel = get_channel()
    record = make_metric_record(_parameter_id(channel), get_trial_id(), "FINAL", 0, value)
    channel.send_metric(record)


def get_experiment_id() -> str:
    """The experiment id (``'STANDALONE'`` outside an experiment)."""
    env = get_channel().env
    return "STANDALONE" if env.platform is None else (env.exp_id or "")


def get_trial_id() -> str:
    """The trial job id, e.g. ``'MoXrp'`` (``'STANDALONE'`` outside an experiment)."""
    env = get_channel().env
    return "STANDALONE" if env.platform is None else (env.trial_job_id or "")


def get_sequence_id() -> int:
    """The trial's sequence number, 0, 1, 2, ... in submission order (0 outside an experiment)."""
    env = get_channel().env
    if env.platform is None or not env.sequence_id:
        return 0
    return int(env.sequence_id)
