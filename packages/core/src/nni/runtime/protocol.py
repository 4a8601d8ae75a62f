"""The command protocol between the NNI manager and the dispatcher process.

The dispatcher (``python -m nni``, hosting the tuner / assessor / advisor) and the manager
exchange *commands* over two byte streams. One frame is::

    2 ASCII letters (the command) + 14-digit zero-padded payload length in BYTES + UTF-8 payload

e.g. ``send(CommandType.NewTrialJob, 'CONTENT')`` writes ``b'TR00000000000007CONTENT'``.

Payloads (JSON unless noted; ``parameter_id`` is an int chosen by the dispatcher):

Manager -> dispatcher

=====  =====================  ==============================================================
``IN`` Initialize             the search space (JSON object). Answer: ``ID``.
``GE`` RequestTrialJobs       the number of trials wanted (JSON int, e.g. ``3``). Answer: that
                              many ``TR``; fewer plus one ``NO`` when the tuner is exhausted.
``ME`` ReportMetricData       a metric record (:mod:`nni.runtime.trial_metrics`):
                              ``{"parameter_id", "trial_job_id", "type", "sequence", "value"}``,
                              ``type`` PERIODICAL / FINAL / REQUEST_PARAMETER, ``value`` the
                              metric as a JSON string. REQUEST_PARAMETER records carry
                              ``parameter_index``; answer: ``SP``.
``SS`` UpdateSearchSpace      the new search space. No answer.
``FD`` ImportData             ``[{"parameter": {...}, "value": metric}, ...]`` (``value`` the
                              metric object or its JSON string; optional ``parameter_id``).
``AD`` AddCustomizedTrialJob  the parameters of a trial added by hand (JSON object). Answer:
                              one ``TR`` with ``"parameter_source": "customized"``; its final
                              result reaches the tuner with ``customized=True``.
``EN`` TrialEnd               ``{"trial_job_id", "event", "hyper_params"}``: ``event`` the final
                              status (SUCCEEDED, FAILED, USER_CANCELED, SYS_CANCELED,
                              EARLY_STOPPED), ``hyper_params`` the ``TR``/``SP`` payload string
                              the trial was started with.
``TE`` Terminate              empty. The dispatcher calls ``_on_exit`` and exits 0.
``PI`` Ping                   empty. No answer.
=====  =====================  ==============================================================

Dispatcher -> manager

=====  =====================  ==============================================================
``ID`` Initialized            empty.
``TR`` NewTrialJob            ``{"parameter_id", "parameter_source", "parameters",
                              "parameter_index": 0}``; ``parameter_source`` is
                              ``"algorithm"`` or ``"customized"``.
``SP`` SendTrialJobParameter  ``{"parameter_id", "parameter_source", "parameters",
                              "parameter_index", "trial_job_id"}`` for a multi-phase trial;
                              ``parameters`` (and ``parameter_id``) are ``null`` when the
                              tuner has nothing more.
``NO`` NoMoreTrialJobs        opaque (the built-in dispatcher sends ``""``); managers must not
                              parse it. The tuner will generate no more trials.
``KI`` KillTrialJob           the trial job id as a JSON string, e.g. ``"MoXrp"``.
``ER`` Error                  one line of plain text: the algorithm failed; the dispatcher
                              exits with a non-zero status right after.
=====  =====================  ==============================================================

The streams default to the process's stdin / stdout; :func:`set_streams` (or ``python -m nni
--command_fds IN,OUT``) selects others, and, as in NNI v2.5, tests may assign the module
globals ``_in_file`` / ``_out_file`` (e.g. ``io.BytesIO`` objects) directly.
"""
from __future__ import annotations

import json
import sys
import threading
from enum import Enum
from typing import Any, BinaryIO

__all__ = [
    "CommandType",
    "ProtocolError",
    "LENGTH_DIGITS",
    "MAX_PAYLOAD_BYTES",
    "encode",
    "decode_header",
    "send",
    "receive",
    "set_streams",
    "pack_parameter",
]


