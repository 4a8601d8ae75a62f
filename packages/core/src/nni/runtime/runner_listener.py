"""Runners that connect back: the transport for platforms whose workers start elsewhere.

A SLURM job, a Ray task, a Kubernetes pod or a cloud job cannot be handed a pipe by the
manager; instead the platform starts the trial runner with ``--connect HOST:PORT --runner-id
ID`` and the secret token in the environment (``NNI_RUNNER_TOKEN``, never in argv where
``ps`` and job listings show it). The runner opens a TCP connection, sends one handshake
line, and then speaks the normal runner protocol (:mod:`.runner_protocol`) on that socket::

    listener = RunnerListener(host=config.nni_manager_ip or "127.0.0.1")
    await listener.start()
    listener.expect("runner-1")
    submit_job(argv=["python3", "-m", RUNNER_MODULE, *listener.runner_args("runner-1")],
               env=listener.runner_env("runner-1"))
    client = await listener.wait_runner("runner-1", timeout=600)   # a RunnerClient
    await client.hello(context, platform="slurm")

The handshake (one JSON line each way) keeps strangers out: a connection whose runner id is
unknown, already connected, or whose token does not match is answered with a one-line reason
and closed. Closing the socket is the runner's lifeline, as end of stdin is for a piped runner.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import secrets
from typing import Optional

from . import runner_protocol as rp
from .runner_client import RunnerClient

__all__ = ["RunnerListener", "HandshakeError", "ListenError", "connect_to_manager", "TOKEN_ENV"]

_logger = logging.getLogger("nni.runtime.runner_listener")

#: The environment variable that carries a runner's token.
TOKEN_ENV = "NNI_RUNNER_TOKEN"
#: Seconds a new connection has to send its handshake line.
HANDSHAKE_TIMEOUT = 10.0


class HandshakeError(ConnectionError):
    """The manager refused the runner's handshake (the message says why)."""


class ListenError(OSError, ValueError):
    """:meth:`RunnerListener.start` cannot listen on the configured address: a user error (the
    message names the field, ``nniManagerIp``); an :class:`OSError` too, as binding failures were."""


