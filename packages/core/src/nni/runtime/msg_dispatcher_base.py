"""Base class of dispatchers and advisors (``nni.runtime.msg_dispatcher_base.MsgDispatcherBase``).

The dispatcher process reads commands from the manager (:mod:`nni.runtime.protocol`), calls
one ``handle_*`` method per command, and answers with :meth:`MsgDispatcherBase.send`. A custom
advisor subclasses this class and implements every ``handle_*`` method (``handle_request``
does the dispatching and is not overridden).

Payloads reach the handlers decoded from JSON; in ``ReportMetricData`` and ``ImportData`` the
metric ``value`` (a JSON string on the wire) is decoded too, so handlers see the object the
trial reported.

Commands are handled one at a time, in arrival order, in the thread that calls :meth:`run`.
If a handler raises, the dispatcher logs the traceback, sends ``ER`` with a one-line message,
and :meth:`run` re-raises (``python -m nni`` then exits with status 1).
"""
from __future__ import annotations

import json
import logging
from typing import Any

from ..recoverable import Recoverable
from ..utils import MetricType
from . import protocol
from .protocol import CommandType

__all__ = ["MsgDispatcherBase", "MetricType", "error_line"]

_logger = logging.getLogger("nni.dispatcher")


def error_line(err: BaseException) -> str:
    """``"TypeError: __init__() missing 1 required positional argument: 'x'"`` -- one line."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


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
            self.send(CommandType.Error, error_line(err))
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
        if command is CommandType.ReportMetricData and isinstance(payload, dict) and "value" in payload:
            payload["value"] = _decode_value(payload["value"])
        if command is CommandType.ImportData and isinstance(payload, list):
            for item in payload:
                if isinstance(item, dict) and "value" in item:
                    item["value"] = _decode_value(item["value"])
        handler(payload)

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
        """``SS``: a new search space; no answer."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_update_search_space")

    def handle_import_data(self, data: list) -> None:
        """``FD``: ``[{"parameter": ..., "value": ...}, ...]``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_import_data")

    def handle_add_customized_trial(self, data: Any) -> None:
        """``AD``: parameters of a trial added by hand."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_add_customized_trial")

    def handle_report_metric_data(self, data: dict) -> None:
        """``ME``: ``{"parameter_id", "trial_job_id", "type", "sequence", "value"}``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_report_metric_data")

    def handle_trial_end(self, data: dict) -> None:
        """``EN``: ``{"trial_job_id", "event", "hyper_params"}``."""
        raise NotImplementedError(f"{type(self).__name__} must implement handle_trial_end")