class CommandType(Enum):
    """Two-letter command codes (value = the bytes on the wire)."""

    # manager -> dispatcher
    Initialize = b"IN"
    RequestTrialJobs = b"GE"
    ReportMetricData = b"ME"
    UpdateSearchSpace = b"SS"
    ImportData = b"FD"
    AddCustomizedTrialJob = b"AD"
    TrialEnd = b"EN"
    Terminate = b"TE"
    Ping = b"PI"
    # dispatcher -> manager
    Initialized = b"ID"
    NewTrialJob = b"TR"
    SendTrialJobParameter = b"SP"
    NoMoreTrialJobs = b"NO"
    KillTrialJob = b"KI"
    Error = b"ER"


_BY_CODE = {c.value: c for c in CommandType}
LENGTH_DIGITS = 14
_HEADER = 2 + LENGTH_DIGITS
MAX_PAYLOAD_BYTES = 10**LENGTH_DIGITS - 1


class ProtocolError(RuntimeError):
    """The peer sent something that is not a frame (or closed the stream mid-frame)."""


def encode(command: CommandType, data: str | bytes) -> bytes:
    """One frame: ``command`` + 14-digit byte length + UTF-8 ``data``."""
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"command payload is {len(payload)} bytes; at most {MAX_PAYLOAD_BYTES}")
    return command.value + b"%014d" % len(payload) + payload


def decode_header(header: bytes) -> tuple[CommandType, int]:
    """(command, payload length) of a 16-byte header."""
    if len(header) != _HEADER:
        raise ProtocolError(f"incomplete command header {header!r}")
    code, digits = header[:2], header[2:]
    command = _BY_CODE.get(code)
    if command is None:
        raise ProtocolError(f"unknown command {code!r}")
    if not digits.isdigit():
        raise ProtocolError(f"bad length field {digits!r} for command {code.decode('ascii', 'replace')}")
    return command, int(digits)


_lock = threading.Lock()
# The streams, under NNI v2.5's names: tests written for v2.5 replace them directly
# (``protocol._in_file = BytesIO(frames)``, ``protocol._out_file = BytesIO()``). ``None`` means
# the process's stdin / stdout, looked up at each call so that a redirected sys.stdin counts.
_in_file: BinaryIO | None = None
_out_file: BinaryIO | None = None


def set_streams(in_stream: BinaryIO | None = None, out_stream: BinaryIO | None = None) -> None:
    """Use these binary streams for :func:`receive` / :func:`send` (``None`` keeps the current)."""
    global _in_file, _out_file
    if in_stream is not None:
        _in_file = in_stream
    if out_stream is not None:
        _out_file = out_stream


def _get_in() -> BinaryIO:
    return _in_file if _in_file is not None else sys.stdin.buffer


def _get_out() -> BinaryIO:
    return _out_file if _out_file is not None else sys.stdout.buffer


def send(command: CommandType, data: str | bytes = "") -> None:
    """Write one frame and flush (thread-safe)."""
    frame = encode(command, data)
    with _lock:
        out = _get_out()
        out.write(frame)
        out.flush()


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    chunks = []
    left = size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive() -> tuple[CommandType | None, str | None]:
    """Read one frame: ``(command, payload)``; ``(None, None)`` at a clean end of stream."""
    stream = _get_in()
    header = _read_exact(stream, _HEADER)
    if not header:
        return None, None
    command, length = decode_header(header)
    payload = _read_exact(stream, length)
    if len(payload) != length:
        raise ProtocolError(f"stream closed inside a {command.name} command ({len(payload)}/{length} bytes)")
    return command, payload.decode("utf-8")


def pack_parameter(
    parameter_id: Any,
    parameters: Any,
    parameter_source: str = "algorithm",
    parameter_index: int = 0,
    **extra: Any,
) -> str:
    """The JSON payload of ``TR`` / ``SP`` (keys in canonical order)."""
    body = {
        "parameter_id": parameter_id,
        "parameter_source": parameter_source,
        "parameters": parameters,
        "parameter_index": parameter_index,
    }
    body.update(extra)
    return json.dumps(body, default=_json_default)


def _json_default(obj: Any) -> Any:
    mod = type(obj).__module__.split(".")[0]
    if mod == "numpy" and hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")
