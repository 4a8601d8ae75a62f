"""The manager's side of the dispatcher: a child process speaking core's command protocol.

The dispatcher (``python -m nni --exp_params_file <file> --command_fds R,W``) hosts the
tuner / assessor / advisor. It runs as its own process so a slow ``fit`` never blocks the
manager's event loop and a crashing algorithm never kills the manager: a dispatcher that
sends ``ER`` or exits unasked is reported through ``on_exit(message)``.

A dispatcher that is alive but does not answer (SIGSTOP, a deadlock, an algorithm stuck in a
handler) is seen by :meth:`DispatcherClient.stalled_for`: the manager knows how many bytes of
commands it wrote and how many still wait unread in the pipe (``FIONREAD``); while the pipe is
empty it sends a ``PI`` (Ping, no answer) now and then, so a dispatcher that stopped reading is
noticed even when nothing else was asked of it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable, Optional, Union

from nni.runtime.protocol import CommandType, ProtocolError, decode_header, encode

from .dispatcher_launch import EarlyDispatcher, dispatcher_command, write_dispatcher_params

_logger = logging.getLogger("nni.server.dispatcher")

_HEADER = 16

CommandHandler = Callable[[CommandType, str], Union[None, Awaitable[None]]]
ExitHandler = Callable[[str], Union[None, Awaitable[None]]]


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    tail = [l for l in text.strip().splitlines() if l.strip()][-lines:]
    return " | ".join(t.strip() for t in tail)


class DispatcherClient:
    """Start the dispatcher and exchange commands with it.

    Args:
        config: the canonical experiment config (camelCase), passed in ``--exp_params_file``
            (without the search space, which is sent with ``IN``).
        log_dir: the experiment's ``log/`` folder; the dispatcher runs there, its stdout and
            stderr go to ``dispatcher.log``.
        on_command: called with every command the dispatcher sends (in order).
        on_exit: called once with a message if the dispatcher fails (``ER`` or an unexpected
            exit): a one-line summary, then (for an exception in the algorithm) a blank line
            and the traceback; not called after :meth:`terminate`.
        env: extra environment variables for the dispatcher.
    """

    def __init__(
        self,
        config: dict,
        log_dir: Union[str, os.PathLike],
        on_command: CommandHandler,
        on_exit: ExitHandler,
        env: Optional[dict] = None,
        early: Optional["EarlyDispatcher"] = None,
    ) -> None:
        self.early = early
        self.config = config
        self.log_dir = Path(log_dir)
        self.on_command = on_command
        self.on_exit = on_exit
        self.env = dict(env or {})
        self.process: Optional[asyncio.subprocess.Process] = None
        self._writer: Optional[asyncio.WriteTransport] = None
        self._reader_task: Optional[asyncio.Task] = None
        self._wait_task: Optional[asyncio.Task] = None
        self._error: Optional[str] = None
        self._terminating = False
        self._exit_reported = False
        self._sent_bytes = 0  # bytes of commands written so far
        self._consumed_seen = 0  # bytes the dispatcher had read at the last stall check
        self._stalled_since: Optional[float] = None  # monotonic time it stopped reading

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.early is not None:
            await self._attach_early(loop)
            return
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        params_file = write_dispatcher_params(self.config, str(self.log_dir))
        env = dict(os.environ)
        env.update(self.env)
        log_path = self.log_dir / "dispatcher.log"
        log_file = open(log_path, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *dispatcher_command(params_file, f"{to_child_r},{from_child_w}"),
                pass_fds=(to_child_r, from_child_w),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                cwd=str(self.log_dir),
                env=env,
                start_new_session=True,  # its own scheduling group, as in dispatcher_launch.spawn_early
            )
        finally:
            log_file.close()
            os.close(to_child_r)
            os.close(from_child_w)
        reader = asyncio.StreamReader(limit=2**31)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(from_child_r, "rb", 0))
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(to_child_w, "wb", 0))
        self._reader_task = loop.create_task(self._read_loop(reader))
        self._wait_task = loop.create_task(self._wait_exit())
        _logger.info("Dispatcher started, pid %s", self.process.pid)

    async def _attach_early(self, loop: asyncio.AbstractEventLoop) -> None:
        """Adopt a dispatcher started by :func:`spawn_early` before the manager's imports."""
        early = self.early
        self.process = _PopenAdapter(early.popen, loop)
        reader = asyncio.StreamReader(limit=2**31)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(early.read_fd, "rb", 0))
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(early.write_fd, "wb", 0))
        self._reader_task = loop.create_task(self._read_loop(reader))
        self._wait_task = loop.create_task(self._wait_exit())
        _logger.info("Dispatcher started early, pid %s", early.popen.pid)

    def send(self, command: CommandType, data: str = "") -> None:
        """Queue one command for the dispatcher (never blocks the loop)."""
        if self._writer is None or self._writer.is_closing():
            _logger.warning("Dispatcher is gone; dropped command %s", command.name)
            return
        _logger.debug("-> dispatcher %s %s", command.value.decode(), data[:300])
        frame = encode(command, data)
        self._sent_bytes += len(frame)
        self._writer.write(frame)

    def unread_bytes(self) -> int:
        """Bytes of commands sent and not read by the dispatcher yet (buffered or in the pipe)."""
        if self._writer is None or self._writer.is_closing():
            return 0
        unread = self._writer.get_write_buffer_size()
        pipe = self._writer.get_extra_info("pipe")
        try:
            import fcntl
            import termios

            buf = bytearray(4)
            fcntl.ioctl(pipe.fileno(), termios.FIONREAD, buf)
            unread += int.from_bytes(buf, sys.byteorder)
        except (ImportError, OSError, AttributeError, ValueError):
            pass  # no FIONREAD on pipes here: only the manager-side buffer is seen
        return unread

    def stalled_for(self, now: Optional[float] = None) -> float:
        """Seconds the dispatcher has left commands unread without reading any (0: it keeps up).

        Called periodically; when nothing is waiting it sends a ``PI`` so the next call sees
        whether the dispatcher still reads its commands.
        """
        if not self.alive or self._terminating:
            self._stalled_since = None
            return 0.0
        now = time.monotonic() if now is None else now
        unread = self.unread_bytes()
        consumed = self._sent_bytes - unread
        if unread == 0:
            self._stalled_since = None
            self.send(CommandType.Ping, "")
        elif consumed != self._consumed_seen or self._stalled_since is None:
            self._stalled_since = now  # it read something since the last check: not stuck
        self._consumed_seen = self._sent_bytes - self.unread_bytes()
        return 0.0 if self._stalled_since is None else now - self._stalled_since

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    header = await reader.readexactly(_HEADER)
                except asyncio.IncompleteReadError as err:
                    if err.partial:
                        self._error = self._error or "dispatcher closed its pipe inside a command header"
                    return
                command, length = decode_header(header)
                payload = (await reader.readexactly(length)).decode("utf-8") if length else ""
                _logger.debug("<- dispatcher %s %s", command.value.decode(), payload[:300])
                if command == CommandType.Error:
                    # the whole text: a one-line message, then the traceback for the web UI
                    self._error = payload.strip() or "dispatcher reported an error"
                    continue
                result = self.on_command(command, payload)
                if asyncio.iscoroutine(result):
                    await result
        except (ProtocolError, asyncio.IncompleteReadError) as err:
            self._error = f"dispatcher protocol error: {err}"
            if self.process is not None and self.process.returncode is None:
                self.process.kill()
        except Exception:  # a bug in a handler: log it, report the dispatcher as failed
            _logger.exception("Error while handling a dispatcher command")
            self._error = self._error or "manager failed to handle a dispatcher command; see nnimanager.log"
            if self.process is not None and self.process.returncode is None:
                self.process.kill()

    async def _wait_exit(self) -> None:
        assert self.process is not None
        rc = await self.process.wait()
        if self._reader_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._reader_task), 2)
            except (asyncio.TimeoutError, Exception):
                pass
        _logger.info("Dispatcher exited with code %s", rc)
        if self._terminating and not self._error:
            return
        message = self._error
        if not message:
            tail = _log_tail(self.log_dir / "dispatcher.log")
            message = f"dispatcher exited unexpectedly with code {rc}" + (f": {tail}" if tail else "")
        await self._report(message)

    async def _report(self, message: str) -> None:
        if self._exit_reported:
            return
        self._exit_reported = True
        result = self.on_exit(message)
        if asyncio.iscoroutine(result):
            await result

    async def terminate(self, timeout: float = 5.0) -> None:
        """Send ``TE`` and wait for the process to exit (killed after ``timeout`` seconds)."""
        if self.process is None:
            return
        self._terminating = True
        if self.process.returncode is None:
            self.send(CommandType.Terminate, "")
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._wait_task is not None:
            try:
                await asyncio.wait_for(self._wait_task, 2)
            except (asyncio.TimeoutError, Exception):
                pass
        if self._writer is not None:
            self._writer.close()


class _PopenAdapter:
    """The parts of ``asyncio.subprocess.Process`` used here, for a ``subprocess.Popen``."""

    def __init__(self, popen, loop: asyncio.AbstractEventLoop) -> None:
        self._popen = popen
        self._loop = loop
        self.pid = popen.pid
        self._waiter: Optional[asyncio.Future] = None

    @property
    def returncode(self) -> Optional[int]:
        return self._popen.poll()

    async def wait(self) -> int:
        if self._waiter is None:
            self._waiter = self._loop.run_in_executor(None, self._popen.wait)
        return await asyncio.shield(self._waiter)

    def kill(self) -> None:
        try:
            self._popen.kill()
        except ProcessLookupError:
            pass
