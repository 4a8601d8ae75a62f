"""The manager side of the trial-runner protocol (:mod:`nni.runtime.runner_protocol`).

:class:`RunnerClient` speaks to one runner over any duplex byte stream; it knows nothing about
the transport. A platform starts the runner (over SSH, in a SLURM job, as a local subprocess),
wraps its stream and then drives trials through the client::

    client = await spawn_local_runner()            # or RunnerClient(reader, writer)
    info = await client.hello(context, platform="remote")
    detail = await client.submit(TrialSpec("abcde", 0, parameter))
    async for event in client.events(): ...        # StateEvent / MetricEvent
    await client.stop()

A blocking transport plugs in with callables, e.g. a paramiko exec channel's files::

    RunnerClient(lambda: asyncio.to_thread(out.readline), lambda line: asyncio.to_thread(_write_flush, inp, line))

``closed`` resolves (to a one-line reason) when the stream ends, so a platform notices a lost
connection; pending requests then fail with :class:`RunnerConnectionLost`.
"""
from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import sys
from typing import Any, AsyncIterator, Awaitable, Callable, Optional, Sequence, Union

from . import runner_protocol as rp
from .training_service import (
    ExperimentContext,
    MetricEvent,
    RequestNeverSatisfiable,
    StateEvent,
    TrialJobDetail,
    TrialJobStatus,
    TrialSpec,
)

__all__ = [
    "RunnerClient",
    "RunnerError",
    "RunnerConnectionLost",
    "RunnerTimeout",
    "spawn_local_runner",
]

_logger = logging.getLogger("nni.runtime.runner_client")

RunnerEvent = Union[StateEvent, MetricEvent]
_END = object()


class RunnerError(RuntimeError):
    """The runner refused or failed a request; the message is the runner's one line."""


class RunnerConnectionLost(ConnectionError):
    """The stream to the runner ended before the answer came."""


class RunnerTimeout(TimeoutError):
    """The runner did not answer a request in time."""


# error_type sent by the runner -> the exception raised here, so callers catch what the local
# service would have raised.
_ERRORS: dict[str, type] = {
    "KeyError": KeyError,
    "RequestNeverSatisfiable": RequestNeverSatisfiable,
    "ValueError": ValueError,
    "TypeError": ValueError,
    "RunnerProtocolError": rp.RunnerProtocolError,
}


