"""SSH connections to the machines of a remote experiment (paramiko, driven from asyncio).

Every blocking paramiko call runs in a thread (:data:`_EXECUTOR`, or one pump thread per
stream), so the event loop never waits on the network.

Host keys are checked against ``~/.ssh/known_hosts`` and NNI's own file
(``$NNI_CONFIG_DIR/known_hosts``, default ``~/.config/nni/known_hosts``). An unknown key is
refused unless accepting is asked for (``SshMachine(..., accept_new_host_key=True)`` or the
environment variable ``NNI_SSH_ACCEPT_NEW_HOST_KEYS=1``); an accepted key is recorded in NNI's
file, so later connections check it. A key that differs from the recorded one is always refused.

Secrets (``password``, ``sshPassphrase``) stay in private attributes: they are not part of
``repr``, of any error message or of any log line.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import shlex
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import paramiko

__all__ = [
    "ACCEPT_ENV", "RemoteMachineError", "SshError", "SshMachine", "ChannelWriter",
    "known_hosts_path", "remote_path",
]

_log = logging.getLogger(__name__)

ACCEPT_ENV = "NNI_SSH_ACCEPT_NEW_HOST_KEYS"
# A few long commands per machine must not starve the loop's default executor.
_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="nni-ssh")
_READ_SIZE = 65536
_STDERR_TAIL = 65536


class RemoteMachineError(OSError):
    """A remote machine cannot be used; the one-line message names it (``user@host:port``) and the fix."""

    def __init__(self, message: str, kind: str = "other"):
        super().__init__(message)
        self.kind = kind

    def __str__(self) -> str:
        return self.args[0]


class SshError(RemoteMachineError):
    """The SSH connection failed or dropped.

    ``kind`` is one of ``refused``, ``timeout``, ``unreachable``, ``auth``, ``host_key``,
    ``host_key_changed``, ``key_file``, ``handshake``, ``closed``. Only network faults
    (:attr:`retryable`) are worth retrying; a wrong password or host key is not.
    """

    @property
    def retryable(self) -> bool:
        return self.kind in ("refused", "timeout", "unreachable", "handshake", "closed")


def known_hosts_path() -> Path:
    """NNI's own known_hosts file (``$NNI_CONFIG_DIR/known_hosts``, default ``~/.config/nni/known_hosts``)."""
    base = os.environ.get("NNI_CONFIG_DIR")
    return (Path(base).expanduser() if base else Path.home() / ".config" / "nni") / "known_hosts"


