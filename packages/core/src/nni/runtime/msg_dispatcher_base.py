"""Base class of dispatchers and advisors (``nni.runtime.msg_dispatcher_base.MsgDispatcherBase``).

The dispatcher process reads commands from the manager (:mod:`nni.runtime.protocol`), calls
one ``handle_*`` method per command, and answers with :meth:`MsgDispatcherBase.send`. A custom
advisor subclasses this class and implements every ``handle_*`` method (``handle_request``
does the dispatching and is not overridden).

Payloads reach the handlers decoded from JSON; in ``ReportMetricData`` and ``ImportData`` the
metric ``value`` (a JSON string on the wire) is decoded too, so handlers see the object the
trial reported.

Commands are handled one at a time, in arrival order, in the thread that calls :meth:`run`.
If a handler raises, the dispatcher logs the traceback, sends ``ER`` (a one-line message, then
the traceback: see :func:`error_report`), and :meth:`run` re-raises (``python -m nni`` then
exits with status 1); the manager shows the experiment as ERROR with that text.

Only ``handle_initialize``, ``handle_request_trial_jobs``, ``handle_report_metric_data`` and
``handle_trial_end`` must be implemented. The others have safe defaults, so an advisor that
does not implement them never fails the experiment: a search-space update and imported data are
logged and ignored, and a trial added by hand is run without the advisor seeing it (its metrics
and end are not passed on, like a tuner that does not accept customized trials). An
intermediate result without ``trial_job_id`` is logged and dropped before any handler runs.
"""
from __future__ import annotations

import json
import logging
import traceback
from typing import Any

from ..recoverable import Recoverable
from ..utils import MetricType
from . import protocol
from .protocol import CommandType

__all__ = ["MsgDispatcherBase", "MetricType", "error_line", "error_report"]

_logger = logging.getLogger("nni.dispatcher")