class RunnerListener:
    """A TCP server that runners started elsewhere connect back to.

    Args:
        host: the address to bind, and the one runners are told to connect to
            (``nniManagerIp``; tests use 127.0.0.1).
        port: 0 picks a free port.
        advertise_host: the address runners are told, when it differs from the bound one
            (e.g. bind ``0.0.0.0``, advertise the login node's name).
        reply_timeout: passed to every :class:`RunnerClient`.
        field: the configuration field that gave ``host``, named by the error :meth:`start`
            raises when it cannot listen there.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, advertise_host: Optional[str] = None,
                 reply_timeout: float = 30.0, field: str = "nniManagerIp") -> None:
        self.host = host
        self.port = port
        self.advertise_host = advertise_host
        self.reply_timeout = reply_timeout
        self.field = field
        self._server: Optional[asyncio.base_events.Server] = None
        self._tokens: dict[str, str] = {}
        self._waiting: dict[str, asyncio.Future] = {}
        self._connected: set[str] = set()

    async def start(self) -> None:
        """Listen; :class:`ListenError` (one line naming :attr:`field`) when the address is not usable here."""
        try:
            self._server = await asyncio.start_server(self._accept, self.host, self.port, limit=rp.MAX_LINE_BYTES)
        except OSError as err:
            raise ListenError(f"{self.field}: cannot listen for trial runners on {self.host!r} ({err.strerror or err}); "
                              "give an address of this machine the jobs can reach") from None
        self.port = self._server.sockets[0].getsockname()[1]
        _logger.info("Waiting for runners on %s:%d", self.host, self.port)

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) runners connect to."""
        if self._server is None:
            raise RuntimeError("RunnerListener.start() has not been awaited yet")
        return (self.advertise_host or self.host, self.port)

    def expect(self, runner_id: str) -> str:
        """Register ``runner_id`` and return its secret token (a new one each call)."""
        if not runner_id or any(c.isspace() for c in runner_id):
            raise ValueError(f"runner id {runner_id!r}: must be a non-empty string without spaces")
        token = secrets.token_hex(24)
        self._tokens[runner_id] = token
        self._connected.discard(runner_id)
        old = self._waiting.get(runner_id)
        if old is None or old.done():
            self._waiting[runner_id] = asyncio.get_running_loop().create_future()
        return token

    def runner_args(self, runner_id: str) -> list[str]:
        """The runner's command-line arguments (after ``python -m RUNNER_MODULE``)."""
        host, port = self.address
        return ["--connect", f"{host}:{port}", "--runner-id", runner_id]

    def runner_env(self, runner_id: str) -> dict[str, str]:
        """The environment the runner needs (its token)."""
        return {TOKEN_ENV: self._tokens[runner_id]}

    def runner_command(self, runner_id: str, python: str = "python3", extra: tuple[str, ...] = ()) -> list[str]:
        """``[python, -m, RUNNER_MODULE, --connect, HOST:PORT, --runner-id, ID, *extra]``."""
        return [python, "-m", rp.RUNNER_MODULE, *self.runner_args(runner_id), *extra]

    async def wait_runner(self, runner_id: str, timeout: Optional[float] = None) -> RunnerClient:
        """The :class:`RunnerClient` of ``runner_id``, once it connected and authenticated."""
        if runner_id not in self._waiting:
            raise KeyError(f"runner {runner_id!r} was not expected (call expect() first)")
        return await asyncio.wait_for(asyncio.shield(self._waiting[runner_id]), timeout)

    def is_connected(self, runner_id: str) -> bool:
        return runner_id in self._connected

    def forget(self, runner_id: str) -> None:
        """Stop accepting ``runner_id`` (its job ended or was cancelled)."""
        self._tokens.pop(runner_id, None)
        self._connected.discard(runner_id)
        fut = self._waiting.pop(runner_id, None)
        if fut is not None and not fut.done():
            fut.cancel()

    async def close(self) -> None:
        """Stop listening; runners already connected keep their connections."""
        for runner_id in list(self._waiting):
            self.forget(runner_id)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            line = await asyncio.wait_for(reader.readline(), HANDSHAKE_TIMEOUT)
            runner_id = self._check(line)
        except (asyncio.TimeoutError, ValueError, ConnectionError, OSError) as err:
            _logger.warning("Refused a runner connection from %s: %s", peer, err)
            try:
                writer.write((json.dumps({"type": "refused", "reason": str(err)}) + "\n").encode())
                await writer.drain()
            except (ConnectionError, OSError):
                pass
            writer.close()
            return
        self._connected.add(runner_id)
        writer.write(b'{"type": "accepted"}\n')
        await writer.drain()
        client = RunnerClient(reader, writer, reply_timeout=self.reply_timeout, name=f"runner {runner_id} ({peer[0]})")
        fut = self._waiting.get(runner_id)
        if fut is None or fut.done():  # forgotten meanwhile
            writer.close()
            return
        _logger.info("Runner %s connected from %s", runner_id, peer)
        fut.set_result(client)

    def _check(self, line: bytes) -> str:
        if not line:
            raise ValueError("the connection closed before the handshake")
        try:
            msg = json.loads(line)
            runner_id, token = str(msg["runner_id"]), str(msg["token"])
        except (ValueError, KeyError, TypeError):
            raise ValueError("the first line is not a runner handshake ({\"runner_id\": ..., \"token\": ...})") from None
        expected = self._tokens.get(runner_id)
        if expected is None:
            raise ValueError(f"runner {runner_id!r} is not expected by this experiment")
        if not hmac.compare_digest(expected.encode(), token.encode()):
            raise ValueError(f"runner {runner_id!r}: wrong token")
        if runner_id in self._connected:
            raise ValueError(f"runner {runner_id!r} is already connected")
        return runner_id


async def connect_to_manager(address: str, runner_id: str, token: Optional[str] = None, retry_for: float = 30.0
                             ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The runner's side: connect to ``HOST:PORT``, authenticate, return the stream.

    Connection failures are retried for ``retry_for`` seconds (the job may start while the
    network settles); a refused handshake raises :class:`HandshakeError` at once.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--connect {address!r}: expected HOST:PORT")
    host = host.strip("[]")
    token = token if token is not None else os.environ.get(TOKEN_ENV)
    if not token:
        raise ValueError(f"--connect needs the runner's token in the environment variable {TOKEN_ENV}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + retry_for
    delay = 0.2
    while True:
        try:
            reader, writer = await asyncio.open_connection(host, int(port), limit=rp.MAX_LINE_BYTES)
            break
        except OSError as err:
            if loop.time() + delay > deadline:
                raise ConnectionError(f"cannot reach the manager at {address}: {err}") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    writer.write((json.dumps({"runner_id": runner_id, "token": token}) + "\n").encode())
    await writer.drain()
    answer = await asyncio.wait_for(reader.readline(), HANDSHAKE_TIMEOUT + 5)
    try:
        reply = json.loads(answer) if answer else {"type": "refused", "reason": "the manager closed the connection"}
    except ValueError:
        reply = {"type": "refused", "reason": f"unexpected answer {answer[:80]!r}"}
    if reply.get("type") != "accepted":
        writer.close()
        raise HandshakeError(f"the manager at {address} refused runner {runner_id!r}: {reply.get('reason')}")
    return reader, writer
