"""Dispatcher routing: the commands the scheduler exchanges with the tuner / assessor process.

Part of the scheduler (:mod:`nni.server.scheduler` coordinates; :mod:`nni.server.budget`
decides what may run). :class:`DispatcherRouter` owns the :class:`DispatcherClient` and the
bookkeeping of what was asked of it:

* out: ``IN`` / ``SS`` (search space), ``GE`` (at most :data:`REQUEST_BATCH` trials on their
  way at once), ``AD`` (customized trial), ``FD`` (imported data), ``ME`` (metrics), ``EN``
  (trial end);
* in: ``ID`` (initialized), ``TR`` (new trial, queued in :attr:`DispatcherRouter.ready` until
  a slot is free), ``NO`` (tuner exhausted), ``KI`` (assessor stops a trial), ``SP``
  (multi-phase parameters, handed to the training service), each given to the scheduler
  through the :class:`RouteTarget` calls.

Liveness: a dispatcher that leaves its commands unread for ``NNI_DISPATCHER_TIMEOUT`` seconds
(default 60; stopped, deadlocked or stuck in the algorithm) does not change the state: the
router adds a ``warnings`` entry (check-status, web UI) and logs a warning; both clear when it
reads again. Its death is remembered in :attr:`DispatcherRouter.death`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Optional, Protocol

from nni.runtime.protocol import CommandType

from .dispatcher_client import DispatcherClient

_logger = logging.getLogger("nni.server.scheduler")

#: Most trials asked of the tuner, waiting for a slot or waiting in the training service at once.
REQUEST_BATCH = 32
DISPATCHER_TIMEOUT_ENV = "NNI_DISPATCHER_TIMEOUT"
DEFAULT_DISPATCHER_TIMEOUT = 60.0


def dispatcher_timeout() -> float:
    """Seconds a dispatcher may leave its commands unread before it is reported (env var)."""
    raw = os.environ.get(DISPATCHER_TIMEOUT_ENV)
    if not raw:
        return DEFAULT_DISPATCHER_TIMEOUT
    try:
        value = float(raw)
        if value > 0 and value == value and value != float("inf"):
            return value
    except ValueError:
        pass
    _logger.warning("%s=%r: expected a positive number of seconds; using %g", DISPATCHER_TIMEOUT_ENV, raw, DEFAULT_DISPATCHER_TIMEOUT)
    return DEFAULT_DISPATCHER_TIMEOUT


class RouteTarget(Protocol):
    """What the router asks of the scheduler when a dispatcher command arrives."""

    def accepts_trials(self) -> bool: ...

    async def on_initialized(self) -> None: ...

    def on_trials_changed(self) -> None: ...

    async def on_kill_requested(self, trial_id: str) -> None: ...

    async def on_parameter(self, trial_id: str, payload: str) -> None: ...


def _trial_id_of(payload: str) -> Optional[str]:
    try:
        value = json.loads(payload).get("trial_job_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


class DispatcherRouter:
    """Commands to and from one dispatcher, and what is on its way between them."""

    def __init__(self, target: RouteTarget) -> None:
        self.target = target
        self.client: Optional[DispatcherClient] = None
        self.ready: list[tuple[str, str]] = []  # (TR payload, source) waiting for a free slot
        self.pending_requests = 0  # trials asked of the tuner (GE) and not received yet
        self.pending_custom = 0  # AD sent, TR not received yet
        self.tuner_exhausted = False
        self.warnings: list[str] = []  # transient problems (check-status ``warnings``)
        self._stall_warning: Optional[str] = None
        self.death: Optional[str] = None  # first line of the failure, once the dispatcher died

    # ----- out -----

    def in_flight(self) -> int:
        """Trials asked of the dispatcher or received from it and not created yet."""
        return len(self.ready) + self.pending_requests + self.pending_custom

    def send(self, command: CommandType, data: str = "") -> None:
        if self.client is not None:
            self.client.send(command, data)

    def request_trials(self, n: int) -> None:
        self.pending_requests += n
        self.send(CommandType.RequestTrialJobs, str(n))

    def add_customized(self, parameters: dict) -> None:
        self.pending_custom += 1
        self.send(CommandType.AddCustomizedTrialJob, json.dumps(parameters))

    # ----- in -----

    async def on_command(self, command: CommandType, payload: str) -> None:
        """Called by the :class:`DispatcherClient` for every command, in order."""
        if command == CommandType.Initialized:
            await self.target.on_initialized()
        elif command == CommandType.NewTrialJob:
            try:
                source = json.loads(payload).get("parameter_source") or "algorithm"
            except (ValueError, AttributeError):
                source = "algorithm"
            if source == "customized" and self.pending_custom > 0:
                self.pending_custom -= 1
            elif self.pending_requests > 0:
                self.pending_requests -= 1
            if not self.target.accepts_trials():
                return
            self.ready.append((payload, source))
            self.target.on_trials_changed()
        elif command == CommandType.NoMoreTrialJobs:
            self.tuner_exhausted = True
            self.pending_requests = 0
            self.target.on_trials_changed()
        elif command == CommandType.KillTrialJob:
            trial_id = json.loads(payload) if payload.startswith('"') else payload
            await self.target.on_kill_requested(trial_id)
        elif command == CommandType.SendTrialJobParameter:
            # multi-phase: the trial waits for the line of its next parameter_index
            trial_id = _trial_id_of(payload)
            if trial_id is not None:
                await self.target.on_parameter(trial_id, payload)
        else:
            _logger.warning("Unexpected dispatcher command %s", command.name)

    def on_death(self, message: str) -> None:
        """The dispatcher failed: remember why (a stall warning is superseded by the error)."""
        self.death = (message.strip().splitlines() or ["dispatcher failed"])[0]
        if self._stall_warning is not None:
            self.warnings.remove(self._stall_warning)
            self._stall_warning = None

    # ----- liveness -----

    async def watch(self, timeout: float) -> None:
        """Report a dispatcher that stopped reading its commands; clear it when it reads again."""
        interval = max(0.1, min(5.0, timeout / 4))
        while True:
            await asyncio.sleep(interval)
            self.check_stall(timeout)

    def check_stall(self, timeout: float) -> None:
        client = self.client
        if client is None:
            return
        try:
            stalled = client.stalled_for()
        except Exception:  # the watch must never take the manager down
            _logger.exception("Cannot check the dispatcher's liveness")
            return
        if stalled >= timeout and self._stall_warning is None:
            pid = client.process.pid if client.process is not None else "?"
            self._stall_warning = (
                f"the dispatcher (tuner/assessor, pid {pid}) has not read its commands for more than {timeout:g} s:"
                f" it is stopped, deadlocked or stuck in the algorithm; no new parameters come until it answers"
                f" (see dispatcher.log; {DISPATCHER_TIMEOUT_ENV} sets this limit)"
            )
            self.warnings.append(self._stall_warning)
            _logger.warning("Dispatcher not answering: %s", self._stall_warning)
        elif stalled == 0 and self._stall_warning is not None:
            self.warnings.remove(self._stall_warning)
            self._stall_warning = None
            _logger.info("Dispatcher answers again")


__all__ = ["DispatcherRouter", "RouteTarget", "REQUEST_BATCH", "dispatcher_timeout", "DISPATCHER_TIMEOUT_ENV"]
