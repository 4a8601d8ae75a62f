"""The built-in dispatcher: drives a :class:`~nni.tuner.Tuner` and an optional
:class:`~nni.assessor.Assessor` from the manager's commands.

* ``IN`` -> ``tuner.update_search_space`` then ``ID``; ``SS`` -> ``update_search_space``.
* ``GE n`` -> ``tuner.generate_multiple_parameters`` with n fresh parameter ids -> one ``TR`` per
  configuration; when fewer than n come back (``NoMoreTrialError`` or a short list) one ``NO``.
  A tuner with ``defers_requests = True`` (PBT: the next generation needs the current one's
  results) answers with a short list for "not yet": the missing ids wait, and are asked again
  after every final result and trial end; only its ``NoMoreTrialError`` sends ``NO``.
* ``ME`` FINAL -> ``tuner.receive_trial_result(parameter_id, parameters, value, customized=...,
  trial_job_id=...)`` (only the first final result of a parameter id counts);
  PERIODICAL -> ``assessor.assess_trial(trial_job_id, history)`` with the trial's intermediate
  results in sequence order; ``Bad`` -> ``KI`` (once per trial);
  REQUEST_PARAMETER -> ``tuner.generate_parameters`` -> ``SP``.
* ``EN`` -> ``tuner.trial_end(parameter_id, success)`` and ``assessor.trial_end(trial_job_id,
  success)``; ``success`` only for SUCCEEDED. With ``include_intermediate_results`` a trial
  that the assessor stopped (EARLY_STOPPED, or killed by our ``KI``) and that reported no final
  result first gets its last intermediate result sent to the tuner as final.
* ``FD`` -> ``tuner.import_data``; ``AD`` -> a ``TR`` with ``"parameter_source": "customized"``.
  As in NNI v2.5, the result and the end of such a trial reach the tuner (final result with
  ``customized=True``) only if the tuner opted in with ``self._accept_customized_trials()``;
  otherwise the tuner never sees the trial.
* ``TE`` -> ``_on_exit`` of tuner and assessor, then stop.

Parameter ids are 0, 1, 2, ...; ids seen in ``FD`` items (``parameter_id``), metrics or trial
ends are skipped, so a resumed experiment that replays its trials never reuses an id.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from ..assessor import AssessResult, Assessor
from ..tuner import Tuner
from ..utils import NoMoreTrialError
from .msg_dispatcher_base import MetricType, MsgDispatcherBase
from .protocol import CommandType, pack_parameter

__all__ = ["MsgDispatcher", "IMPORT_REPORT", "IMPORT_REPORT_PATTERN"]

_logger = logging.getLogger("nni.dispatcher")

#: The dispatcher.log line written after each ``FD``: tuner class, records the tuner used (its
#: ``import_data`` return value, ``?`` when it returns none), records received.
IMPORT_REPORT = "Import data: tuner %s imported %s of %d records"
IMPORT_REPORT_PATTERN = r"Import data: tuner (\S+) imported (\d+|\?) of (\d+) records"


class MsgDispatcher(MsgDispatcherBase):
    """Dispatcher for a tuner and an optional assessor."""

    def __init__(self, tuner: Tuner, assessor: Assessor | None = None, include_intermediate_results: bool = False):
        super().__init__()
        self.tuner = tuner
        self.assessor = assessor
        self.include_intermediate_results = include_intermediate_results
        self._next_parameter_id = 0
        self._used_ids: set[Any] = set()
        self.parameters: dict[Any, Any] = {}  # parameter_id -> parameters
        self.customized_ids: set[Any] = set()
        self._final_received: set[Any] = set()
        self._histories: dict[str, dict[int, Any]] = {}  # trial_job_id -> {sequence: value}
        self._trial_parameter: dict[str, Any] = {}  # trial_job_id -> latest parameter_id
        self._killed: set[str] = set()
        self._deferred: list[int] = []  # requested ids a deferring tuner will serve later

    # -- ids ---------------------------------------------------------------------------------------
    def _note_id(self, parameter_id: Any) -> None:
        if parameter_id is None:
            return
        self._used_ids.add(parameter_id)

    def _new_id(self) -> int:
        while self._next_parameter_id in self._used_ids:
            self._next_parameter_id += 1
        pid = self._next_parameter_id
        self._next_parameter_id += 1
        self._used_ids.add(pid)
        return pid

    # -- checkpoints / hooks -------------------------------------------------------------------------
    def load_checkpoint(self) -> None:
        self.tuner.load_checkpoint()
        if self.assessor is not None:
            self.assessor.load_checkpoint()

    def save_checkpoint(self) -> None:
        self.tuner.save_checkpoint()
        if self.assessor is not None:
            self.assessor.save_checkpoint()

    def _on_exit(self) -> None:
        self.tuner._on_exit()
        if self.assessor is not None:
            self.assessor._on_exit()

    def _on_error(self) -> None:
        self.tuner._on_error()
        if self.assessor is not None:
            self.assessor._on_error()

    # -- handlers ------------------------------------------------------------------------------------
    def handle_initialize(self, data: Any) -> None:
        self.tuner.update_search_space(data)
        self.send(CommandType.Initialized, "")

    def handle_update_search_space(self, data: Any) -> None:
        self.tuner.update_search_space(data)

    def handle_request_trial_jobs(self, data: Any) -> None:
        count = int(data)
        if count <= 0:
            return
        ids = [self._new_id() for _ in range(count)]
        if getattr(self.tuner, "defers_requests", False) is True:
            self._deferred.extend(ids)
            self._serve_deferred()
            return
        try:
            params_list = self.tuner.generate_multiple_parameters(ids)
        except NoMoreTrialError:
            params_list = []
        params_list = list(params_list or [])[:count]
        for pid, params in zip(ids, params_list):
            self.parameters[pid] = params
            self.send(CommandType.NewTrialJob, pack_parameter(pid, params))
        if len(params_list) < count:
            for pid in ids[len(params_list):]:  # give back the ids that were not used
                self._used_ids.discard(pid)
            self._next_parameter_id = min(ids[len(params_list):])
            self.send(CommandType.NoMoreTrialJobs, "")

    def _serve_deferred(self) -> None:
        """Ask a deferring tuner again for the ids still waiting; ``NO`` once it has no more."""
        if not self._deferred:
            return
        ids, self._deferred = self._deferred, []
        try:
            params_list = list(self.tuner.generate_multiple_parameters(ids) or [])[:len(ids)]
        except NoMoreTrialError:
            for pid in ids:
                self._used_ids.discard(pid)
            self._next_parameter_id = min([self._next_parameter_id, *ids])
            self.send(CommandType.NoMoreTrialJobs, "")
            return
        for pid, params in zip(ids, params_list):
            self.parameters[pid] = params
            self.send(CommandType.NewTrialJob, pack_parameter(pid, params))
        self._deferred = ids[len(params_list):]

    def handle_import_data(self, data: list) -> None:
        for item in data or []:
            if isinstance(item, dict):
                self._note_id(item.get("parameter_id"))
        imported = self.tuner.import_data(data)
        # One line in dispatcher.log in a fixed format (IMPORT_REPORT): ``nnictl experiment
        # import`` reads it to tell the user what the tuner accepted.
        _logger.info(IMPORT_REPORT, type(self.tuner).__name__, imported if isinstance(imported, int) and not isinstance(imported, bool) else "?", len(data or []))

    def handle_add_customized_trial(self, data: Any) -> None:
        pid = self._new_id()
        self.parameters[pid] = data
        self.customized_ids.add(pid)
        self.send(CommandType.NewTrialJob, pack_parameter(pid, data, parameter_source="customized"))

    def handle_report_metric_data(self, data: dict) -> None:
        kind = data.get("type")
        trial_job_id = data.get("trial_job_id")
        pid = data.get("parameter_id")
        self._note_id(pid)
        if trial_job_id is not None and pid is not None:
            self._trial_parameter[trial_job_id] = pid
        if kind == MetricType.FINAL:
            self._handle_final(pid, data.get("value"), trial_job_id)
        elif kind == MetricType.PERIODICAL:
            self._handle_intermediate(data)
        elif kind == MetricType.REQUEST_PARAMETER:
            self._handle_request_parameter(data)
        else:
            raise ValueError(f"unsupported metric type {kind!r}; expected FINAL, PERIODICAL or REQUEST_PARAMETER")

    def _handle_final(self, pid: Any, value: Any, trial_job_id: Any) -> None:
        if pid is None and trial_job_id is not None:
            pid = self._trial_parameter.get(trial_job_id)
        if pid in self._final_received:
            _logger.warning("ignoring a second final result for parameter id %s", pid)
            return
        if pid not in self.parameters:
            _logger.warning("final result for unknown parameter id %s (trial %s) ignored", pid, trial_job_id)
            return
        customized = pid in self.customized_ids
        if customized and not self._tuner_accepts_customized():
            return
        self._final_received.add(pid)
        self.tuner.receive_trial_result(pid, self.parameters[pid], value, customized=customized, trial_job_id=trial_job_id)
        self._serve_deferred()

    def _tuner_accepts_customized(self) -> bool:
        return getattr(self.tuner, "accept_customized_trials", False) is True

    def _handle_intermediate(self, data: dict) -> None:
        trial_job_id = data.get("trial_job_id")
        if trial_job_id is None:  # nothing to assess it against; never worth failing the experiment
            _logger.warning("intermediate result without trial_job_id ignored: %.200s", data)
            return
        history = self._histories.setdefault(trial_job_id, {})
        history[int(data.get("sequence") or 0)] = data.get("value")
        if self.assessor is None or trial_job_id in self._killed:
            return
        ordered = []
        while len(ordered) in history:  # only the gap-free prefix 0, 1, 2, ...
            ordered.append(history[len(ordered)])
        if len(ordered) != len(history):
            return  # wait for the missing sequence numbers
        result = self.assessor.assess_trial(trial_job_id, ordered)
        if isinstance(result, bool):
            result = AssessResult.Good if result else AssessResult.Bad
        if not isinstance(result, AssessResult):
            raise TypeError(f"assess_trial must return AssessResult (or bool), got {type(result).__name__} {result!r}")
        if result is AssessResult.Bad:
            self._killed.add(trial_job_id)
            self.send(CommandType.KillTrialJob, json.dumps(trial_job_id))

    def _handle_request_parameter(self, data: dict) -> None:
        trial_job_id = data.get("trial_job_id")
        if trial_job_id is None:  # no trial to answer
            _logger.warning("parameter request without trial_job_id ignored: %.200s", data)
            return
        index = data.get("parameter_index", 0)
        pid = self._new_id()
        try:
            params = self.tuner.generate_parameters(pid, trial_job_id=trial_job_id)
        except NoMoreTrialError:
            self._used_ids.discard(pid)
            self.send(
                CommandType.SendTrialJobParameter,
                pack_parameter(None, None, parameter_index=index, trial_job_id=trial_job_id),
            )
            return
        self.parameters[pid] = params
        self._trial_parameter[trial_job_id] = pid
        self.send(
            CommandType.SendTrialJobParameter,
            pack_parameter(pid, params, parameter_index=index, trial_job_id=trial_job_id),
        )

    def handle_trial_end(self, data: dict) -> None:
        trial_job_id = data.get("trial_job_id")
        event = data.get("event")
        pid = None
        hyper_params = data.get("hyper_params")
        if isinstance(hyper_params, str) and hyper_params:
            try:
                pid = json.loads(hyper_params).get("parameter_id")
            except (json.JSONDecodeError, AttributeError):
                pid = None
        elif isinstance(hyper_params, dict):
            pid = hyper_params.get("parameter_id")
        if pid is None:
            pid = self._trial_parameter.get(trial_job_id)
        self._note_id(pid)
        success = event == "SUCCEEDED"
        stopped_by_assessor = event == "EARLY_STOPPED" or trial_job_id in self._killed
        if self.include_intermediate_results and stopped_by_assessor and pid is not None:
            history = self._histories.get(trial_job_id) or {}
            if history and pid not in self._final_received:
                last = history[max(history)]
                self._handle_final(pid, last, trial_job_id)
        if pid is not None and (pid not in self.customized_ids or self._tuner_accepts_customized()):
            self.tuner.trial_end(pid, success)
        if self.assessor is not None and trial_job_id is not None:
            self.assessor.trial_end(trial_job_id, success)
        self._histories.pop(trial_job_id, None)
        self._serve_deferred()