class RunnerClient:
    """One runner, seen from the manager.

    Args:
        reader: an ``asyncio.StreamReader``-like object (``async readline()``) or an async
            callable returning the next line (``b""`` at the end).
        writer: an ``asyncio.StreamWriter``-like object (``write(bytes)``, optional
            ``async drain()`` and ``close()``) or a callable taking one line (sync or async).
        reply_timeout: seconds to wait for an answer (``hello`` and ``stop`` wait longer).
        on_event: called with every StateEvent / MetricEvent as it arrives (besides
            :meth:`events`).
        name: how errors name this runner (e.g. ``"runner on gpu-box-1"``).
    """

    def __init__(
        self,
        reader: Any,
        writer: Any,
        reply_timeout: float = 30.0,
        on_event: Optional[Callable[[RunnerEvent], None]] = None,
        name: str = "runner",
    ) -> None:
        self._readline: Callable[[], Awaitable[bytes]] = reader.readline if hasattr(reader, "readline") else reader
        self._writer = writer
        self.reply_timeout = reply_timeout
        self.on_event = on_event
        self.name = name
        self.info: Optional[rp.RunnerInfo] = None
        #: one-line texts of ``error`` messages that answered no request (malformed lines ...)
        self.errors: list[str] = []
        #: the ``stopped`` message, once it came
        self.stopped: Optional[dict] = None
        self.process: Optional[asyncio.subprocess.Process] = None  # set by spawn_local_runner
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future]] = {}
        self._events: Optional[asyncio.Queue] = None  # made in the running loop
        self._closed: Optional[asyncio.Future] = None
        self._read_task: Optional[asyncio.Task] = None

    # ----- the stream -----

    def _ensure_started(self) -> None:
        if self._read_task is None:
            loop = asyncio.get_running_loop()
            self._events = asyncio.Queue()
            self._closed = loop.create_future()
            self._read_task = loop.create_task(self._read_loop())

    @property
    def closed(self) -> asyncio.Future:
        """Resolves to the reason (one line) once the stream from the runner has ended."""
        self._ensure_started()
        return self._closed  # type: ignore[return-value]

    async def _read_loop(self) -> None:
        reason = "the runner's stream ended without 'stopped' (the runner or its connection died)"
        try:
            while True:
                try:
                    line = await self._readline()
                except ValueError:  # over the reader's limit
                    _logger.warning("%s: dropped a line longer than the stream limit", self.name)
                    continue
                if not line:
                    break
                if not line.strip():
                    continue
                try:
                    msg = rp.decode(line, rp.RUNNER_MESSAGES)
                except rp.RunnerProtocolError as err:
                    # e.g. a login banner or shell noise on the channel: note it, keep reading
                    _logger.warning("%s: %s", self.name, err)
                    self.errors.append(str(err))
                    continue
                self._dispatch(msg)
                if msg["type"] == "stopped":
                    reason = f"the runner stopped: {msg.get('reason', '')}"
        except asyncio.CancelledError:
            reason = "the client was closed"
            raise
        except (ConnectionError, OSError) as err:
            reason = f"the runner's stream failed: {err}"
        finally:
            self._finish(reason)

    def _finish(self, reason: str) -> None:
        for kind, fut in self._pending.values():
            if not fut.done():
                fut.set_exception(RunnerConnectionLost(f"{self.name}: no answer to {kind}: {reason}"))
        self._pending.clear()
        self._events.put_nowait(_END)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(reason)

    def _dispatch(self, msg: dict) -> None:
        kind = msg["type"]
        if kind in ("state", "metric"):
            event = rp.event_from_wire(msg)
            self._events.put_nowait(event)
            if self.on_event is not None:
                try:
                    self.on_event(event)
                except Exception:  # a bug in the callback must not look like a lost runner
                    _logger.exception("%s: on_event failed for %s", self.name, event)
            return
        if kind == "stopped":
            self.stopped = msg
        reply_to = msg.get("reply_to")
        if reply_to is None:
            if kind == "error":
                _logger.warning("%s: %s", self.name, msg["error"])
                self.errors.append(msg["error"])
            return
        pending = self._pending.pop(reply_to, None)
        if pending is None:
            _logger.warning("%s: an answer to unknown request %r", self.name, reply_to)
        elif not pending[1].done():
            pending[1].set_result(msg)

    async def _send(self, line: bytes) -> None:
        w = self._writer
        if hasattr(w, "write"):
            w.write(line)
            drain = getattr(w, "drain", None)
            if drain is not None:
                await drain()
        else:
            result = w(line)
            if inspect.isawaitable(result):
                await result

    async def _request(self, kind: str, timeout: Optional[float] = None, **fields: Any) -> dict:
        self._ensure_started()
        if self._closed.done():  # type: ignore[union-attr]
            raise RunnerConnectionLost(f"{self.name}: cannot send {kind}: {self._closed.result()}")  # type: ignore[union-attr]
        rid = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[rid] = (kind, fut)
        try:
            await self._send(rp.encode(kind, id=rid, **fields))
        except (ConnectionError, OSError) as err:
            self._pending.pop(rid, None)
            raise RunnerConnectionLost(f"{self.name}: cannot send {kind}: {err}") from None
        wait = self.reply_timeout if timeout is None else timeout
        try:
            msg = await asyncio.wait_for(fut, wait)
        except asyncio.TimeoutError:
            self._pending.pop(rid, None)
            raise RunnerTimeout(f"{self.name}: no answer to {kind} within {wait:g} s") from None
        if "error" in msg:
            exc = _ERRORS.get(msg.get("error_type", ""), RunnerError)
            raise exc(f"{self.name}: {msg['error']}" if exc is RunnerError else msg["error"])
        return msg

    # ----- requests -----

    async def hello(
        self,
        context: ExperimentContext,
        config: Optional[dict] = None,
        platform: str = "local",
        options: Optional[dict] = None,
        timeout: Optional[float] = None,
    ) -> rp.RunnerInfo:
        """Give the runner its experiment; returns what it said about itself.

        Args:
            context: the experiment with paths as the worker sees them.
            config: the platform settings the local service reads (``useActiveGpu``,
                ``maxTrialNumberPerGpu``, ``gpuIndices``).
            platform: ``NNI_PLATFORM`` of the trials.
            options: ``kill_grace`` / ``poll_interval`` seconds.

        Raises:
            RunnerProtocolError: the runner speaks another protocol version (one line).
        """
        keep = ("useActiveGpu", "maxTrialNumberPerGpu", "gpuIndices")
        cfg = {k: v for k, v in (config or {}).items() if k in keep}
        msg = await self._request(
            "hello",
            timeout if timeout is not None else max(self.reply_timeout, 60.0),
            protocol_version=rp.PROTOCOL_VERSION,
            context=rp.context_to_wire(context),
            config=cfg,
            platform=platform,
            options=dict(options or {}),
        )
        rp.check_version(msg.get("protocol_version"), f"{self.name}")
        self.info = rp.RunnerInfo.from_wire(msg)
        return self.info

    async def submit(self, spec: TrialSpec) -> TrialJobDetail:
        """Hand the runner a trial; returns the detail its local service gave it."""
        msg = await self._request("submit", spec=rp.spec_to_wire(spec))
        return rp.detail_from_wire(msg["detail"])

    async def cancel(self, trial_id: str, early_stopped: bool = False, status: Optional[TrialJobStatus] = None) -> None:
        """Stop a trial (EARLY_STOPPED when ``early_stopped``, else ``status`` / USER_CANCELED)."""
        await self._request("cancel", trial_id=trial_id, early_stopped=early_stopped, status=None if status is None else str(status))

    async def send_parameter(self, trial_id: str, parameter: str) -> None:
        """Hand a multi-phase trial its next parameter set; ``KeyError`` for an unknown trial."""
        await self._request("send_parameter", trial_id=trial_id, parameter=parameter)

    async def ping(self) -> float:
        """Round-trip time in seconds."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await self._request("ping")
        return loop.time() - t0

    async def stop(self, timeout: float = 60.0) -> None:
        """Stop every trial and the runner; returns once the runner's stream has ended.

        A runner that is already gone is fine (nothing is left to stop)."""
        self._ensure_started()
        if not self._closed.done():  # type: ignore[union-attr]
            try:
                await self._request("stop", timeout)
            except RunnerConnectionLost:
                pass
        await asyncio.wait_for(asyncio.shield(self._closed), timeout)  # type: ignore[arg-type]
        await self.aclose()

    async def aclose(self) -> None:
        """Close our end of the stream (the runner sees EOF and stops its trials)."""
        close = getattr(self._writer, "close", None)
        if close is not None:
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except (ConnectionError, OSError):
                pass
        if self.process is not None:
            await self.process.wait()

    # ----- events -----

    async def events(self) -> AsyncIterator[RunnerEvent]:
        """StateEvent / MetricEvent in arrival order; ends when the stream ends."""
        self._ensure_started()
        while True:
            event = await self._events.get()
            if event is _END:
                self._events.put_nowait(_END)  # later iterators end too
                return
            yield event

    def get_nowait(self) -> list[RunnerEvent]:
        """Events that arrived and were not consumed yet."""
        self._ensure_started()
        out = []
        while not self._events.empty():
            event = self._events.get_nowait()
            if event is _END:
                self._events.put_nowait(_END)
                break
            out.append(event)
        return out


async def spawn_local_runner(
    python: str = sys.executable,
    args: Sequence[str] = (),
    env: Optional[dict] = None,
    cwd: Optional[str] = None,
    stderr: Any = None,
    **client_options: Any,
) -> RunnerClient:
    """Start ``python -m nni.training_services.local.runner *args`` here with pipes.

    For tests and for platforms that run the runner on this machine. The process is
    ``client.process``; ``stderr`` is passed to the subprocess (default: inherited).
    """
    proc = await asyncio.create_subprocess_exec(
        python, "-m", rp.RUNNER_MODULE, *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=env,
        cwd=cwd,
        limit=rp.MAX_LINE_BYTES,
    )
    client = RunnerClient(proc.stdout, proc.stdin, name=client_options.pop("name", f"local runner (pid {proc.pid})"), **client_options)
    client.process = proc
    return client
