"""The trial runner: a :class:`LocalTrainingService` driven over stdin / stdout.

Started on a worker as ``python -m nni.training_services.local.runner [--single]``, it reads
JSON-line commands on stdin and writes JSON-line events on stdout
(:mod:`nni.runtime.runner_protocol`); any transport that gives a duplex byte stream can carry
it (an SSH exec channel, a SLURM job's or a Ray actor's connection, local pipes). Everything it
writes on stdout is protocol: file descriptor 1 is pointed at stderr before anything else runs,
so a stray ``print`` cannot corrupt the stream; logs go to stderr or ``--log-file``; trials
write to their own files.

Lifeline: end of stdin (the manager or the transport went away), SIGTERM, SIGHUP or SIGINT stop
every trial (SYS_CANCELED), send their last events and ``stopped``, and exit. When the runner
itself is killed (``kill -9``) the local service's lifeline pipe stops its trials.

``--single`` (non-reuse mode): run the one trial it is given, then stop and exit.

``--connect HOST:PORT --runner-id ID`` (platforms whose workers start elsewhere: SLURM, Ray,
Kubernetes, cloud jobs): instead of stdin / stdout, connect to the manager's
:class:`~nni.runtime.runner_listener.RunnerListener`, authenticate with the token in
``NNI_RUNNER_TOKEN`` and speak the protocol on that socket; the socket closing is the lifeline.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Optional

from nni.runtime import runner_protocol as rp
from nni.runtime.training_service import MetricEvent, RequestNeverSatisfiable, StateEvent, TrialJobStatus, now_ms

from .service import LocalTrainingService

_logger = logging.getLogger("nni.training_services.local.runner")

#: Exit codes: 0 after ``stopped``, 2 when the manager speaks another protocol version.
EXIT_OK = 0
EXIT_VERSION_MISMATCH = 2
#: ... 3 when ``--connect`` could not reach or was refused by the manager.
EXIT_CONNECT_FAILED = 3
#: Seconds the last events may take to leave once every trial has ended.
FLUSH_TIMEOUT = 10.0


class _Output:
    """The protocol stream: ordered, non-blocking writes; a closed peer ends the runner."""

    def __init__(self, writer: Optional[asyncio.StreamWriter], fileobj, on_lost) -> None:
        self._writer = writer
        self._file = fileobj  # fallback when the fd is a regular file (``> log``)
        self._on_lost = on_lost
        self.lost = False

    def send(self, line: bytes) -> None:
        if self.lost:
            return
        try:
            if self._writer is not None:
                self._writer.write(line)
            else:
                self._file.write(line)
                self._file.flush()
        except (ConnectionError, OSError, RuntimeError) as err:
            self._lost(err)

    async def drain(self) -> None:
        if self._writer is None or self.lost:
            return
        try:
            await self._writer.drain()
        except (ConnectionError, OSError, RuntimeError) as err:
            self._lost(err)

    def _lost(self, err: BaseException) -> None:
        if not self.lost:
            self.lost = True
            self._on_lost(f"the manager's stream closed ({err})")


class TrialRunner:
    """Serves one protocol stream with one :class:`LocalTrainingService`.

    Args:
        output: where protocol lines go (``send(bytes)`` and ``async drain()``).
        single: non-reuse mode (one trial, then stop).
    """

    def __init__(self, output, single: bool = False) -> None:
        self.out = output
        self.single = single
        self.ts: Optional[LocalTrainingService] = None
        self.exit_code = EXIT_OK
        self._quit = asyncio.Event()
        self._reason = ""
        self._stop_reply_to = None
        self._forwarder: Optional[asyncio.Task] = None
        self._single_trial: Optional[str] = None
        self._line_no = 0
        self._platform = "local"

    def request_stop(self, reason: str, reply_to=None) -> None:
        if not self._quit.is_set():
            self._reason = reason
            self._stop_reply_to = reply_to
            self._quit.set()

    async def serve(self, reader) -> int:
        """Read commands from ``reader`` (``async readline()``) until told or forced to stop."""
        read_task = asyncio.get_running_loop().create_task(self._read_loop(reader))
        await self._quit.wait()
        read_task.cancel()
        try:
            await read_task
        except asyncio.CancelledError:
            pass
        _logger.info("Stopping: %s", self._reason)
        if self.ts is not None:
            await self.ts.stop()
            if self._forwarder is not None:
                try:  # the feed ends after the last event; a manager that stopped reading gets 10 s
                    await asyncio.wait_for(self._forwarder, FLUSH_TIMEOUT)
                except asyncio.TimeoutError:
                    _logger.warning("The manager did not read the last events within %g s; exiting anyway", FLUSH_TIMEOUT)
        fields = {"reason": self._reason}
        if self._stop_reply_to is not None:
            fields["reply_to"] = self._stop_reply_to
        self.out.send(rp.encode("stopped", **fields))
        try:
            await asyncio.wait_for(self.out.drain(), FLUSH_TIMEOUT)
        except asyncio.TimeoutError:
            pass
        return self.exit_code

    async def _read_loop(self, reader) -> None:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # longer than MAX_LINE_BYTES: asyncio dropped it
                self._line_no += 1
                self._error(f"runner protocol: line {self._line_no} is longer than {rp.MAX_LINE_BYTES} bytes; it was dropped")
                continue
            if not line:
                self.request_stop("the manager's stream ended (stdin closed or the connection dropped)")
                return
            self._line_no += 1
            if not line.strip():
                continue
            try:
                msg = rp.decode(line, rp.MANAGER_MESSAGES)
            except rp.RunnerProtocolError as err:
                self._error(f"line {self._line_no}: {err}")
                continue
            await self._handle(msg)
            await self.out.drain()

    def _error(self, text: str, reply_to=None, error_type: Optional[str] = None) -> None:
        _logger.warning("%s", text)
        fields: dict = {"error": " ".join(text.split("\n"))}
        if reply_to is not None:
            fields["reply_to"] = reply_to
        if error_type:
            fields["error_type"] = error_type
        self.out.send(rp.encode("error", **fields))

    async def _handle(self, msg: dict) -> None:
        kind, rid = msg["type"], msg["id"]
        if kind == "ping":
            self.out.send(rp.encode("pong", reply_to=rid, time=now_ms()))
            return
        if kind == "stop":
            self.request_stop("the manager asked the runner to stop", reply_to=rid)
            return
        if kind == "hello":
            await self._hello(msg)
            return
        if self.ts is None:
            self._error(f"runner protocol: {kind} before hello; send hello first", rid, "RunnerProtocolError")
            return
        try:
            if kind == "submit":
                await self._submit(msg)
            elif kind == "cancel":
                status = TrialJobStatus(msg["status"]) if msg.get("status") else None
                await self.ts.cancel(msg["trial_id"], bool(msg.get("early_stopped")), status)
                self.out.send(rp.encode("done", reply_to=rid))
            elif kind == "send_parameter":
                await self.ts.send_parameter(msg["trial_id"], msg["parameter"])
                self.out.send(rp.encode("done", reply_to=rid))
        except KeyError as err:
            self._error(f"unknown trial {err.args[0]!r}" if err.args else "unknown trial", rid, "KeyError")
        except (ValueError, TypeError, RuntimeError, OSError) as err:
            self._error(f"{kind}: {err}", rid, type(err).__name__)

    async def _hello(self, msg: dict) -> None:
        rid = msg["id"]
        try:
            rp.check_version(msg["protocol_version"])
        except rp.RunnerProtocolError as err:
            self._error(str(err), rid, "RunnerProtocolError")
            self.exit_code = EXIT_VERSION_MISMATCH
            self.request_stop("protocol version mismatch")
            return
        if self.ts is not None:
            self._error("runner protocol: hello: this runner already received hello; start a new runner for another experiment",
                        rid, "RunnerProtocolError")
            return
        try:
            context = rp.context_from_wire(msg["context"])
            options = msg.get("options") or {}
            ts = LocalTrainingService(
                dict(msg.get("config") or {}),
                context,
                poll_interval=float(options.get("poll_interval", 0.02)),
                kill_grace=float(options.get("kill_grace", 5.0)),
            )
            platform = str(msg.get("platform") or "local")
            await ts.start()
            gpus = [{"index": g.index, "activeProcessNum": g.active_process_num} for g in ts.gpu.inventory.read()]
        except (TypeError, ValueError, OSError) as err:
            self._error(f"hello: {err}", rid, type(err).__name__)
            return
        self.ts = ts
        self._platform = platform
        self._forwarder = asyncio.get_running_loop().create_task(self._forward_events())
        from nni.runtime.distributions import core_version

        self.out.send(rp.encode(
            "ready",
            reply_to=rid,
            protocol_version=rp.PROTOCOL_VERSION,
            nni_version=core_version(),
            python=".".join(str(v) for v in sys.version_info[:3]),
            python_executable=sys.executable,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            gpus=gpus,
            gpu_source=ts.gpu.inventory.description,
            capacity=ts.capacity() if hasattr(ts, "capacity") else None,
            single=self.single,
        ))
        _logger.info("Serving experiment %s (platform %s) in %s", context.experiment_id, platform, context.experiment_dir)

    async def _submit(self, msg: dict) -> None:
        rid = msg["id"]
        raw = msg["spec"]
        try:
            spec = rp.spec_from_wire(raw)
        except (TypeError, AttributeError) as err:
            trial_id = raw.get("trial_id") if isinstance(raw, dict) else None
            self.out.send(rp.encode("submitted", reply_to=rid, trial_id=trial_id, error_type="ValueError",
                                    error=f"submit: spec: not a trial spec ({err}); expected the TrialSpec fields"))
            return
        if self.single and self._single_trial is not None:
            why = f"submit: this runner was started with --single and already runs trial {self._single_trial}; start one runner per trial"
            self.out.send(rp.encode("submitted", reply_to=rid, trial_id=spec.trial_id, error_type="RuntimeError", error=why))
            return
        # NNI_PLATFORM is the manager's platform name, not "local"; the trial's own env still wins.
        spec.env = {"NNI_PLATFORM": self._platform, **(spec.env or {})}
        try:
            detail = await self.ts.submit(spec)
        except (RequestNeverSatisfiable, ValueError, RuntimeError, OSError) as err:
            self.out.send(rp.encode("submitted", reply_to=rid, trial_id=spec.trial_id, error=str(err).replace("\n", " "),
                                    error_type=type(err).__name__))
            return
        if self.single:
            self._single_trial = spec.trial_id
        self.out.send(rp.encode("submitted", reply_to=rid, trial_id=spec.trial_id, detail=rp.detail_to_wire(detail)))

    async def _forward_events(self) -> None:
        async for event in self.ts.events():
            self.out.send(rp.event_to_wire(event))
            await self.out.drain()  # a manager that stops reading slows the feed, not our memory
            if isinstance(event, MetricEvent):
                continue
            if self.single and isinstance(event, StateEvent) and event.status.is_final and event.trial_id == self._single_trial:
                self.request_stop(f"--single: trial {event.trial_id} ended ({event.status})")


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=rp.MAX_LINE_BYTES)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    except ValueError:  # a regular file: feed it from a thread
        def pump() -> None:
            for line in iter(sys.stdin.buffer.readline, b""):
                loop.call_soon_threadsafe(reader.feed_data, line)
            loop.call_soon_threadsafe(reader.feed_eof)

        loop.run_in_executor(None, pump)
    return reader


async def _protocol_output(fd: int, on_lost) -> _Output:
    loop = asyncio.get_running_loop()
    fileobj = os.fdopen(fd, "wb", buffering=0)
    try:
        transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, fileobj)
    except ValueError:  # a regular file
        return _Output(None, fileobj, on_lost)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return _Output(writer, fileobj, on_lost)


async def run_runner(single: bool = False, protocol_fd: int = 1) -> int:
    """Serve the protocol on stdin / ``protocol_fd`` until stopped; returns the exit code."""
    runner: Optional[TrialRunner] = None

    def lost(reason: str) -> None:
        if runner is not None:
            runner.request_stop(reason)

    out = await _protocol_output(protocol_fd, lost)
    runner = TrialRunner(out, single=single)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        loop.add_signal_handler(sig, runner.request_stop, f"the runner received {signal.Signals(sig).name}")
    return await runner.serve(await _stdin_reader())


async def run_connected_runner(address: str, runner_id: str, single: bool = False, retry_for: float = 30.0) -> int:
    """Connect to the manager at ``address`` and serve the protocol on that socket."""
    from nni.runtime.runner_listener import connect_to_manager

    reader, writer = await connect_to_manager(address, runner_id, retry_for=retry_for)
    runner: Optional[TrialRunner] = None

    def lost(reason: str) -> None:
        if runner is not None:
            runner.request_stop(reason)

    runner = TrialRunner(_Output(writer, None, lost), single=single)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        loop.add_signal_handler(sig, runner.request_stop, f"the runner received {signal.Signals(sig).name}")
    try:
        return await runner.serve(reader)
    finally:
        writer.close()


def runner_parser() -> argparse.ArgumentParser:
    """The runner's command line (``main`` parses it; a Ray task reuses it to serve in-process)."""
    parser = argparse.ArgumentParser(prog="python -m nni.training_services.local.runner",
                                     description="NNI trial runner: JSON-line commands on stdin, events on stdout.")
    parser.add_argument("--single", action="store_true", help="run one trial, then exit (non-reuse mode)")
    parser.add_argument("--log-file", help="write the runner's log here instead of stderr")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--connect", metavar="HOST:PORT",
                        help="connect to the manager instead of using stdin/stdout (token in $NNI_RUNNER_TOKEN)")
    parser.add_argument("--runner-id", help="this runner's id, as the manager expects it (with --connect)")
    parser.add_argument("--connect-timeout", type=float, default=30.0,
                        help="seconds to keep retrying an unreachable manager (with --connect)")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = runner_parser()
    args = parser.parse_args(argv)
    if bool(args.connect) != bool(args.runner_id):
        parser.error("--connect and --runner-id go together")
    # Keep fd 1 for the protocol only: stray writes to stdout (ours or a library's) go to stderr.
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    handler = logging.FileHandler(args.log_file) if args.log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s"))
    logging.getLogger("nni").addHandler(handler)
    logging.getLogger("nni").setLevel(args.log_level)
    if args.connect:
        try:
            return asyncio.run(run_connected_runner(args.connect, args.runner_id, single=args.single, retry_for=args.connect_timeout))
        except (ValueError, ConnectionError) as err:
            print(f"nni runner: {err}", file=sys.stderr)
            return EXIT_CONNECT_FAILED
    return asyncio.run(run_runner(single=args.single, protocol_fd=protocol_fd))


if __name__ == "__main__":
    sys.exit(main())