def error_line(err: BaseException) -> str:
    """``"TypeError: __init__() missing 1 required positional argument: 'x'"`` -- one line."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def error_report(err: BaseException) -> str:
    """:func:`error_line`, a blank line, then the traceback: the text of an ``ER`` command."""
    trace = "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()
    return f"{error_line(err)}\n\n{trace}"


def _parameter_id_of(command: CommandType, payload: Any) -> Any:
    """The parameter id an ``ME`` / ``EN`` payload is about (None if it names none)."""
    if not isinstance(payload, dict):
        return None
    if command is CommandType.ReportMetricData:
        return payload.get("parameter_id")
    hyper_params = payload.get("hyper_params")
    if isinstance(hyper_params, str):
        try:
            hyper_params = json.loads(hyper_params)
        except json.JSONDecodeError:
            return None
    return hyper_params.get("parameter_id") if isinstance(hyper_params, dict) else None


def _decode_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


class MsgDispatcherBase(Recoverable):
    """Handles the manager's commands; subclass it to write an advisor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.stopping = False

    # -- infrastructure ------------------------------------------------------------------------
    def send(self, command: CommandType, data: str = "") -> None:
        """Send one command to the manager."""
        _logger.debug("send %s %.200s", command.value.decode(), data)
        protocol.send(command, data)

    def run(self) -> None:
        """Handle commands until ``Terminate`` or the end of the input stream."""
        _logger.info("dispatcher started")
        self.load_checkpoint()
        while not self.stopping:
            command, data = protocol.receive()
            if command is None:
                _logger.info("command stream closed; exiting")
                break
            self.process_command(command, data or "")
        _logger.info("dispatcher stopped")

    def process_command(self, command: CommandType, data: str) -> None:
        """Decode and handle one command; on an exception send ``ER`` and re-raise."""
        _logger.debug("received %s %.200s", command.value.decode(), data)
        try:
            self.handle_request(command, data)
        except Exception as err:
            _logger.exception("error while handling %s", command.name)
            try:
                self._on_error()
            except Exception:  # noqa: BLE001 - the first error is the one to report
                _logger.exception("error in _on_error")
            self.send(CommandType.Error, error_report(err))
            raise

    # Upstream names, kept for advisors that call them: commands are handled synchronously.
    def enqueue_command(self, command: CommandType, data: str) -> None:
        self.process_command(command, data)

    def command_queue_worker(self, command_queue: Any) -> None:
        while True:
            item = command_queue.get()
            if item is None:
                return
            self.process_command(*item)

    def process_command_thread(self, request: tuple[CommandType, str]) -> None:
        self.process_command(*request)

    def handle_request(self, command: CommandType, data: str) -> None:
        """Dispatch one command to its ``handle_*`` method (not meant to be overridden)."""
        if command is CommandType.Terminate:
            self.handle_terminate()
            return
        if command is CommandType.Ping:
            self.handle_ping()
            return
        handler = self._handlers().get(command)
        if handler is None:
            raise ValueError(f"dispatcher cannot handle command {command.value.decode()} ({command.name})")
        payload: Any = json.loads(data) if data else None
        if command is CommandType.ReportMetricData and isinstance(payload, dict):
            if payload.get("type") == MetricType.PERIODICAL and payload.get("trial_job_id") is None:
                _logger.warning("intermediate result without trial_job_id ignored: %.200s", data)
                return
            if "value" in payload:
                payload["value"] = _decode_value(payload["value"])
        if command in (CommandType.ReportMetricData, CommandType.TrialEnd) and self._hidden_ids():
            pid = _parameter_id_of(command, payload)
            if isinstance(pid, str) and pid in self._hidden_ids():
                return  # a trial added by hand that this advisor chose not to see
        if command is CommandType.ImportData and isinstance(payload, list):
            for item in payload:
                if isinstance(item, dict) and "value" in item:
                    item["value"] = _decode_value(item["value"])
        handler(payload)

    def _hidden_ids(self) -> set:
        # created lazily: advisors written for NNI do not always call super().__init__()
        return self.__dict__.setdefault("_customized_hidden_ids", set())

    def _handlers(self) -> dict:
        return {
            CommandType.Initialize: self.handle_initialize,
            CommandType.RequestTrialJobs: self.handle_request_trial_jobs,
            CommandType.UpdateSearchSpace: self.handle_update_search_space,
            CommandType.ImportData: self.handle_import_data,
            CommandType.AddCustomizedTrialJob: self.handle_add_customized_trial,
            CommandType.ReportMetricData: self.handle_report_metric_data,
            CommandType.TrialEnd: self.handle_trial_end,
        }

    def handle_terminate(self) -> None:
        """``TE``: save a checkpoint, call ``_on_exit`` and stop :meth:`run`."""
        self.save_checkpoint()
        self._on_exit()
        self.stopping = True

    def handle_ping(self) -> None:
        """``PI``: nothing to do."""

    def _on_exit(self) -> None:
        """Called once on Terminate."""

    def _on_error(self) -> None:
        """Called once when a handler raised."""

    # -- handlers (advisors implement these) --------------------------------------------------------
    def handle_initialize(self, data: Any) -> None:
        """``IN``: ``data`` is the search space. Must end with ``self.send(CommandType.Initialized, '')``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_initialize")

    def handle_request_trial_jobs(self, data: int) -> None:
        """``GE``: send ``data`` times ``NewTrialJob`` (see :func:`nni.runtime.protocol.pack_parameter`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_request_trial_jobs")

    def handle_update_search_space(self, data: Any) -> None:
        """``SS``: a new search space; no answer. Default: logged and ignored."""
        _logger.warning("%s does not handle search space updates; the new search space is ignored", type(self).__name__)

    def handle_import_data(self, data: list) -> None:
        """``FD``: ``[{"parameter": ..., "value": ...}, ...]``. Default: logged and ignored."""
        _logger.warning("%s does not import data; %d item(s) ignored", type(self).__name__, len(data or []))

    def handle_add_customized_trial(self, data: Any) -> None:
        """``AD``: parameters of a trial added by hand; answer with one ``NewTrialJob``.

        Default: the trial runs with parameter id ``customized_<n>`` and its metrics and end
        are not passed to this advisor's handlers."""
        hidden = self._hidden_ids()
        pid = f"customized_{len(hidden)}"
        hidden.add(pid)
        self.send(CommandType.NewTrialJob, protocol.pack_parameter(pid, data, parameter_source="customized"))

    def handle_report_metric_data(self, data: dict) -> None:
        """``ME``: ``{"parameter_id", "trial_job_id", "type", "sequence", "value"}``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_report_metric_data")

    def handle_trial_end(self, data: dict) -> None:
        """``EN``: ``{"trial_job_id", "event", "hyper_params"}``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_trial_end")
