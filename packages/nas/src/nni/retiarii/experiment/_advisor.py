"""The advisor that connects a multi-trial strategy (in the user's process) to the NNI manager.

The manager is the one HPO experiments use; it hosts this advisor in its dispatcher process
(``python -m nni``) like any advisor. The advisor connects back to the execution engine of
the ``RetiariiExperiment`` process (a ``multiprocessing.connection`` socket, authenticated with a
random key passed in ``classArgs``) and relays:

* engine -> advisor: ``('submit', parameter_id, parameters)`` becomes a ``NewTrialJob``
  (the manager queues it until a slot is free, as a tuner's answer); ``('done',)`` becomes
  ``NoMoreTrialJobs`` (the strategy finished: the experiment is DONE once the trials end);
* advisor -> engine: ``('metric', parameter_id, trial_job_id, type, value)`` for every
  reported metric and ``('end', parameter_id, trial_job_id, event)`` when a trial ends.

The manager's requests for trials (``GE``) are not answered: models are sent as the strategy
submits them. Nothing here imports torch, so the dispatcher starts fast.
"""
from __future__ import annotations

import json
import logging
import threading
from multiprocessing.connection import Client
from typing import Any

from nni.runtime.msg_dispatcher_base import MsgDispatcherBase
from nni.runtime.protocol import CommandType, pack_parameter
from nni.utils import ClassArgsValidator

_logger = logging.getLogger("nni.retiarii.advisor")

__all__ = ["RetiariiAdvisor"]


class _Validator(ClassArgsValidator):
    def validate_class_args(self, **kwargs: Any) -> None:
        for key in ("address", "authkey"):
            if not isinstance(kwargs.get(key), str) or not kwargs[key]:
                raise ValueError(f"advisor.classArgs.{key}: expected a non-empty string (set by RetiariiExperiment)")
        unknown = set(kwargs) - {"address", "authkey"}
        if unknown:
            raise ValueError(f"advisor.classArgs: unknown key(s) {sorted(unknown)}; allowed: address, authkey")


class RetiariiAdvisor(MsgDispatcherBase):
    """Relays models and results between the manager and a ``RetiariiExperiment`` (see module doc).

    Args:
        address: the engine's socket path.
        authkey: hex of the engine's authentication key.
    """

    class_args_validator = _Validator

    def __init__(self, address: str, authkey: str) -> None:
        super().__init__()
        self._send_lock = threading.Lock()
        self._conn = Client(address, authkey=bytes.fromhex(authkey))
        self._conn_lock = threading.Lock()
        self._reader = threading.Thread(target=self._read_engine, name="retiarii-engine", daemon=True)

    def send(self, command: CommandType, data: str = "") -> None:
        # the engine-reader thread and the command loop both send
        with self._send_lock:
            super().send(command, data)

    def _to_engine(self, message: tuple) -> None:
        with self._conn_lock:
            try:
                self._conn.send(message)
            except (OSError, EOFError):
                _logger.warning("the experiment process is gone; %s not delivered", message[0])

    def _read_engine(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                _logger.info("the experiment process closed the connection")
                return
            if message[0] == "submit":
                _, parameter_id, parameters = message
                self.send(CommandType.NewTrialJob, pack_parameter(parameter_id, parameters))
            elif message[0] == "done":
                self.send(CommandType.NoMoreTrialJobs, "")
            else:
                _logger.warning("unknown message from the experiment process: %.100r", message)

    def handle_initialize(self, data: Any) -> None:
        self._reader.start()
        self.send(CommandType.Initialized, "")

    def handle_request_trial_jobs(self, data: int) -> None:
        """Not answered: models come when the strategy submits them."""

    def handle_update_search_space(self, data: Any) -> None:
        _logger.warning("a NAS experiment's search space is its model space; the update is ignored")

    def handle_report_metric_data(self, data: dict) -> None:
        value = data.get("value")
        if isinstance(value, str):  # the trial API sends the metric JSON-encoded
            try:
                value = json.loads(value)
            except ValueError:
                pass
        self._to_engine(("metric", data.get("parameter_id"), data.get("trial_job_id"), data.get("type"), value))

    def handle_trial_end(self, data: dict) -> None:
        pid = None
        hyper_params = data.get("hyper_params")
        try:
            packed = json.loads(hyper_params) if isinstance(hyper_params, str) else hyper_params
            pid = packed.get("parameter_id") if isinstance(packed, dict) else None
        except ValueError:
            pass
        self._to_engine(("end", pid, data.get("trial_job_id"), data.get("event")))

    def _on_exit(self) -> None:
        try:
            self._conn.close()
        except OSError:
            pass
