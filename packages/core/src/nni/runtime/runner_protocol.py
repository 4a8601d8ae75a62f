"""The protocol between the manager and a trial runner (the one worker of every non-local platform).

A runner (``python -m nni.training_services.local.runner``) is a local training service driven
over one duplex byte stream: an SSH exec channel for ``remote``, later a SLURM job's or a Ray
actor's connection. Platforms differ only in how they start the runner and carry its stream.

Framing: one JSON object per line (UTF-8, ``\\n``-terminated, no newline inside a message:
``json.dumps`` escapes them). Every message has ``"type"``. A request from the manager carries
an ``"id"`` (int); the runner's answer carries ``"reply_to"`` with that id. Fields a reader does
not know are kept, so a newer sender's extra fields (e.g. a new :class:`StateEvent` field) pass
through an older relay unchanged.

Manager -> runner

=================  ==============================================================================
``hello``          ``protocol_version``, ``context`` (the :class:`ExperimentContext` fields as the
                   worker sees them: ``experiment_dir`` and ``trial_code_directory`` are paths ON
                   THE WORKER), ``config`` (``useActiveGpu``, ``maxTrialNumberPerGpu``,
                   ``gpuIndices``), ``platform`` (``NNI_PLATFORM`` of the trials), optional
                   ``options`` (``kill_grace``, ``poll_interval`` seconds). Answer: ``ready``, or
                   ``error`` (protocol version mismatch: the runner then exits).
``submit``         ``spec``: the :class:`TrialSpec` fields. Answer: ``submitted``.
``cancel``         ``trial_id``, ``early_stopped`` (bool), ``status`` (a final status or null).
                   Answer: ``done``.
``send_parameter`` ``trial_id``, ``parameter`` (the dispatcher's ``SP`` payload string).
                   Answer: ``done``, or ``error`` with ``error_type`` ``KeyError``.
``ping``           nothing. Answer: ``pong``.
``stop``           nothing. The runner cancels every unfinished trial (SYS_CANCELED), sends their
                   last events, answers ``stopped`` and exits.
=================  ==============================================================================

Runner -> manager

=================  ==============================================================================
``ready``          ``protocol_version``, ``nni_version`` (nni-core's), ``python`` (version),
                   ``python_executable``, ``hostname``, ``pid``, ``gpus`` (``[{"index",
                   "activeProcessNum"}]`` as ``nvidia-smi`` or ``$NNI_GPU_INVENTORY`` shows
                   them), ``gpu_source``, ``single`` (bool), ``capacity`` (GPU-scheduled
                   trials that fit at once, or null when trials are not GPU-scheduled).
``submitted``      ``trial_id`` and ``detail`` (the :class:`TrialJobDetail` fields), or ``error``
                   (one line) and ``error_type`` when the trial was refused.
``done``           the request (``cancel`` / ``send_parameter``) was carried out.
``state``          the :class:`StateEvent` fields (``trial_id``, ``status``, ``time``, ...).
``metric``         the :class:`MetricEvent` fields (``trial_id``, ``record``, ``time``).
``pong``           ``time`` (the runner's epoch ms).
``error``          ``error`` (one line); with ``reply_to`` the request failed (``error_type``
                   names the exception: ``KeyError``, ``RequestNeverSatisfiable``,
                   ``ValueError`` ...), without it a line could not be understood.
``stopped``        ``reason``; the last message. ``reply_to`` when it answers ``stop``.
=================  ==============================================================================

Per trial, events are sent in the order they happened; ``submitted`` is sent before the trial's
first ``state``.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional, Union

from .states import TrialJobStatus
from .training_service import ExperimentContext, MetricEvent, StateEvent, TrialJobDetail, TrialSpec

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_LINE_BYTES",
    "MANAGER_MESSAGES",
    "RUNNER_MESSAGES",
    "RUNNER_MODULE",
    "RunnerProtocolError",
    "RunnerInfo",
    "encode",
    "decode",
    "check_version",
    "context_to_wire",
    "context_from_wire",
    "spec_to_wire",
    "spec_from_wire",
    "detail_to_wire",
    "detail_from_wire",
    "event_to_wire",
    "event_from_wire",
]

#: Bumped whenever a message changes incompatibly; manager and runner must speak the same one.
PROTOCOL_VERSION = 1
#: Longest accepted line (a parameter set or metric record is far smaller; this bounds memory).
MAX_LINE_BYTES = 16 * 1024 * 1024
#: The module a platform starts on the worker: ``python -m nni.training_services.local.runner``.
RUNNER_MODULE = "nni.training_services.local.runner"

#: Message type -> required fields (besides ``type``), manager to runner.
MANAGER_MESSAGES: dict[str, tuple[str, ...]] = {
    "hello": ("id", "protocol_version", "context"),
    "submit": ("id", "spec"),
    "cancel": ("id", "trial_id"),
    "send_parameter": ("id", "trial_id", "parameter"),
    "ping": ("id",),
    "stop": ("id",),
}
#: Message type -> required fields (besides ``type``), runner to manager.
RUNNER_MESSAGES: dict[str, tuple[str, ...]] = {
    "ready": ("reply_to", "protocol_version", "nni_version"),
    "submitted": ("reply_to", "trial_id"),
    "done": ("reply_to",),
    "state": ("trial_id", "status", "time"),
    "metric": ("trial_id", "record", "time"),
    "pong": ("reply_to",),
    "error": ("error",),
    "stopped": (),
}


class RunnerProtocolError(ValueError):
    """A line that is not a valid message, or a peer speaking another protocol version."""


def encode(message_type: str, **fields: Any) -> bytes:
    """One message as a line: ``encode("ping", id=3) == b'{"type": "ping", "id": 3}\\n'``."""
    body = {"type": message_type}
    body.update(fields)
    return (json.dumps(body, ensure_ascii=False, default=_jsonable) + "\n").encode("utf-8")


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def decode(line: Union[bytes, str], known: Optional[dict[str, tuple[str, ...]]] = None) -> dict:
    """Parse one line into a message dict (every field kept).

    Args:
        line: the line, with or without its ``\\n``.
        known: the table the message must belong to (:data:`MANAGER_MESSAGES` or
            :data:`RUNNER_MESSAGES`); ``None`` accepts either.

    Raises:
        RunnerProtocolError: one line saying what is wrong with the message.
    """
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise RunnerProtocolError(f"runner protocol: the line is not UTF-8 ({err.reason} at byte {err.start})") from None
    text = line.strip()
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunnerProtocolError(f"runner protocol: the line is not JSON ({err.msg} at column {err.colno}): {_clip(text)}") from None
    if not isinstance(msg, dict):
        raise RunnerProtocolError(f"runner protocol: a message must be a JSON object, got {_clip(text)}")
    kind = msg.get("type")
    tables = [known] if known is not None else [MANAGER_MESSAGES, RUNNER_MESSAGES]
    required = next((t[kind] for t in tables if isinstance(kind, str) and kind in t), None)
    if required is None:
        allowed = sorted(set().union(*tables))
        raise RunnerProtocolError(f"runner protocol: type: unknown message type {kind!r}; allowed: {', '.join(allowed)}")
    missing = [f for f in required if f not in msg]
    if missing:
        raise RunnerProtocolError(f"runner protocol: {kind}: missing field(s) {', '.join(missing)}")
    return msg


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def check_version(theirs: Any, who: str = "the manager") -> None:
    """Raise :class:`RunnerProtocolError` unless ``theirs`` is :data:`PROTOCOL_VERSION`."""
    if theirs != PROTOCOL_VERSION:
        from .distributions import core_version

        raise RunnerProtocolError(
            f"protocol_version: {who} speaks runner protocol {theirs!r} but this side (nni-core {core_version()}) "
            f"speaks {PROTOCOL_VERSION}; install the same nni-core version on the manager and the worker"
        )


@dataclasses.dataclass(frozen=True)
class RunnerInfo:
    """What a runner said about itself in ``ready``. ``raw``: the whole message."""

    protocol_version: int
    nni_version: str
    python: str = ""
    python_executable: str = ""
    hostname: str = ""
    pid: Optional[int] = None
    gpus: list = dataclasses.field(default_factory=list)
    gpu_source: str = ""
    single: bool = False
    capacity: Optional[int] = None
    raw: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_wire(cls, msg: dict) -> "RunnerInfo":
        return cls(**_known(cls, msg), raw=dict(msg))


def _known(cls: type, data: dict) -> dict:
    """The items of ``data`` that are fields of dataclass ``cls`` (newer peers may send more)."""
    names = {f.name for f in dataclasses.fields(cls)} - {"raw"}
    return {k: v for k, v in data.items() if k in names}


def context_to_wire(context: ExperimentContext) -> dict:
    return dataclasses.asdict(context)


def context_from_wire(data: dict) -> ExperimentContext:
    return ExperimentContext(**_known(ExperimentContext, data))


def spec_to_wire(spec: TrialSpec) -> dict:
    return dataclasses.asdict(spec)


def spec_from_wire(data: dict) -> TrialSpec:
    fields = _known(TrialSpec, data)
    fields["env"] = dict(fields.get("env") or {})
    return TrialSpec(**fields)


def detail_to_wire(detail: TrialJobDetail) -> dict:
    return detail.to_dict()


def detail_from_wire(data: dict) -> TrialJobDetail:
    fields = _known(TrialJobDetail, data)
    fields["status"] = TrialJobStatus(fields["status"])
    return TrialJobDetail(**fields)


def event_to_wire(event: Union[StateEvent, MetricEvent]) -> bytes:
    """A training-service event as a ``state`` / ``metric`` line, every dataclass field included."""
    fields = dataclasses.asdict(event)
    if isinstance(event, StateEvent):
        fields["status"] = str(event.status)
        return encode("state", **fields)
    return encode("metric", **fields)


def event_from_wire(msg: dict) -> Union[StateEvent, MetricEvent]:
    """A ``state`` / ``metric`` message as the dataclass of :mod:`nni.runtime.training_service`.

    Every field the dataclass has is filled from the message, so a field added to
    :class:`StateEvent` later arrives without a change here; fields the dataclass lacks stay in
    the message only."""
    if msg["type"] == "state":
        fields = _known(StateEvent, msg)
        fields["status"] = TrialJobStatus(fields["status"])
        return StateEvent(**fields)
    if msg["type"] == "metric":
        return MetricEvent(**_known(MetricEvent, msg))
    raise RunnerProtocolError(f"runner protocol: type: {msg['type']!r} is not an event; allowed: state, metric")