def remote_path(path: str) -> str:
    """``path`` quoted for a POSIX shell; a leading ``~/`` still expands to the remote home."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


class _UnknownHostKey(Exception):
    def __init__(self, hostname: str, key: paramiko.PKey):
        super().__init__(hostname)
        self.hostname, self.key = hostname, key


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuse unknown keys, or accept them and append them to NNI's known_hosts."""

    def __init__(self, accept: bool, record_to: Path):
        self.accept, self.record_to = accept, record_to

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if not self.accept:
            raise _UnknownHostKey(hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.record_to.parent.mkdir(parents=True, exist_ok=True)
        with open(self.record_to, "a", encoding="utf-8") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        _log.info("accepted and recorded the host key of %s (%s %s) in %s", hostname, key.get_name(),
                  key.fingerprint, self.record_to)


@dataclass
class _Auth:
    password: str | None
    key_file: str | None
    passphrase: str | None

    def __repr__(self) -> str:  # never show secrets, whatever prints this
        return "_Auth(***)"


class SshMachine:
    """One machine of ``machineList``, reached over SSH.

    Args:
        machine: the canonical camelCase machine dict (``host``, ``port``, ``user``, ``password``,
            ``sshKeyFile``, ``sshPassphrase``, ``pythonPath``, ...).
        accept_new_host_key: accept and record an unknown host key; default: the environment
            variable ``NNI_SSH_ACCEPT_NEW_HOST_KEYS`` is ``1``/``true``/``yes``.
        known_hosts: NNI's known_hosts file (default :func:`known_hosts_path`).
        connect_timeout: seconds for TCP connect, banner and authentication each.
        keepalive: seconds between SSH keepalive packets (0: none).
        allow_agent / look_for_keys: also try the SSH agent / ``~/.ssh/id_*`` (off: only the
            configured password or key is used, so a wrong one fails clearly).

    Example::

        m = SshMachine({"host": "10.1.1.1", "port": 22, "user": "bob", "password": "..."})
        await m.connect_with_retry()
        rc, out, err = await m.run("uname -a")
    """

    def __init__(self, machine: Mapping, *, accept_new_host_key: bool | None = None,
                 known_hosts: Path | None = None, connect_timeout: float = 10.0, keepalive: float = 15.0,
                 allow_agent: bool = False, look_for_keys: bool = False):
        self.host: str = machine["host"]
        self.port: int = int(machine.get("port") or 22)
        self.user: str = machine["user"]
        self.python_path: str | None = machine.get("pythonPath")
        self.config = {k: v for k, v in machine.items() if k not in ("password", "sshPassphrase")}
        self._auth = _Auth(machine.get("password"), machine.get("sshKeyFile"), machine.get("sshPassphrase"))
        if accept_new_host_key is None:
            accept_new_host_key = os.environ.get(ACCEPT_ENV, "").strip().lower() in ("1", "true", "yes")
        self.accept_new_host_key = accept_new_host_key
        self.known_hosts = Path(known_hosts) if known_hosts else known_hosts_path()
        self.connect_timeout = connect_timeout
        self.keepalive = keepalive
        self.allow_agent, self.look_for_keys = allow_agent, look_for_keys
        self._client: paramiko.SSHClient | None = None
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        """``user@host:port``: how messages name this machine."""
        return f"{self.user}@{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"SshMachine({self.name})"

    @property
    def connected(self) -> bool:
        """Whether the SSH transport is up."""
        transport = self._client.get_transport() if self._client else None
        return bool(transport and transport.is_active())

    # ----- connecting -----
    async def connect(self) -> None:
        """Open the SSH connection (no-op when it is up); raises :class:`SshError` with a one-line reason."""
        async with self._lock:
            if self.connected:
                return
            self._drop()
            loop = asyncio.get_running_loop()
            self._client = await loop.run_in_executor(_EXECUTOR, self._connect_blocking)
        _log.info("connected to %s", self.name)

    async def connect_with_retry(self, *, attempts: int = 6, first_delay: float = 0.5, max_delay: float = 10.0,
                                 factor: float = 2.0) -> None:
        """:meth:`connect`, retrying network faults with exponential back-off.

        Waits ``first_delay``, ``first_delay * factor``, ... (at most ``max_delay``) between
        ``attempts`` tries; authentication and host-key failures are raised at once.
        """
        delay = first_delay
        for attempt in range(1, attempts + 1):
            try:
                await self.connect()
                return
            except SshError as err:
                if not err.retryable or attempt == attempts:
                    if err.retryable:
                        raise SshError(f"{err} (gave up after {attempts} attempts)", err.kind) from None
                    raise
                _log.warning("%s; retrying in %.1f s (attempt %d of %d)", err, delay, attempt, attempts)
            await asyncio.sleep(delay)
            delay = min(delay * factor, max_delay)

    def _connect_blocking(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        system = Path.home() / ".ssh" / "known_hosts"
        try:
            if system.is_file():
                client.load_system_host_keys(str(system))
            if self.known_hosts.is_file():
                # loaded as "system" keys too: paramiko's save() must never rewrite the user's files
                client.load_system_host_keys(str(self.known_hosts))
        except (OSError, paramiko.SSHException) as err:
            raise SshError(f"{self.name}: cannot read known_hosts ({type(err).__name__}); fix or remove the file",
                           "host_key") from None
        client.set_missing_host_key_policy(_HostKeyPolicy(self.accept_new_host_key, self.known_hosts))
        auth = self._auth
        kwargs: dict = {}
        if auth.password is not None:
            kwargs["password"] = auth.password
        elif auth.key_file:
            key_file = Path(auth.key_file).expanduser()
            if not key_file.is_file():
                raise SshError(f"{self.name}: sshKeyFile {key_file} does not exist; give an existing identity "
                               f"file or a password", "key_file")
            kwargs["key_filename"] = str(key_file)
            if auth.passphrase is not None:
                kwargs["passphrase"] = auth.passphrase
        try:
            client.connect(self.host, self.port, username=self.user, timeout=self.connect_timeout,
                           banner_timeout=self.connect_timeout, auth_timeout=self.connect_timeout,
                           allow_agent=self.allow_agent, look_for_keys=self.look_for_keys, **kwargs)
        except Exception as err:  # noqa: BLE001 - every failure becomes one line without secrets
            client.close()
            raise self._connect_error(err) from None
        if self.keepalive:
            client.get_transport().set_keepalive(int(max(1, self.keepalive)))
        return client

    def _connect_error(self, err: BaseException) -> SshError:
        where = f"{self.name}"
        if isinstance(err, _UnknownHostKey):
            return SshError(
                f"{where}: unknown host key {err.key.get_name()} {err.key.fingerprint}; after checking it, "
                f"accept it with {ACCEPT_ENV}=1 (it is then recorded in {self.known_hosts}) or add it to "
                f"~/.ssh/known_hosts (ssh -p {self.port} {self.user}@{self.host})", "host_key")
        if isinstance(err, paramiko.BadHostKeyException):
            return SshError(
                f"{where}: host key changed (got {err.key.get_name()} {err.key.fingerprint}); if the machine "
                f"was reinstalled, remove its old line from {self.known_hosts} or ~/.ssh/known_hosts",
                "host_key_changed")
        if isinstance(err, paramiko.PasswordRequiredException):
            return SshError(f"{where}: sshKeyFile {self._auth.key_file} is encrypted; give its sshPassphrase", "auth")
        if isinstance(err, paramiko.AuthenticationException):
            how = "password" if self._auth.password is not None else f"sshKeyFile {self._auth.key_file}"
            fix = ("check user and password" if self._auth.password is not None
                   else "check user, key and sshPassphrase, and that the public key is in the remote authorized_keys")
            return SshError(f"{where}: authentication failed with {how}; {fix}", "auth")
        if isinstance(err, ConnectionRefusedError) or (
                isinstance(err, paramiko.ssh_exception.NoValidConnectionsError)
                and all(isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == 111
                        for e in err.errors.values())):
            return SshError(f"{where}: connection refused; check host and port and that sshd runs there", "refused")
        if isinstance(err, (socket.timeout, TimeoutError)):
            return SshError(f"{where}: connection timed out after {self.connect_timeout:g} s; check host, port "
                            f"and firewalls", "timeout")
        if isinstance(err, socket.gaierror):
            return SshError(f"{where}: host name not found; check host", "unreachable")
        if isinstance(err, paramiko.SSHException):
            # paramiko's own messages carry no secrets, only protocol state
            detail = str(err).splitlines()[0] if str(err) else type(err).__name__
            return SshError(f"{where}: SSH handshake failed ({detail}); "
                            f"check that port {self.port} is an SSH server", "handshake")
        if isinstance(err, OSError):
            return SshError(f"{where}: cannot connect ({err.strerror or type(err).__name__}); check host and "
                            f"network", "unreachable")
        return SshError(f"{where}: cannot connect ({type(err).__name__})", "other")

    def _drop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def close(self) -> None:
        """Close the connection and every channel on it."""
        async with self._lock:
            await asyncio.get_running_loop().run_in_executor(_EXECUTOR, self._drop)

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport() if self._client else None
        if not (transport and transport.is_active()):
            raise SshError(f"{self.name}: not connected (the SSH connection dropped or was never opened)", "closed")
        return transport

    # ----- commands -----
    def command(self, cmd: str) -> str:
        """``cmd`` as run on the machine: ``pythonPath`` in front of ``PATH`` (the docs' rule)."""
        if self.python_path:
            return f"export PATH={shlex.quote(self.python_path)}:\"$PATH\"; {cmd}"
        return cmd

    def _open_exec(self, cmd: str) -> paramiko.Channel:
        try:
            channel = self._transport().open_session(timeout=self.connect_timeout)
            channel.exec_command(self.command(cmd))
        except SshError:
            raise
        except (paramiko.SSHException, OSError, EOFError) as err:
            raise SshError(f"{self.name}: cannot start a command ({type(err).__name__}); the connection "
                           f"may have dropped", "closed") from None
        return channel

    async def run(self, cmd: str, *, input: bytes | None = None, timeout: float | None = None) -> tuple[int, str, str]:
        """Run a shell command; returns ``(exit status, stdout, stderr)`` (-1 if no status came back).

        Raises :class:`SshError`: kind ``timeout`` when ``timeout`` seconds pass first, ``closed``
        when the connection is or goes down.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_EXECUTOR, self._run_blocking, cmd, input, timeout)

    def _run_blocking(self, cmd: str, data: bytes | None, timeout: float | None) -> tuple[int, str, str]:
        channel = self._open_exec(cmd)
        try:
            channel.settimeout(timeout)
            if data:
                channel.sendall(data)
            channel.shutdown_write()
            out, err = _read_both(channel)
            status = channel.recv_exit_status()
            if status == -1 and not channel.get_transport().is_active():
                raise SshError(f"{self.name}: connection dropped while running a command", "closed")
            return status, out.decode(errors="replace"), err.decode(errors="replace")
        except socket.timeout:
            raise SshError(f"{self.name}: command did not finish within {timeout:g} s", "timeout") from None
        finally:
            channel.close()

    def open_exec_channel(self, cmd: str) -> paramiko.Channel:
        """A raw paramiko channel running ``cmd`` (blocking; for code already in a worker thread)."""
        return self._open_exec(cmd)

    async def open_stream(self, cmd: str) -> tuple[asyncio.StreamReader, ChannelWriter]:
        """Start ``cmd`` and return its stdin/stdout as an asyncio ``(reader, writer)`` pair.

        The reader gets the command's stdout and EOF when the command closes it (or the
        connection drops); ``writer.write_eof()`` closes the command's stdin. The command's
        stderr is kept (last 64 KiB) in ``writer.stderr_tail()``; ``await writer.exit_status()``
        waits for its exit status.
        """
        loop = asyncio.get_running_loop()
        channel = await loop.run_in_executor(_EXECUTOR, self._open_exec, cmd)
        reader = asyncio.StreamReader(limit=2 ** 24)
        writer = ChannelWriter(channel, loop, self.name)
        threading.Thread(target=_pump, args=(channel, reader, loop, writer), daemon=True,
                         name=f"nni-ssh-pump {self.name}").start()
        return reader, writer


def _read_both(channel: paramiko.Channel) -> tuple[bytes, bytes]:
    """All of stdout and stderr (stderr read by a helper thread: either may fill its window first)."""
    err_chunks: list[bytes] = []
    failure: list[BaseException] = []

    def read_err() -> None:
        try:
            while chunk := channel.recv_stderr(_READ_SIZE):
                err_chunks.append(chunk)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            failure.append(exc)

    helper = threading.Thread(target=read_err, daemon=True)
    helper.start()
    out_chunks = []
    while chunk := channel.recv(_READ_SIZE):
        out_chunks.append(chunk)
    helper.join()
    if failure:
        raise failure[0]
    return b"".join(out_chunks), b"".join(err_chunks)


def _pump(channel: paramiko.Channel, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop,
          writer: "ChannelWriter") -> None:
    """Thread: channel stdout -> reader (then EOF); channel stderr -> the writer's tail buffer."""

    def feed(data: bytes) -> None:
        if not reader.at_eof():
            reader.feed_data(data)

    def post(fn, *args) -> bool:
        try:
            loop.call_soon_threadsafe(fn, *args)
            return True
        except RuntimeError:  # the loop is closed: nobody reads any more
            return False

    def drain_stderr() -> None:
        try:
            while chunk := channel.recv_stderr(_READ_SIZE):
                writer._add_stderr(chunk)
        except (OSError, EOFError, paramiko.SSHException):
            pass

    err_thread = threading.Thread(target=drain_stderr, daemon=True)
    err_thread.start()
    try:
        while chunk := channel.recv(_READ_SIZE):
            if not post(feed, chunk):
                return
    except (OSError, EOFError, paramiko.SSHException):
        pass  # connection dropped: the reader sees EOF; the owner notices via exit_status() / connected
    err_thread.join(timeout=5)
    post(reader.feed_eof)


class ChannelWriter:
    """The asyncio side of a command's stdin (the ``asyncio.StreamWriter`` methods a protocol client uses).

    ``write()`` never blocks: data is queued and sent by a worker thread; ``drain()`` waits until
    everything written so far is sent.
    """

    def __init__(self, channel: paramiko.Channel, loop: asyncio.AbstractEventLoop, name: str):
        self.channel = channel
        self._loop = loop
        self._name = name
        self._buf = bytearray()
        self._flush: asyncio.Task | None = None
        self._closing = False
        self._eof = False
        self._stderr = bytearray()
        self._stderr_lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the command's stdin."""
        if self._eof:
            raise SshError(f"{self._name}: stream is closed for writing", "closed")
        self._buf += data
        if self._flush is None or self._flush.done():
            self._flush = self._loop.create_task(self._send_all())

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    async def _send_all(self) -> None:
        while self._buf:
            chunk = bytes(self._buf)
            self._buf.clear()
            try:
                await self._loop.run_in_executor(_EXECUTOR, self.channel.sendall, chunk)
            except (OSError, EOFError, paramiko.SSHException):
                self._buf.clear()
                raise SshError(f"{self._name}: connection dropped while sending", "closed") from None

    async def drain(self) -> None:
        """Wait until every byte written so far reached the channel."""
        if self._flush is not None:
            await self._flush

    def _then(self, action) -> None:
        """Run the blocking ``action`` in a thread once everything queued before it is sent."""
        before = self._flush

        async def step() -> None:
            if before is not None:
                try:
                    await before
                except SshError:
                    pass
            try:
                await self._loop.run_in_executor(_EXECUTOR, action)
            except (OSError, EOFError, paramiko.SSHException):
                pass  # the channel is gone already: nothing left to close

        self._flush = self._loop.create_task(step())

    def write_eof(self) -> None:
        """Close the command's stdin once everything queued is sent (``drain()`` waits for it)."""
        if not self._eof:
            self._eof = True
            self._then(self.channel.shutdown_write)

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return self._closing or self.channel.closed

    def close(self) -> None:
        """Send what is queued, close the command's stdin, and close the channel.

        The command gets up to :attr:`close_grace` seconds to exit on that EOF, so that
        :meth:`exit_status` still reports its status; then the channel is closed regardless.
        """
        if not self._closing:
            self._closing = self._eof = True
            self._then(self._close_blocking)

    close_grace = 5.0

    def _close_blocking(self) -> None:
        channel = self.channel
        try:
            if not channel.closed:
                channel.shutdown_write()
                channel.status_event.wait(self.close_grace)
        finally:
            channel.close()

    async def wait_closed(self) -> None:
        if self._flush is not None:
            try:
                await self._flush
            except SshError:
                pass

    async def exit_status(self) -> int:
        """Wait for the command to end; its exit status, or -1 when the connection dropped first."""
        return await self._loop.run_in_executor(_EXECUTOR, self.channel.recv_exit_status)

    def _add_stderr(self, chunk: bytes) -> None:
        with self._stderr_lock:
            self._stderr += chunk
            del self._stderr[:-_STDERR_TAIL]

    def stderr_tail(self) -> str:
        """The last 64 KiB the command wrote to stderr."""
        with self._stderr_lock:
            return self._stderr.decode(errors="replace")

    def get_extra_info(self, name: str, default=None):
        return {"peername": self._name}.get(name, default)
